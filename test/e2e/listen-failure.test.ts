/**
 * The main command whose port cannot be opened (taken by another process, or an address this
 * machine does not have) exits 1 with one line naming the variable to change, not a stack trace.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN_BUNDLE } from '../support/main-build.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
const taken = net.createServer();
let port = 0;

beforeAll(async () => {
  redis = await startTestRedis();
  await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening));
  port = (taken.address() as net.AddressInfo).port;
});

afterAll(async () => {
  taken.close();
  await redis?.stop();
});

function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const all: NodeJS.ProcessEnv = { ...process.env, ...redis.env, ROLES: 'api', AUTH: 'off', ...env };
  delete all.VITEST;
  // The run's build of src/main.ts when the global setup made one (main-build.ts), else tsx.
  const main = existsSync(MAIN_BUNDLE) ? [MAIN_BUNDLE] : ['--import', 'tsx', 'src/main.ts'];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      main,
      { cwd: PROJECT_ROOT, env: all, timeout: 30_000 },
      (err, _stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
    );
  });
}

describe('the main command that cannot listen', () => {
  it('names PORT, METRICS_PORT or HOST and exits 1, without a stack trace', async () => {
    const runs = await Promise.all([
      start({ PORT: String(port) }),
      start({ PORT: '0', METRICS_PORT: String(port) }),
      start({ PORT: '0', HOST: '192.0.2.1' }),
    ]);
    const expected = [
      new RegExp(
        `^switchboard: could not start: PORT: 127\\.0\\.0\\.1:${port} is in use by another process`,
        'm',
      ),
      new RegExp(`^switchboard: could not start: METRICS_PORT: 127\\.0\\.0\\.1:${port} is in use`, 'm'),
      /^switchboard: could not start: HOST: 192\.0\.2\.1 is not an address of this machine/m,
    ];
    for (const [i, run] of runs.entries()) {
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(expected[i]!);
      expect(run.stderr).not.toMatch(/^\s+at /m);
    }
  }, 40_000);
});
