/**
 * CONTACT_RETENTION changed while finished contacts wait to be forgotten (README's settings;
 * docs/ARCHIVE.md, "Finished contacts"): restarted with `off`, the contacts stay readable however
 * old; restarted with a shorter age, those past it are forgotten once each (one ContactsForgotten
 * naming each), the one finished later stays until it is past it too; the audit finds nothing wrong.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const ws = 'forget-edges-2';
let redis: TestRedis;
let sb: Running | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

async function start(retention: string): Promise<Running> {
  await sb?.stop();
  const config = loadConfig({
    AUTH: 'off',
    ...redis.env,
    PORT: '0',
    LOG_LEVEL: 'silent',
    LB_DRAIN_MS: '0',
    WORKSPACES: ws,
    DISCOVER_WORKSPACES: 'false',
    CONTACT_RETENTION: retention,
    ARCHIVE_EVERY_MS: '50',
    LOG_RETENTION: '24h',
  });
  sb = await startSwitchboard(config, pino({ level: 'silent' }));
  await projectorReady(sb.redis, [ws]);
  return sb;
}

async function call(method: 'GET' | 'POST', path: string, payload?: object) {
  const res = await sb!.api!.inject({
    method,
    url: `/v1/workspaces/${ws}${path}`,
    ...(payload !== undefined ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

it('a retention changed between runs: off keeps them, a shorter one forgets each once', async () => {
  await start('1h');
  for (const id of ['c1', 'c2']) {
    expect((await call('POST', '/contacts', { id, skills: ['A'] })).status).toBe(201);
    expect((await call('POST', `/contacts/${id}/abandon`)).status).toBe(200);
  }
  await start('off');
  await sleep(400);
  expect((await call('GET', '/contacts/c1')).status).toBe(200);
  expect((await call('GET', '/contacts/c2')).status).toBe(200);
  await start('1s');
  // Finished just now: stays while c1 and c2 (older than 1 s) go.
  expect((await call('POST', '/contacts', { id: 'c3', skills: ['A'] })).status).toBe(201);
  expect((await call('POST', '/contacts/c3/abandon')).status).toBe(200);
  await waitFor(
    () => 'c1 and c2 forgotten',
    async () =>
      (await call('GET', '/contacts/c1')).status === 404 && (await call('GET', '/contacts/c2')).status === 404
        ? { value: 1 }
        : undefined,
    { timeoutMs: 5000, everyMs: 20 },
  );
  expect((await call('GET', '/contacts/c3')).status).toBe(200);
  await waitFor(
    () => 'c3 forgotten',
    async () => ((await call('GET', '/contacts/c3')).status === 404 ? { value: 1 } : undefined),
    { timeoutMs: 5000, everyMs: 20 },
  );
  const events = await call('GET', '/events?type=ContactsForgotten');
  const named = (events.body.events as { data: { contactIds: string[] } }[]).flatMap(
    (e) => e.data.contactIds,
  );
  expect(named.sort()).toEqual(['c1', 'c2', 'c3']);
  const report = await auditWorkspace(sb!.redis, ws, { idle: true });
  expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
});
