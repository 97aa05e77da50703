/**
 * The pool of Redis Clusters made ahead for the cluster target (cluster-pool.ts), through its
 * HTTP interface as the suites use it: each cluster handed out is a new one, serving; a cluster
 * given back is stopped (in the background); one given back twice, or never handed out, is
 * refused. Runs in the `cluster` project only (where the pool is provided).
 */
import net from 'node:net';
import { describe, expect, inject, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { loginUrl } from '../../src/topology/redis-users.ts';
import type { PooledCluster } from './cluster-pool.ts';
import { waitFor } from './wait.ts';

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe.runIf(inject('clusterPool') !== undefined)('the cluster pool', () => {
  const pool = inject('clusterPool') as string;
  const take = async (): Promise<PooledCluster> => {
    const res = await fetch(`${pool}/clusters`, { method: 'POST' });
    expect(res.status).toBe(200);
    return (await res.json()) as PooledCluster;
  };
  const giveBack = async (id: string): Promise<number> =>
    (await fetch(`${pool}/clusters/${id}`, { method: 'DELETE' })).status;

  it('hands out a new, serving cluster each time and stops one given back', async () => {
    const [a, b] = await Promise.all([take(), take()]);
    expect(a.id).not.toBe(b.id);
    const portsOf = (c: PooledCluster) => c.nodes.map((n) => n.port);
    // Six nodes each (3 masters with a replica each), no node shared.
    expect(portsOf(a)).toHaveLength(6);
    expect(portsOf(a).filter((p) => portsOf(b).includes(p))).toEqual([]);
    for (const c of [a, b]) {
      const master = c.nodes.find((n) => n.role === 'master')!;
      const admin = connectRedis({ url: loginUrl(c.credentials.admin, master.host, master.port) });
      try {
        expect(await admin.call('CLUSTER', 'INFO')).toMatch(/cluster_state:ok/);
        // Nobody wrote to it before.
        expect(await admin.call('DBSIZE')).toBe(0);
      } finally {
        admin.disconnect();
      }
    }

    expect(await giveBack(a.id)).toBe(204);
    // Stopped in the background: its nodes stop listening shortly after.
    for (const p of portsOf(a))
      await waitFor(`port ${p} to close after the cluster was given back`, async () => !(await accepts(p)), {
        timeoutMs: 15_000,
      });
    // The other one still serves.
    expect(await accepts(portsOf(b)[0]!)).toBe(true);
    expect(await giveBack(a.id)).toBe(404);
    expect(await giveBack('999999')).toBe(404);
    expect(await giveBack(b.id)).toBe(204);
  });
});
