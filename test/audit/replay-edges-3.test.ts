/**
 * The rebuild over an archive with a hole in it (a segment missing: removed, or --archive-dir not
 * the archiver's). A user saw exit 1 and hundreds of differences, the break one line among them,
 * and nothing saying that the others come from the hole rather than from the live state, nor what
 * to do. Now the rebuild also says so on stderr, naming the archive and the break, with what to do
 * (point --archive-dir at the archiver's archive or restore the segment, the audit lists every
 * break), as the API's archive-unreadable problem does.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.ts';
import { archivedLog } from '../support/archive-log.ts';
import { suiteRedis } from '../support/redis.ts';

const WS = 'replay-edges-3';

describe('rebuild over an archive with a segment missing', () => {
  const suite = suiteRedis();
  const root = mkdtempSync(path.join(tmpdir(), 'sb-replay-edges-3-'));
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('reports the break first and says on stderr what the differences come from and what to do', {
    timeout: 120_000,
  }, async () => {
    const a = await archivedLog(suite.redis, WS, root, 3);
    const args = ['--workspace', WS, '--redis-url', suite.server.url, '--archive-dir', root];
    const clean = await runCli('rebuild', args);
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);

    await rm(path.join(a.dir, a.names[1]!));
    const broken = await runCli('rebuild', args);
    expect(broken.code).toBe(1);
    const first = broken.stdout.split('\n').find((l) => l.startsWith('  archive '));
    expect(first).toContain(a.names[2]);
    expect(broken.stderr).toContain(`could not be read whole, as written, from the archive in ${root}`);
    expect(broken.stderr).toContain(a.names[2]);
    expect(broken.stderr).toContain('restore the missing or damaged segment');
    expect(broken.stderr).toContain(
      `npm run audit -- --workspace ${WS} --archive-dir ${JSON.stringify(root)}`,
    );

    const json = await runCli('rebuild', [...args, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).differences[0]).toMatchObject({ kind: 'archive', key: 'events' });
    expect(json.stderr).toContain('restore the missing or damaged segment');
  });
});
