/**
 * docs/DEPLOYMENT.md, "Scaling each tier": an API instance for the load balancer is started with
 * `ROLES=api ADVERTISE_ADDRESS=<host:port>`. HOST defaults to 127.0.0.1, so an instance started
 * with only those two listens on the loopback interface while it registers an address other
 * machines are to reach it at: HAProxy adds the server and its check never passes, and the
 * instance said only `registered for the load balancer`. It now warns at start, naming HOST, and
 * the docs' command sets HOST.
 *
 * The advertised host is a `.invalid` name (RFC 6761: never resolves): nothing connects to it,
 * the test's Redis is its own and no HAProxy reads its registry.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllProcesses, PROJECT_ROOT, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

const WARNING = /ADVERTISE_ADDRESS[^"]*HOST \(127\.0\.0\.1\)/;

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
}, 30_000);
afterAll(async () => {
  await killAllProcesses();
  await redis?.stop();
});

/** The process's log once its start-up lines are out (the warning is written right after listen). */
async function startLog(env: Record<string, string>): Promise<string> {
  const p = await startProcess({
    roles: ['api'],
    redis,
    env: { LOG_LEVEL: 'info', LB_DRAIN_MS: '0', ...env },
  });
  const until = Date.now() + 3000;
  while (Date.now() < until && !/registered for the load balancer/.test(p.logText())) await sleep(50);
  const text = p.logText();
  await p.stop();
  return text;
}

describe('DEPLOYMENT.md: an API instance started for a load balancer on another machine', () => {
  it('listening on loopback (HOST unset) while advertising another host: warns at start, naming HOST', async () => {
    const log = await startLog({ ADVERTISE_ADDRESS: 'sb-docs-test.invalid:8080' });
    expect(log).toMatch(/registered for the load balancer/);
    const line = log.split('\n').find((l) => WARNING.test(l));
    expect(line, log).toBeDefined();
    expect(JSON.parse(line!.slice(line!.indexOf('{'))).level).toBe(40); // warn
  }, 30_000);

  it('advertising its own loopback address (auto: HOST:PORT): no warning', async () => {
    const log = await startLog({ ADVERTISE_ADDRESS: 'auto' });
    expect(log).toMatch(/registered for the load balancer/);
    expect(log).not.toMatch(WARNING);
  }, 30_000);

  it("the docs' command for more API instances sets HOST", () => {
    const docs = readFileSync(path.join(PROJECT_ROOT, 'docs/DEPLOYMENT.md'), 'utf8');
    const scaling = docs.slice(docs.indexOf('## Scaling each tier'));
    expect(scaling).toMatch(/Start more processes with `ROLES=api HOST=[^`]* ADVERTISE_ADDRESS=<host:port>`/);
  });
});
