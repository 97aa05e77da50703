/**
 * `npm run bench` connects to its Redis (a private redis-server, or --redis-url) with the URL's
 * login alone, and gives the Switchboard process of e2e, ingest and fanout that URL as REDIS_URL.
 * That process inherited the rest of the environment's Redis settings: run from a shell set up for
 * `npm start` (REDIS_PASSWORD, REDIS_TLS_CA beside a REDIS_URL), it was refused at start (a login
 * given twice, TLS files with a redis:// URL) or logged in otherwise than the bench, and the
 * workload failed with "src/main.ts exited before it was ready". It now reaches the bench's Redis
 * as the bench does: the environment's REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS_* are unset for it.
 * So are the settings of a deployment's API instance that made it another process than the one
 * the bench measures: ROLES (api alone: nothing projected), DURABILITY=replicated with
 * REPLICA_WAIT_MS (every command 503 on the bench's Redis, which has no replica), METRICS_PORT.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchboardProcess } from '../../src/cli/bench/e2e.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const names = [
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
  'REDIS_TLS_CA',
  'DURABILITY',
  'REPLICA_WAIT_MS',
  'ROLES',
  'METRICS_PORT',
] as const;
const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-env-'));
let server: TestRedis;

beforeAll(async () => {
  server = await startTestRedis();
  const ca = path.join(dir, 'ca.pem');
  writeFileSync(ca, 'not used');
  process.env.REDIS_USERNAME = 'someone-else';
  process.env.REDIS_PASSWORD = 'another-password';
  process.env.REDIS_TLS_CA = ca;
  // A shell set up for an API instance of a replicated deployment, with its own metrics port.
  process.env.DURABILITY = 'replicated';
  process.env.REPLICA_WAIT_MS = '500';
  process.env.ROLES = 'api';
  process.env.METRICS_PORT = '1';
}, 60_000);

afterAll(async () => {
  for (const n of names) {
    if (saved[n] === undefined) delete process.env[n];
    else process.env[n] = saved[n];
  }
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the bench's Switchboard process", () => {
  it("reaches the bench's Redis with the URL's login, whatever REDIS_* the shell holds for npm start", async () => {
    const sb = await startSwitchboardProcess(server.url, 'bench-env');
    try {
      const res = await fetch(`${sb.base}/health`);
      expect(res.status).toBe(200);
      // Every role the workloads need, and commands acknowledged as on one Redis (no replica to wait for).
      const status = (await (await fetch(`${sb.base}/status`)).json()) as { roles?: string[] };
      expect(status.roles).toEqual(expect.arrayContaining(['api', 'projector', 'dispatcher']));
      const made = await fetch(`${sb.base}/v1/workspaces/bench-env/agents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'a1', skills: ['x'] }),
      });
      expect(made.status, await made.text()).toBe(201);
    } finally {
      await sb.stop();
    }
  }, 90_000);
});
