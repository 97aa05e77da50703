/**
 * A bench workload that fails says so in one message (the workload, what failed, what to do) and
 * exits non-zero, without a stack trace: here its Redis stops answering mid-run (SIGSTOP, as a
 * machine too loaded to schedule it). And `--help` names every workload and no missing file.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WORKLOADS } from '../../src/cli/bench/options.ts';
import { freezeRedis } from '../support/freeze.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('bench failures', () => {
  const suite = suiteRedis();

  it('a Redis that stops answering mid-workload: one message naming the workload, the timeout and what to do; no stack', async () => {
    const run = runCli('bench', ['seed', '--contacts', '300000', '--redis-url', suite.server.adminUrl]);
    // Frozen once the workload has begun writing its workspace.
    const deadline = Date.now() + 30_000;
    while (Number(await suite.admin.dbsize()) === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const frozen = await freezeRedis(suite.admin, { atMostMs: 30_000 });
    const result = await run.finally(() => frozen.thaw());
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).toMatch(/bench: seed failed: Redis did not answer within \d+ ms/);
    expect(result.stderr).toMatch(/run again, or with a smaller --contacts/);
  });

  it('--help names every workload, and only files that exist', async () => {
    const run = await runCli('bench', ['--help']);
    expect(run.code).toBe(0);
    const listed = /^Usage: npm run bench -- \[([a-z0-9|]+)\]/m.exec(run.stdout)?.[1]?.split('|') ?? [];
    for (const w of WORKLOADS) {
      expect(listed, w).toContain(w);
      expect(run.stdout, w).toMatch(new RegExp(`^  ${w} `, 'm'));
    }
    const files = run.stdout.match(/\b[\w/-]+\.md\b/g) ?? [];
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(existsSync(path.join(ROOT, f)), f).toBe(true);
  });
});
