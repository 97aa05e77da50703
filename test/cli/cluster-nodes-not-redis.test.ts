/**
 * A tool given Redis Cluster seeds (--cluster-nodes, REDIS_CLUSTER_NODES) where something that is
 * not Redis answers (here an HTTP server) says so at once, as it does for --redis-url
 * (not-redis-edges.test.ts): what answers there is not Redis, and to check --cluster-nodes /
 * REDIS_CLUSTER_NODES; exit 3 (it could not run), within 6 s start included, not after the 10 s it waits
 * for a cluster that does not answer. The cluster client sees only "Connection is closed." from
 * such a seed (its slots refresh hides the protocol error).
 */
import { describe, expect, it } from 'vitest';
import { localServer } from '../support/local-server.ts';
import { bareEnv, seedOf } from './cluster-seeds.ts';
import { timed } from './run-cli.ts';

describe('Redis Cluster seeds naming something that is not Redis', () => {
  it('keys list --cluster-nodes: exit 3 at once, "not Redis", check --cluster-nodes', async () => {
    const http = await localServer((_req, res) => res.end('hello'));
    const seed = seedOf(http.url);
    const run = await timed('keys', ['list', '--cluster-nodes', seed, '--workspace', 'w'], bareEnv());
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toMatch(
      new RegExp(`^keys: what answers at cluster ${seed} is not Redis[^\\n]*check --cluster-nodes`, 'm'),
    );
    expect(run.stderr).not.toMatch(/Please report this/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.seconds, run.stderr).toBeLessThan(6);
  });

  it('audit, two seeds from REDIS_CLUSTER_NODES: the same, naming REDIS_CLUSTER_NODES', async () => {
    const a = await localServer((_req, res) => res.end('hello'));
    const b = await localServer((_req, res) => res.end('hello'));
    const seeds = `${seedOf(a.url)},${seedOf(b.url)}`;
    const run = await timed('audit', ['--workspace', 'w'], bareEnv({ REDIS_CLUSTER_NODES: seeds }));
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toMatch(
      new RegExp(`^audit: what answers at cluster ${seeds} is not Redis[^\\n]*REDIS_CLUSTER_NODES`, 'm'),
    );
    expect(run.stderr).not.toMatch(/Please report this/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.seconds, run.stderr).toBeLessThan(6);
  });

  it('rebuild --cluster-nodes: the same', async () => {
    const http = await localServer((_req, res) => res.end('hello'));
    const seed = seedOf(http.url);
    const run = await timed('rebuild', ['--cluster-nodes', seed, '--workspace', 'w'], bareEnv());
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toMatch(/^rebuild: what answers at cluster [^\n]* is not Redis[^\n]*--cluster-nodes/m);
    expect(run.stderr).not.toMatch(/Please report this|\n\s+at /);
    expect(run.seconds, run.stderr).toBeLessThan(6);
  });
});
