/**
 * `npm run audit` with an archive directory that does not exist. None yet is an empty archive,
 * right for a workspace never archived (exit 0). For a workspace whose streams the archiver trimmed
 * (its mark in Redis), it is a bad argument (a typo, or the archiver's ARCHIVE_DIR not given): exit
 * 2 with one line saying which directory to give, not exit 1 with hundreds of violations of a log
 * read without its archived prefix, as if the log had been tampered with.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('npm run audit with an archive directory that does not exist', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  const archived = `archdir-${run}-archived`;
  const fresh = `archdir-${run}-fresh`;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sb-archdir-'));
    await writeLog(suite.redis, archived, { events: 300, agents: 8, seed: 1 });
    await writeLog(suite.redis, fresh, { events: 100, agents: 4, seed: 2 });
    await new Archiver(suite.redis, new DiskArchive(dir), pino({ level: 'silent' }), {
      retention: { count: 10 },
      segmentEntries: 50,
      everyMs: 50,
    }).drain(archived);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const audit = (ws: string, ...args: string[]) =>
    runCli('audit', ['--workspace', ws, '--redis-url', suite.server.url, ...args], {
      ...process.env,
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: '',
      ARCHIVE_DIR: '',
    });

  it('passes with the archive, and exits 2 naming the directory to give without it', async () => {
    const right = await audit(archived, '--archive-dir', dir);
    expect(right.code, right.stderr).toBe(0);

    const typo = path.join(dir, 'no-such-dir');
    const wrong = await audit(archived, '--archive-dir', typo);
    expect(wrong.code, wrong.stdout).toBe(2);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(
      new RegExp(
        `^audit: --archive-dir: no archive at "${typo}", yet the commands stream of workspace "${archived}" was trimmed up to \\S+ after its first \\d+ entries were archived`,
      ),
    );
    expect(wrong.stderr).toMatch(
      /give --archive-dir the directory the archiver writes to \(its ARCHIVE_DIR\)/,
    );

    // Named as the user gave it: from the environment, the variable.
    const env = await runCli('audit', ['--workspace', archived, '--redis-url', suite.server.url], {
      ...process.env,
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: '',
      ARCHIVE_DIR: typo,
    });
    expect(env.code, env.stdout).toBe(2);
    expect(env.stderr).toMatch(/^audit: ARCHIVE_DIR: no archive at /);
  });

  // The rebuild reads the same log ("Exit codes as the auditor's", docs/AUDIT.md): without the
  // archive it used to exit 1 with every document, index member and counter "different" from a
  // state rebuilt from the last few entries, as if the live state were damaged.
  it('is exit 2 naming the directory for npm run rebuild too', async () => {
    const rebuild = (...args: string[]) =>
      runCli('rebuild', ['--workspace', archived, '--redis-url', suite.server.url, ...args], {
        ...process.env,
        REDIS_URL: '',
        REDIS_CLUSTER_NODES: '',
        ARCHIVE_DIR: '',
      });
    const right = await rebuild('--archive-dir', dir);
    expect(right.code, right.stderr + right.stdout).toBe(0);
    const typo = path.join(dir, 'no-such-dir');
    const wrong = await rebuild('--archive-dir', typo, '--json');
    expect(wrong.code, wrong.stdout).toBe(2);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(
      new RegExp(
        `^rebuild: --archive-dir: no archive at "${typo}", yet the commands stream of workspace "${archived}" was trimmed up to \\S+ after its first \\d+ entries were archived`,
      ),
    );
  });

  it('is an empty archive for a workspace never archived', async () => {
    const none = await audit(fresh, '--archive-dir', path.join(dir, 'no-such-dir'));
    expect(none.code, none.stderr + none.stdout).toBe(0);
    const rebuilt = await runCli(
      'rebuild',
      ['--workspace', fresh, '--redis-url', suite.server.url, '--archive-dir', path.join(dir, 'no-such-dir')],
      { ...process.env, REDIS_URL: '', REDIS_CLUSTER_NODES: '', ARCHIVE_DIR: '' },
    );
    expect(rebuilt.code, rebuilt.stderr + rebuilt.stdout).toBe(0);
  });
});
