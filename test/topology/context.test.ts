/**
 * `npm run topology -- --fresh` (src/topology/local/context.ts, wipeIfFresh): what an earlier
 * launch kept in the data directory (the cluster with its manifest, node data and AOF, the Redis
 * passwords, the admin key, the VRRP password) is deleted before anything starts, once per run;
 * the logs stay. Without --fresh nothing is deleted and the kept cluster is found again.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchContext } from '../../src/topology/local/context.ts';
import { keptCluster } from '../../src/topology/redis-cluster.ts';
import { launchOptions, tempDir } from './helpers.ts';

const dirs: { remove(): Promise<void> }[] = [];
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

/** A data directory as a launch leaves it. */
function keptDataDir(dir: string) {
  const files = {
    manifest: path.join(dir, 'cluster', 'cluster.json'),
    aof: path.join(dir, 'cluster', 'node-1', 'appendonlydir', 'appendonly.aof.1.incr.aof'),
    credentials: path.join(dir, 'redis-credentials.json'),
    adminKey: path.join(dir, 'admin-key'),
    vrrpPassword: path.join(dir, 'vrrp-password'),
    log: path.join(dir, 'logs', 'redis-15000.log'),
  };
  for (const f of Object.values(files)) mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(
    files.manifest,
    JSON.stringify({ ports: [15000], masters: 3, replicasPerMaster: 1, haproxyCheckPassword: 'x' }),
  );
  for (const f of [files.aof, files.credentials, files.adminKey, files.vrrpPassword, files.log])
    writeFileSync(f, 'kept\n');
  return files;
}

function context(dataDir: string, fresh: boolean, said: string[]): LaunchContext {
  const ctx = new LaunchContext(launchOptions(dataDir, fresh, false));
  Object.defineProperty(ctx, 'say', { value: (line: string) => said.push(line) });
  return ctx;
}

describe('--fresh', () => {
  it('deletes the kept cluster, its passwords, the admin key and the VRRP password, keeps the logs; without it nothing goes', async () => {
    const d = await tempDir('fresh');
    dirs.push(d);
    const files = keptDataDir(d.dir);
    const said: string[] = [];

    context(d.dir, false, said).wipeIfFresh();
    for (const f of Object.values(files)) expect(existsSync(f), f).toBe(true);
    expect(keptCluster(path.join(d.dir, 'cluster'))).toBeDefined();
    expect(said).toEqual([]);

    const fresh = context(d.dir, true, said);
    fresh.wipeIfFresh();
    expect(keptCluster(path.join(d.dir, 'cluster'))).toBeUndefined();
    for (const f of [files.manifest, files.aof, files.credentials, files.adminKey, files.vrrpPassword])
      expect(existsSync(f), f).toBe(false);
    expect(existsSync(path.join(d.dir, 'cluster'))).toBe(false);
    expect(existsSync(files.log)).toBe(true);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^--fresh: deleted .*cluster.*redis-credentials\.json.*admin-key.*vrrp-password/);

    // Once per run: what this run makes after the wipe (the next startCluster call) stays.
    writeFileSync(files.adminKey, 'new\n');
    fresh.wipeIfFresh();
    expect(existsSync(files.adminKey)).toBe(true);
  });
});
