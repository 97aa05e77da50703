/**
 * Lease renewals while the global keys do not answer. The workspace registry
 * (`sb:workspaces:active`, read by the runner's discovery) and the registry of live holders
 * (`sb:dispatchers`, read by the keeper for the fair share) carry no hash tag: on a Redis Cluster
 * they live on one master, maybe not the workspaces' own. When that master stops answering without
 * closing its connections (a hung host, before a failover or with none), each read of them waits
 * out the command timeout (2 s). A round that read them before it renewed the leases sent its
 * renewals 1 s + 2 s (+ 2 s) apart, a lease's lifetime (3 s) or more: every lease of the process
 * lapsed every round, those of workspaces whose own master was fine too, and the loops were
 * interrupted and started again. The hang is injected on this suite's own client over the real
 * Redis: a command on a hung key waits the command timeout, then fails as ioredis's does.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { WorkspaceRunner } from '../../src/app/workspace-runner.ts';
import { LeaseKeeper } from '../../src/dispatcher/leases.ts';
import { suiteRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const COMMAND_TIMEOUT_MS = 2000;

/**
 * While `state.on`, a command on one of `keys` (a read of the workspace registry, or a pipeline
 * that touches one of them: the keeper's registry round, a read of that node's clock) is not
 * answered: it fails after COMMAND_TIMEOUT_MS with `Command timed out`. Other keys answer.
 */
function hangKeys(redis: RedisClient, keys: readonly string[], state: { on: boolean }): void {
  const hung = (key: unknown) => state.on && keys.includes(String(key));
  const timedOut = async (): Promise<never> => {
    await sleep(COMMAND_TIMEOUT_MS);
    throw new Error('Command timed out');
  };
  const client = redis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const zrangebyscore = client.zrangebyscore!.bind(redis);
  client.zrangebyscore = (key: unknown, ...rest: unknown[]) =>
    hung(key) ? timedOut() : zrangebyscore(key, ...rest);
  // A step on a hung key (a lease's renewal): sent as EVALSHA or FCALL.
  const send = client.sendCommand!.bind(redis);
  client.sendCommand = (command: unknown) => {
    const c = command as { name: string; args: unknown[]; reject(e: Error): void; promise: Promise<unknown> };
    if (['evalsha', 'eval', 'fcall'].includes(c.name) && c.args.some(hung)) {
      setTimeout(() => c.reject(new Error('Command timed out')), COMMAND_TIMEOUT_MS);
      return c.promise;
    }
    return send(command);
  };
  for (const name of ['exists', 'set', 'get']) {
    const command = client[name]!.bind(redis);
    client[name] = (key: unknown, ...rest: unknown[]) => (hung(key) ? timedOut() : command(key, ...rest));
  }
  const pipeline = client.pipeline!.bind(redis);
  client.pipeline = (...args: unknown[]) => {
    const p = pipeline(...args) as Record<string, (...a: unknown[]) => unknown>;
    let touched = false;
    for (const name of ['zadd', 'zremrangebyscore', 'zcard', 'exists']) {
      const command = p[name]!.bind(p);
      p[name] = (key: unknown, ...rest: unknown[]) => {
        if (hung(key)) touched = true;
        return command(key, ...rest);
      };
    }
    const exec = p.exec!.bind(p);
    p.exec = (...a: unknown[]) => (touched && state.on ? timedOut() : exec(...a));
    return p;
  };
}

interface Line {
  msg: string;
  workspace?: string;
}

describe('dispatcher leases while the global keys do not answer', () => {
  const suite = suiteRedis();

  /**
   * Four workspaces served by one keeper while `keys` hang for `hangMs`: none of their leases may
   * lapse. With `otherHeld`, a fifth workspace's lease is held by another holder and that lease's
   * key hangs too (its master frozen): the keeper's look at it waits each round.
   */
  async function hangFor(keys: readonly string[], hangMs: number, otherHeld = false, ownHung = false) {
    const run = `${Date.now().toString(36)}-${keys.length}`;
    const workspaces = [1, 2, 3, 4].map((i) => `slow-global-${run}-${i}`);
    const other = `slow-global-${run}-other`;
    if (otherHeld) await suite.redis.set(workspaceKeys(other).lease, 'someone-else', 'PX', 120_000);
    // With `ownHung`, the first workspace's lease (this keeper's) is on the frozen master too: it is
    // not renewed meanwhile, and the other three must not lapse for it.
    const hungKeys = [
      ...keys,
      ...(otherHeld ? [workspaceKeys(other).lease] : []),
      ...(ownHung ? [workspaceKeys(workspaces[0]!).lease] : []),
    ];
    const healthy = ownHung ? workspaces.slice(1) : workspaces;
    const lines: Line[] = [];
    const log = pino(
      { level: 'warn' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Line) },
    );
    const redis = suite.server.client();
    const state = { on: false };
    hangKeys(redis, hungKeys, state);
    let interrupted = 0;
    const loop = {
      run: async (_ws: string, running: () => boolean) => {
        while (running()) await sleep(20);
      },
      interrupt: () => void interrupted++,
    };
    // As the composition root wires them: LEASE_TTL_MS 3000, renewed and discovery every 1000.
    const keeper = new LeaseKeeper(redis, `slow-global-${run}`, log, { ttlMs: 3000, renewEveryMs: 1000 });
    const runner = new WorkspaceRunner(redis, loop, log, {
      workspaces: otherHeld ? [...workspaces, other] : workspaces,
      discover: true,
      leases: keeper,
      discoverEveryMs: 1000,
    });
    try {
      runner.start();
      await waitFor('every lease taken and served', () => workspaces.every((ws) => runner.serves(ws)));
      const from = lines.length;
      interrupted = 0;
      state.on = true;
      const notServed = new Set<string>();
      const until = Date.now() + hangMs;
      while (Date.now() < until) {
        for (const ws of workspaces) if (!runner.serves(ws)) notServed.add(ws);
        await sleep(100);
      }
      state.on = false;
      const during = lines.slice(from);
      const lapsed = during.filter(
        (l) => /lease (lapsed|lost)/.test(l.msg) && healthy.includes(String(l.workspace)),
      );
      console.log(
        JSON.stringify({
          hung: keys,
          lapsed: lapsed.length,
          interrupted,
          warnings: [...new Set(during.map((l) => l.msg.slice(0, 50)))],
        }),
      );
      // The hang took effect: the rounds met it.
      if (keys.includes(globalKeys.activeWorkspaces))
        expect(during.some((l) => /cannot read the workspace registry/.test(l.msg))).toBe(true);
      if (otherHeld)
        expect(during.some((l) => /cannot tell whether 1 dispatcher lease is free/.test(l.msg))).toBe(true);
      if (ownHung) expect(during.some((l) => /cannot renew a dispatcher lease/.test(l.msg))).toBe(true);
      if (keys.includes(globalKeys.dispatchers))
        expect(during.some((l) => /cannot update the dispatcher registry/.test(l.msg))).toBe(true);
      expect(
        lapsed.map((l) => `${l.workspace}: ${l.msg.slice(0, 40)}`),
        'leases lapsed or lost while those keys hung',
      ).toEqual([]);
      if (!ownHung) expect(interrupted, 'loops interrupted').toBe(0);
      expect(
        [...notServed].filter((ws) => healthy.includes(ws)),
        'workspaces not served at some point',
      ).toEqual([]);
      const holders = await Promise.all(healthy.map((ws) => suite.redis.get(workspaceKeys(ws).lease)));
      expect(holders).toEqual(healthy.map(() => `slow-global-${run}`));
    } finally {
      state.on = false;
      await runner.stop();
      redis.disconnect();
    }
  }

  it('renews every lease in time while the workspace registry does not answer', async () => {
    await hangFor([globalKeys.activeWorkspaces], 12_000);
  }, 40_000);

  it('renews every lease in time while the workspace registry and the dispatcher registry do not answer', async () => {
    await hangFor([globalKeys.activeWorkspaces, globalKeys.dispatchers], 12_000);
  }, 40_000);

  it("renews every lease in time while the workspace registry and another holder's lease do not answer", async () => {
    // A round that waits for the look at that lease (a command timeout) starts the next one at
    // once, not a whole interval after it: renewals stay within a lease's lifetime.
    await hangFor([globalKeys.activeWorkspaces], 12_000, true);
  }, 40_000);

  it("renews the other leases in time while one of its own leases and another holder's do not answer (one master frozen)", async () => {
    // The renewals and the looks at other holders' leases go out together: the round waits one
    // command timeout, not two one after the other.
    await hangFor([], 12_000, true, true);
  }, 40_000);
});
