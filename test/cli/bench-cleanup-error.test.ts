/**
 * A bench workload on a shared Redis (--redis-url) that fails, and whose workspace then cannot be
 * removed either: the workload's own error is the one reported, and the failed clean-up is said
 * after it with what was left and how to remove it; no stack. Here the Redis is logged into as an
 * ACL user that may not XADD (the workload's failure) nor SCAN (the clean-up's).
 */
import { describe, expect, it } from 'vitest';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('bench: a clean-up that fails after the workload did', () => {
  const suite = suiteRedis();

  it("reports the workload's error first, then the clean-up's; exit 1", async () => {
    await suite.admin.call(
      'ACL',
      'SETUSER',
      'bench-noscan',
      'on',
      '>bench-pw',
      '~*',
      '&*',
      '+@all',
      '-scan',
      '-xadd',
    );
    const url = new URL(suite.server.adminUrl);
    url.username = 'bench-noscan';
    url.password = 'bench-pw';
    const run = await runCli('bench', ['seed', '--contacts', '10', '--redis-url', url.toString()]);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(
      /\nbench: seed failed: Redis refused a command \(NOPERM [^\n]*'xadd' command\): run bench as a Redis user allowed every command/,
    );
    expect(run.stderr).not.toMatch(/seed failed: [^\n]*'scan'/);
    expect(run.stderr).toMatch(
      /\nbench: removing its workspace "bench-\d+" failed too \(NOPERM [^\n]*'scan' command\); its keys may be left: remove them with redis-cli --scan --pattern 'sb:\{bench-\d+\}:\*'/,
    );
  });
});
