import type { Redis } from 'ioredis';

/** The node id of the master that owns `slot`, by CLUSTER NODES as `conn`'s node sees it. */
export async function slotOwnerId(conn: Redis, slot: number): Promise<string> {
  for (const line of String(await conn.cluster('NODES')).split('\n')) {
    const f = line.split(' ');
    if (!f[2]?.includes('master')) continue;
    for (const r of f.slice(8)) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(r);
      if (m && slot >= Number(m[1]) && slot <= Number(m[2] ?? m[1])) return f[0]!;
    }
  }
  throw new Error(`slot ${slot} has no owner`);
}
