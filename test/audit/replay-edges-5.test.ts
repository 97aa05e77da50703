/**
 * `npm run rebuild` and `npm run audit` given an --archive-dir that exists but holds nothing of the
 * workspace (another directory than the archiver's: the default ./data/archive of a run whose
 * archiver wrote elsewhere, or a folder inside the archive), for a workspace whose streams were
 * archived and trimmed. A user saw exit 1 and hundreds of differences (violations), every document
 * "changed", as if the live state were wrong. Now it is exit 2 naming the directory and what to
 * give, as for a directory that does not exist.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.ts';
import { archivedLog } from '../support/archive-log.ts';
import { suiteRedis } from '../support/redis.ts';

const WS = 'replay-edges-5';

describe('an --archive-dir with nothing of an archived workspace', () => {
  const suite = suiteRedis();
  const root = mkdtempSync(path.join(tmpdir(), 'sb-replay-edges-5-'));
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('is exit 2 naming it, for the rebuild and the audit; the archiver’s directory still works', {
    timeout: 120_000,
  }, async () => {
    await archivedLog(suite.redis, WS, path.join(root, 'archive'), 5);
    const other = path.join(root, 'other');
    mkdirSync(other);
    const base = ['--workspace', WS, '--redis-url', suite.server.url, '--archive-dir'];
    for (const dir of [other, path.join(root, 'archive', WS, 'events')])
      for (const tool of ['rebuild', 'audit'] as const) {
        const run = await runCli(tool, [...base, dir]);
        expect(run.stdout, `${tool} ${dir}`).toBe('');
        expect(run.stderr, `${tool} ${dir}`).toContain(`no archive of workspace "${WS}" in "${dir}"`);
        expect(run.stderr).toContain('give --archive-dir the directory the archiver writes to');
        expect(run.code, `${tool} ${dir}`).toBe(2);
      }
    for (const tool of ['rebuild', 'audit'] as const) {
      const run = await runCli(tool, [...base, path.join(root, 'archive')]);
      expect(run.code, `${tool}: ${run.stdout}${run.stderr}`).toBe(0);
    }
  });
});
