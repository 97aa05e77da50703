/**
 * `?minPosition=` on every query (the contract: "Any query takes ?minPosition"), the state at a
 * position and the historical intervals included: it waits for the command, answers 409
 * position-ahead past the last command and 400 naming it when malformed. An instance with the api
 * role only answers a command 202 (no projector applies it); its queries with that position wait
 * until the test's projector step applies it. With minPosition, the intervals hold the command's
 * events although the live projection gathers new events for 250 ms before applying them.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const LIVE = 'minpos-live';
const API_ONLY = 'minpos-api-only';
const api = inProcessApi([LIVE]);

/** A second instance on the same Redis with the api role only, serving API_ONLY (no projector). */
let bare: Running;
beforeAll(async () => {
  bare = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...api.server.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      ROLES: 'api',
      COMMAND_TIMEOUT_MS: '100',
      QUERY_TIMEOUT_MS: '5000',
      WORKSPACES: API_ONLY,
      DISCOVER_WORKSPACES: 'false',
    }),
    pino({ level: 'silent' }),
  );
  await ensureGroup(api.running.redis, API_ONLY);
});
afterAll(async () => {
  await bare?.stop();
});

async function bareCall(method: 'GET' | 'POST', path: string, payload?: Json) {
  const res = await bare.api!.inject({
    method,
    url: `/v1/workspaces/${API_ONLY}${path}`,
    ...(payload ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.json() as Json };
}

const hourRange = () => {
  const now = Date.now();
  const from = new Date(now - (now % 900_000)).toISOString();
  const to = new Date(now - (now % 900_000) + 3_600_000).toISOString();
  return `from=${from}&to=${to}`;
};

describe('minPosition on GET /state and GET /stats/intervals', () => {
  it('waits for the command before answering, like every other query', async () => {
    const first = await bareCall('POST', '/agents', { id: 'ana', skills: ['Billing'] });
    expect(first.status).toBe(202);
    await projectPending(api.running.redis, API_ONLY);
    const events = await bareCall('GET', '/events');
    const at = (events.body.events as Json[])[0]!.position as string;

    const queued = await bareCall('POST', '/contacts', { id: 'call-1', skills: ['Billing'] });
    expect(queued.status).toBe(202);
    const minPosition = queued.body.position as string;
    const state = bareCall('GET', `/state?at=${at}&minPosition=${minPosition}`);
    const intervals = bareCall('GET', `/stats/intervals?${hourRange()}&minPosition=${minPosition}`);
    let settled = false;
    void Promise.all([state, intervals]).then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    await projectPending(api.running.redis, API_ONLY);
    const s = await state;
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    expect((s.body.agents as Json[]).map((a) => a.id)).toEqual(['ana']);
    const i = await intervals;
    expect(i.status, JSON.stringify(i.body)).toBe(200);
    expect((i.body.intervals as Json[]).reduce((n, x) => n + (x.queued as number), 0)).toBe(1);
  });

  it('refuses a position after the last command (409) and a malformed one (400 naming it)', async () => {
    for (const path of ['/state?at=0-0', `/stats/intervals?${hourRange()}`]) {
      const ahead = await bareCall('GET', `${path}&minPosition=99999999999999-0`);
      expect(ahead.status, path).toBe(409);
      expect(ahead.body.type).toBe('/problems/position-ahead');
      const bad = await bareCall('GET', `${path}&minPosition=soon`);
      expect(bad.status, path).toBe(400);
      expect(bad.body.errors).toEqual([expect.objectContaining({ path: 'minPosition' })]);
    }
  });

  it("answers the intervals with the command's events in them, the live projection's gathering notwithstanding", async () => {
    // The live projection is built (its first contact counted), then each new contact is read at once.
    await api.ok('POST', LIVE, '/contacts', { id: 'c0', skills: ['Billing'] });
    await api.until(LIVE, `/stats/intervals?${hourRange()}`, (v) => v.source === 'live');
    for (let n = 1; n <= 5; n++) {
      const { position } = await api.ok('POST', LIVE, '/contacts', { id: `c${n}`, skills: ['Billing'] });
      const v = await api.ok('GET', LIVE, `/stats/intervals?${hourRange()}&minPosition=${position}`);
      expect((v.intervals as Json[]).reduce((sum, x) => sum + (x.queued as number), 0)).toBe(n + 1);
    }
  });
});

describe('minPosition waits leave nothing behind', () => {
  it('holds no wait once a query is answered, whichever way its position was reached', async () => {
    // A query whose position is applied between its first read and its wait being set up is
    // answered by the read after it; that wait must end with the query, not at the workspace's
    // next outcome or QUERY_TIMEOUT_MS (a wait held keeps the workspace's tail in use). The
    // projector step starts 0 - 3 ms after the query, so the queries meet it at every point.
    const tails = bare.api!.deps.tails;
    let held = 0;
    for (let n = 0; n < 25; n++) {
      const queued = await bareCall('POST', '/contacts', { id: `race-${n}`, skills: ['Billing'] });
      expect(queued.status).toBe(202);
      const [answer] = await Promise.all([
        bareCall('GET', `/contacts/race-${n}?minPosition=${queued.body.position as string}`),
        new Promise((r) => setTimeout(r, n % 4)).then(() => projectPending(api.running.redis, API_ONLY)),
      ]);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      if (!(await tails.get(API_ONLY)).unused) held++;
    }
    expect(held).toBe(0);
  });
});
