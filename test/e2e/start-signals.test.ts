/**
 * `npm start` stopping on a second signal: a second Ctrl-C (SIGINT) or SIGTERM while the first's
 * graceful stop waits (LB_DRAIN_MS, SHUTDOWN_TIMEOUT_MS) ends the process at once, 128 + the
 * signal's number, with its private redis-server stopped rather than left running on DATA_DIR.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  childProcesses,
  killAllProcesses,
  pidAlive,
  StrayProcesses,
  startProcess,
} from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const strays = new StrayProcesses();
const dirs: string[] = [];

afterAll(async () => {
  await killAllProcesses();
  strays.killAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('npm start on a second signal', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`a second ${signal} during the graceful stop exits ${code} at once, its private redis-server stopped`, async () => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-signals-'));
      dirs.push(dataDir);
      // Registered for the load balancer with a long drain and timeout: the first stop takes long.
      const sb = await startProcess({
        roles: 'api',
        env: {
          DATA_DIR: dataDir,
          ADVERTISE_ADDRESS: 'auto',
          LB_DRAIN_MS: '30000',
          SHUTDOWN_TIMEOUT_MS: '30000',
          LOG_LEVEL: 'info',
        },
      });
      const redisChild = childProcesses(sb.pid).find((c) => c.comm.startsWith('redis-server'));
      expect(redisChild, `a redis-server child of ${sb.pid}`).toBeDefined();
      strays.add(redisChild!.pid);
      expect(existsSync(path.join(dataDir, 'private-redis.json'))).toBe(true);
      sb.kill(signal);
      await waitFor('the graceful stop to begin', () => sb.logText().includes('shutting down'), {
        timeoutMs: 3_000,
      });
      const began = Date.now();
      sb.kill(signal);
      const exit = await Promise.race([
        sb.exited,
        new Promise<string>((r) => setTimeout(() => r('still running 1.5 s after the second signal'), 1_500)),
      ]);
      expect(exit, sb.logText()).toBe(code);
      expect(Date.now() - began).toBeLessThan(1_500);
      await waitFor('the private redis-server to end', () => !pidAlive(redisChild!.pid), {
        timeoutMs: 1_000,
      });
      // Its private-redis.json (where the CLIs look for it) goes with it, as on a clean stop.
      expect(existsSync(path.join(dataDir, 'private-redis.json'))).toBe(false);
    }, 15_000);
  }
});
