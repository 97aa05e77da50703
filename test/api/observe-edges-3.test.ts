/**
 * An API process started with a password Redis refuses: it listened and logged nothing at warn
 * (the Redis check's first failure was no change of state, so no `paused` line), while `/health`
 * answered 503 and every request 503; and once a request did log, its line said to check that
 * Redis is up, which it was. Now the first failed check logs the pause as any later one does, and
 * a refused login is named with what to do about it (the login in REDIS_URL / REDIS_CLUSTER_NODES
 * / REDIS_PASSWORD), never with the password given.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'observe-login';
const WRONG = 'observe-wrong-password-1f0c';
let redis: TestRedis;
let api: SwitchboardProcess | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await api?.stop();
  await redis?.stop();
});

it('a refused Redis login is logged at start, at warn, with what to do and without the password', async () => {
  const password = encodeURIComponent(redis.login.password);
  const env = Object.fromEntries(
    Object.entries(redis.env).map(([k, v]) => [k, v.split(password).join(WRONG)]),
  );
  expect(JSON.stringify(env)).toContain(WRONG);
  api = await startProcess({
    roles: ['api'],
    redis: { env },
    waitReady: false,
    env: { LOG_LEVEL: 'info', WORKSPACES: WS },
  });
  const warned = await waitFor(
    'a warning that Redis refuses the login',
    () =>
      api!.logs
        .filter((l) => l.includes('"level":40'))
        .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Record<string, unknown>)
        .find((l) => String(l.msg).startsWith('paused:')),
    { timeoutMs: 15_000 },
  );
  expect(String(warned.reason)).toMatch(/WRONGPASS/);
  expect(String(warned.msg)).toMatch(/refuses the login.*REDIS_PASSWORD/);
  const text = api.logText();
  expect(text).not.toContain(WRONG);
  expect(text).not.toContain(redis.login.password);
});
