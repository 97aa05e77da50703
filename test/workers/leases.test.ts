/**
 * Dispatcher leases when dispatchers serve different workspaces: a dispatcher that hands leases
 * back to reach its fair share must not leave a workspace that no other dispatcher serves. And a
 * runner's stop that meets a lease round under way holds no lease once it has ended.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { WorkspaceRunner } from '../../src/app/workspace-runner.ts';
import { LeaseKeeper } from '../../src/dispatcher/leases.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('dispatcher leases', () => {
  const suite = suiteRedis();

  it('keeps every workspace served when another dispatcher serves only its own', async () => {
    const run = Date.now().toString(36);
    const mine = [1, 2, 3, 4].map((i) => `lease-${run}-${i}`);
    const theirs = [`lease-${run}-other`];
    // A lifetime ten ticks long: a tick delayed by a loaded machine does not let a lease lapse.
    const opts = { ttlMs: 1000, renewEveryMs: 300 };
    const log = pino({ level: 'silent' });
    const a = new LeaseKeeper(suite.redis, `a-${run}`, log, opts);
    const b = new LeaseKeeper(suite.redis, `b-${run}`, log, opts);
    for (let i = 0; i < 3; i++) {
      await a.tick(mine);
      await sleep(100);
    }
    expect(mine.every((ws) => a.holds(ws))).toBe(true);
    // B starts: with two live dispatchers A's fair share halves, and B never takes A's workspaces.
    const unserved = new Set<string>();
    for (let i = 0; i < 30; i++) {
      await a.tick(mine);
      await b.tick(theirs);
      for (const ws of mine) if ((await suite.redis.get(workspaceKeys(ws).lease)) === null) unserved.add(ws);
      await sleep(100);
    }
    expect(
      mine.filter((ws) => !a.holds(ws)),
      'every workspace held at the end',
    ).toEqual([]);
    expect(b.holds(theirs[0]!)).toBe(true);
    // A handed back its surplus once and took it again after a TTL; it then keeps it.
    const held = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      await a.tick(mine);
      await b.tick(theirs);
      for (const ws of mine) if (a.holds(ws)) held.set(ws, (held.get(ws) ?? 0) + 1);
      await sleep(100);
    }
    expect([...held.values()], 'held in every tick once adopted').toEqual([10, 10, 10, 10]);
    console.log(JSON.stringify({ unservedOnce: [...unserved].length }));
    await a.releaseAll();
    await b.releaseAll();
  });

  it('a stop during a lease round under way leaves no lease held', async () => {
    const run = Date.now().toString(36);
    const workspaces = [1, 2, 3].map((i) => `stop-${run}-${i}`);
    const log = pino({ level: 'silent' });
    // The round's reads are slow (a loaded Redis, many workspaces): the stop comes between them.
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    class SlowRound extends LeaseKeeper {
      override async tick(ws: readonly string[]) {
        await gate;
        return super.tick(ws);
      }
    }
    const keeper = new SlowRound(suite.redis, `stop-${run}`, log, { ttlMs: 10_000, renewEveryMs: 3_000 });
    const runner = new WorkspaceRunner(
      suite.redis,
      { run: async (_ws, running) => void (await waitUntilStopped(running)) },
      log,
      { workspaces, discover: false, leases: keeper, discoverEveryMs: 3_000 },
    );
    runner.start();
    await sleep(50);
    const stopped = runner.stop();
    await sleep(50);
    open();
    await stopped;
    await sleep(300); // what the round under way still does
    const held = await Promise.all(workspaces.map((ws) => suite.redis.get(workspaceKeys(ws).lease)));
    expect(held, 'no lease held by the stopped runner').toEqual([null, null, null]);
  });

  it('a workspace registry that cannot be read leaves the configured workspaces served, their leases renewed', async () => {
    const run = Date.now().toString(36);
    const log = pino({ level: 'silent' });
    const loop = {
      run: async (_ws: string, running: () => boolean) => void (await waitUntilStopped(running)),
    };
    const opts = { ttlMs: 1000, renewEveryMs: 200 };
    const held = [`registry-${run}-held`];
    const later = [`registry-${run}-later`];
    const a = new LeaseKeeper(suite.redis, `a-${run}`, log, opts);
    const first = new WorkspaceRunner(suite.redis, loop, log, {
      workspaces: held,
      discover: true,
      leases: a,
      discoverEveryMs: 200,
    });
    let second: WorkspaceRunner | undefined;
    try {
      first.start();
      await waitFor('the first workspace served', () => first.serves(held[0]!));
      // The registry's key cannot be read (on a cluster: its master down, failing over).
      await suite.redis
        .rename(globalKeys.activeWorkspaces, `${globalKeys.activeWorkspaces}:aside`)
        .catch(() => {});
      await suite.redis.set(globalKeys.activeWorkspaces, 'not a sorted set');
      const b = new LeaseKeeper(suite.redis, `b-${run}`, log, opts);
      second = new WorkspaceRunner(suite.redis, loop, log, {
        workspaces: later,
        discover: true,
        leases: b,
        discoverEveryMs: 200,
      });
      second.start();
      await sleep(1500); // longer than a lease lives
      expect(await suite.redis.get(workspaceKeys(held[0]!).lease), 'the lease renewed').toBe(`a-${run}`);
      expect(first.serves(held[0]!)).toBe(true);
      expect(await suite.redis.get(workspaceKeys(later[0]!).lease), 'a lease taken').toBe(`b-${run}`);
      expect(second.serves(later[0]!), 'a runner started meanwhile serves its workspace').toBe(true);
    } finally {
      await first.stop();
      await second?.stop();
      await suite.redis.del(globalKeys.activeWorkspaces);
      await suite.redis
        .rename(`${globalKeys.activeWorkspaces}:aside`, globalKeys.activeWorkspaces)
        .catch(() => {});
    }
  });

  it('a lease that lapsed says so, and one another holder took names it: never "another serves" for a lapse', async () => {
    const run = Date.now().toString(36);
    const [lapsed, taken] = [`lapse-${run}-1`, `lapse-${run}-2`];
    const lines: { msg: string; workspace?: string; holder?: string }[] = [];
    const log = pino(
      { level: 'warn' },
      { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) },
    );
    const keeper = new LeaseKeeper(suite.redis, `k-${run}`, log, { ttlMs: 60_000, renewEveryMs: 20_000 });
    await keeper.tick([lapsed, taken]);
    expect(keeper.holds(lapsed) && keeper.holds(taken)).toBe(true);
    // One lapses (its process or Redis paused past its lifetime); another holder takes the other.
    await suite.redis.del(workspaceKeys(lapsed).lease);
    await suite.redis.set(workspaceKeys(taken).lease, `other-${run}`);
    await keeper.tick([lapsed, taken]);
    const said = (ws: string) => lines.find((l) => l.workspace === ws);
    expect(said(lapsed)?.msg).toMatch(/lease lapsed before it was renewed/);
    expect(said(lapsed)?.msg).not.toMatch(/another/);
    expect(said(taken)?.msg).toMatch(/lease lost; another dispatcher serves this workspace now/);
    expect(said(taken)?.holder).toBe(`other-${run}`);
    // The lapsed one, free, is taken again in that round.
    expect(keeper.holds(lapsed)).toBe(true);
    await keeper.releaseAll();
  });
});

async function waitUntilStopped(running: () => boolean): Promise<void> {
  while (running()) await sleep(20);
}
