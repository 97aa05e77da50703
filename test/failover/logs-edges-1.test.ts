/**
 * A Redis outage as the operator reads it: every warn or error line a process writes while its
 * Redis does not answer says what to do (DEPLOYMENT.md "Logs": errors say what to do), and the
 * process's own counters do not go down when its projector and dispatcher loops fail and start
 * again. Redis stopped with SIGSTOP (test/support/freeze.ts): single target (not under test/api,
 * which the cluster project runs).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freezeRedis } from '../support/freeze.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

type Line = Record<string, unknown>;
const WS = 'logs-edges-outage';
let redis: TestRedis;
let sb: Running;
const lines: Line[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
        done();
      },
    }),
  );
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'off',
      PORT: '0',
      LB_DRAIN_MS: '0',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      COMMAND_TIMEOUT_MS: '1000',
    }),
    logger,
  );
  await projectorReady(sb.redis, [WS]);
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const post = (url: string, payload: unknown) =>
  sb.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${WS}${url}`,
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(payload),
  });

/** The value of a sample of the /metrics text (0 when absent). */
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

/** What an operator can do about a line: an instruction, not only what went wrong. */
const SAYS_WHAT_TO_DO =
  /\b(check|set|raise|fix|free|restart|retry|use|run|give|see|look|start|add|remove|ask|wait|copy)\b/i;

describe('a Redis outage in the logs and /metrics', () => {
  it('every warn or error line says what to do; the counters of the loops that restarted do not go down', async () => {
    expect((await post('/agents', { id: 'a1', skills: ['English'] })).statusCode).toBe(201);
    expect((await post('/agents/a1/state', { state: 'available' })).statusCode).toBe(200);
    expect((await post('/contacts', { id: 'c1', skills: ['English'] })).statusCode).toBe(201);
    const metrics = async () => (await sb.api!.inject({ url: '/metrics' })).body;
    const before = await waitFor('the assignment counted', async () => {
      const t = await metrics();
      return sample(t, 'switchboard_dispatcher_assignments_total') >= 1 ? t : undefined;
    });
    const applied = sample(before, 'switchboard_projector_commands_applied_total');
    expect(applied).toBeGreaterThanOrEqual(3);
    const from = lines.length;

    const admin = redis.adminClient();
    const frozen = await freezeRedis(admin, { atMostMs: 12_000 });
    try {
      const [read, write] = await Promise.all([
        sb.api!.inject({ url: `/v1/workspaces/${WS}/contacts/c1` }),
        post('/contacts', { id: 'c2', skills: ['English'] }),
      ]);
      expect(read.statusCode).toBe(503);
      expect(write.statusCode).toBe(503);
      // DEPLOYMENT.md "Logs": the command's `redis unavailable` line names its request and the
      // command id it was sent with; the read's names its request.
      const said = (reqId: unknown) =>
        lines.filter((l) => l.reqId === reqId && String(l.msg).startsWith('redis unavailable'));
      expect(said(write.headers['x-request-id'])).toEqual([
        expect.objectContaining({ level: 40, commandId: expect.stringMatching(/^[0-9a-f-]{36}$/) }),
      ]);
      expect(said(read.headers['x-request-id'])).toEqual([expect.objectContaining({ level: 40 })]);
      const during = await metrics();
      expect(sample(during, `switchboard_workspace_up{workspace="${WS}"}`)).toBe(0);
      // Long enough for the loops' blocking reads to time out and their runner to say so.
      await waitFor(
        'a workspace loop failed',
        () => lines.slice(from).some((l) => String(l.msg).startsWith('workspace loop failed')),
        { timeoutMs: 9000 },
      );
    } finally {
      await frozen.thaw();
      admin.disconnect();
    }
    // The loops run again: a new contact is assigned once the agent is free.
    expect((await post('/contacts/c1/complete', {})).statusCode).toBeLessThan(300);
    expect((await post('/contacts', { id: 'c3', skills: ['English'] })).statusCode).toBe(201);
    const after = await waitFor('the second assignment counted', async () => {
      const t = await metrics();
      return sample(t, 'switchboard_dispatcher_assignments_total') >= 2 ? t : undefined;
    });
    expect(sample(after, 'switchboard_projector_commands_applied_total')).toBeGreaterThan(applied);
    expect(sample(after, `switchboard_workspace_up{workspace="${WS}"}`)).toBe(1);

    // The request lines (the access log, at warn for a 5xx) are not counted: their status says it.
    const loud = lines.slice(from).filter((l) => Number(l.level) >= 40 && l.msg !== 'request');
    expect(loud.length).toBeGreaterThan(0);
    const silent = loud.filter((l) => !SAYS_WHAT_TO_DO.test(String(l.msg)));
    expect(
      silent.map((l) => l.msg),
      'warn/error lines that do not say what to do',
    ).toEqual([]);
  }, 25_000);

  it("a Redis at its memory limit: the command's line says to raise maxmemory or free memory", async () => {
    const admin = redis.adminClient();
    const from = lines.length;
    try {
      await admin.call('CONFIG', 'SET', 'maxmemory', '1');
      const r = await post('/contacts', { id: 'too-much', skills: ['English'] });
      expect(r.statusCode).toBe(503);
      const said = lines
        .slice(from)
        .filter(
          (l) => l.reqId === r.headers['x-request-id'] && String(l.msg).startsWith('redis unavailable'),
        );
      expect(said).toEqual([
        expect.objectContaining({ level: 40, msg: expect.stringMatching(/raise maxmemory or free memory/) }),
      ]);
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });
});
