/**
 * The first start's admin key when the starts racing on one DATA_DIR have the same pid: the API
 * replicas of infra/docker-compose.yml share one data volume and each runs as PID 1 of its own
 * container. The key was written aside under a name made of the pid (`admin-key.1.new`), so one
 * start removed and rewrote the file another was about to link in: that one reported its own key as
 * made while the file held the other's, which the other, finding the name taken, revoked. The
 * volume then held a revoked key, and the key printed was stored nowhere. Here each process runs
 * alone in a PID namespace of its own (`unshare --pid`: pid 1 in both), as in the containers.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiKeyVerifier } from '../../src/adapters/redis/api-keys.ts';
import { suiteRedis } from '../support/redis.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('the admin key of starts with the same pid (containers on one volume)', () => {
  const suite = suiteRedis();

  it('is stored once and valid: the key the file holds is the one its start made, never one revoked', async () => {
    const trials = 150;
    const root = await mkdtemp(path.join(os.tmpdir(), 'sb-admin-key-pid-'));
    dirs.push(root);
    for (let i = 0; i < trials; i++) mkdirSync(path.join(root, `d${i}`));
    const src = (file: string) =>
      JSON.stringify(fileURLToPath(new URL(`../../src/${file}`, import.meta.url)));
    // Each start waits for the other's mark before it begins (a busy wait: microseconds apart).
    const starter = `
      import { existsSync, writeFileSync } from 'node:fs';
      const { connectRedis } = await import(${src('adapters/redis/client.ts')});
      const { ensureAdminKey } = await import(${src('app/admin-key.ts')});
      const [url, root, me, trials] = process.argv.slice(1);
      const redis = connectRedis({ url });
      await redis.ping();
      const made = [];
      for (let i = 0; i < Number(trials); i++) {
        writeFileSync(root + '/at-' + i + '-' + me, '');
        // Bounded: the other start gone (failed), this one ends too rather than spin on.
        const until = Date.now() + 20000;
        while (!existsSync(root + '/at-' + i + '-' + (1 - Number(me))))
          if (Date.now() > until) throw new Error('the other start stopped at trial ' + i);
        const o = await ensureAdminKey(redis, root + '/d' + i);
        if (o.created) made.push([i, o.key]);
      }
      await redis.quit();
      process.stdout.write(JSON.stringify({ pid: process.pid, made }));
    `;
    const run = (me: number) =>
      promisify(execFile)(
        'unshare',
        [
          '--pid',
          '--fork',
          // Killed with unshare (execFile's timeout), not left spinning as pid 1 of its namespace.
          '--kill-child',
          process.execPath,
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          starter,
          suite.server.url,
          root,
          String(me),
          String(trials),
        ],
        { timeout: 80_000, cwd: fileURLToPath(new URL('../../', import.meta.url)) },
      );
    const outs = (await Promise.all([run(0), run(1)])).map(
      (r) => JSON.parse(r.stdout) as { pid: number; made: [number, string][] },
    );
    // Both are pid 1, as the replicas are.
    expect(outs.map((o) => o.pid)).toEqual([1, 1]);
    const made = outs.flatMap((o) => o.made);
    const verifier = new ApiKeyVerifier(suite.redis, 0);
    const wrong: string[] = [];
    for (let i = 0; i < trials; i++) {
      const stored = readFileSync(path.join(root, `d${i}`, 'admin-key'), 'utf8').trim();
      const mine = made.filter(([j]) => j === i).map(([, key]) => key);
      const checked = await verifier.check(stored, 'default');
      if (mine.length !== 1 || mine[0] !== stored || !checked.ok)
        wrong.push(
          `d${i}: ${mine.length} made, stored ${mine.includes(stored) ? 'its' : 'another'} key, ${checked.ok ? 'valid' : 'refused'}`,
        );
    }
    expect(wrong).toEqual([]);
  }, 90_000);
});
