/**
 * The workloads `npm run bench` runs, each with the parameters its result reports, and the
 * workspace a run writes in (removed afterwards from a shared Redis).
 */
import { connectRedis } from '../../adapters/redis/client.ts';
import { globalKeys, KEY_ROOT } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { seededRandom } from '../sim/random.ts';
import { auditWorkload } from './audit.ts';
import { clusterWorkload } from './cluster.ts';
import { contractWorkload } from './contract.ts';
import { decisionWorkload } from './decision.ts';
import { e2eWorkload } from './e2e.ts';
import { fanoutWorkload } from './fanout.ts';
import { floorWorkload } from './floor.ts';
import { idleWorkload } from './idle.ts';
import { ingestWorkload } from './ingest.ts';
import type { BenchOptions, Workload } from './options.ts';
import { referenceWorkload } from './reference.ts';
import { replayWorkload } from './replay.ts';
import { seedWorkload } from './seed.ts';
import { policyWorkload, type ShapeWorkload, shapeWorkload } from './shapes.ts';
import { stepsWorkload } from './steps.ts';
import { timersWorkload } from './timers.ts';
import { twinWorkload } from './twin.ts';
import { dropWorkspace, type Note } from './workspace.ts';

interface Run {
  readonly url: string;
  /** A workspace of the run's own. */
  readonly workspace: string;
  readonly o: BenchOptions;
  readonly note: Note;
}

interface WorkloadSpec {
  /** What the result reports as the run's parameters (the Redis it used is added). */
  parameters(o: BenchOptions): Record<string, unknown>;
  run(r: Run): Promise<object>;
  /** Writes in `workspace`, which is removed afterwards from a shared Redis. */
  readonly ownsWorkspace?: boolean;
}

async function withClient<T>(
  url: string,
  opts: Parameters<typeof connectRedis>[1],
  f: (redis: RedisClient) => Promise<T>,
): Promise<T> {
  const redis = connectRedis({ url }, opts);
  try {
    return await f(redis);
  } finally {
    redis.disconnect();
  }
}

/** The other checkout whose Switchboard a workload ran (--switchboard), when one was given. */
const other = (o: BenchOptions) => (o.switchboard === undefined ? {} : { switchboard: o.switchboard });

const shape = (workload: ShapeWorkload): WorkloadSpec => ({
  parameters: (o) => ({
    sizes: o.sizes,
    agents: o.agents,
    decisions: o.decisions,
    seed: o.seed,
    ...(o.levels ? { levels: true } : {}),
  }),
  run: ({ url, workspace, o }) =>
    withClient(url, undefined, (redis) => shapeWorkload(redis, workspace, workload, o, seededRandom)),
});

const WORKLOADS: Record<Workload, WorkloadSpec> = {
  seed: {
    parameters: (o) => ({
      agents: o.agents,
      contacts: o.contacts,
      clients: o.clients,
      dispatchBatch: o.dispatchBatch,
      projectBatch: o.projectBatch,
      dispatchStepMs: o.dispatchStepMs,
      projectStepMs: o.projectStepMs,
      seed: o.seed,
      ...(o.offers ? { offers: true } : {}),
    }),
    run: ({ url, workspace, o, note }) => seedWorkload(url, workspace, o, note),
    ownsWorkspace: true,
  },
  floor: {
    parameters: (o) => ({ agents: o.agents, clients: o.clients, count: o.count, seed: o.seed }),
    run: ({ url, o, note }) => floorWorkload(url, o, note),
  },
  contract: {
    parameters: (o) => ({ agents: o.agents, contacts: o.contacts, seed: o.seed }),
    run: ({ url, workspace, o, note }) => contractWorkload(url, workspace, o, note),
  },
  decision: {
    parameters: (o) => ({
      queues: o.queues,
      decisions: o.decisions,
      dispatchBatch: o.dispatchBatch,
      projectBatch: o.projectBatch,
      dispatchStepMs: o.dispatchStepMs,
      projectStepMs: o.projectStepMs,
      seed: o.seed,
    }),
    // It makes one workspace per queue length and removes them itself.
    run: ({ url, workspace, o, note }) => decisionWorkload(url, workspace, o, note),
  },
  e2e: {
    parameters: (o) => ({
      agents: o.agents,
      ...(o.rates.length === 1 ? { rate: o.rates[0] } : { rates: o.rates }),
      duration: o.duration,
      warmup: o.warmup,
      inFlight: o.inFlight,
      ...other(o),
    }),
    run: async ({ url, workspace, o, note }) => {
      const e2e = await e2eWorkload(url, workspace, o, note);
      return o.rates.length === 1 ? { ...e2e.runs[0]!, warmupAsked: e2e.warmupAsked } : e2e;
    },
    ownsWorkspace: true,
  },
  ingest: {
    parameters: (o) => ({
      connections: o.connections,
      duration: o.duration,
      warmup: o.warmup,
      via: o.haproxy ? 'haproxy' : 'direct',
      ...other(o),
    }),
    run: ({ url, workspace, o, note }) => ingestWorkload(url, workspace, o, note),
    ownsWorkspace: true,
  },
  fanout: {
    parameters: (o) => ({
      subscribers: o.subscribers,
      rate: o.rates[0],
      duration: o.duration,
      warmup: o.warmup,
      agents: o.agents,
      via: o.haproxy ? 'haproxy' : 'direct',
      ...other(o),
    }),
    run: ({ url, workspace, o, note }) =>
      fanoutWorkload(url, workspace, { ...o, rate: o.rates[0] ?? 50 }, note),
    ownsWorkspace: true,
  },
  audit: {
    parameters: (o) => ({ events: o.events, agents: o.agents, seed: o.seed }),
    run: ({ url, workspace, o, note }) =>
      withClient(url, { commandTimeout: 60_000 }, (redis) => auditWorkload(redis, url, workspace, o, note)),
    ownsWorkspace: true,
  },
  replay: {
    parameters: (o) => ({ events: o.events, agents: o.agents, contacts: o.contacts, seed: o.seed }),
    run: ({ url, workspace, o, note }) =>
      withClient(url, { commandTimeout: 60_000 }, (redis) => replayWorkload(redis, workspace, o, note)),
    ownsWorkspace: true,
  },
  reference: {
    parameters: (o) => ({ agents: o.agents, contacts: o.contacts, seed: o.seed }),
    run: ({ url, o, note }) => referenceWorkload(url, o, note),
  },
  cluster: {
    parameters: (o) => ({
      agents: o.agents,
      contacts: o.contacts,
      dispatchBatch: o.dispatchBatch,
      projectBatch: o.projectBatch,
      dispatchStepMs: o.dispatchStepMs,
      projectStepMs: o.projectStepMs,
      seed: o.seed,
    }),
    // Its own private single Redis and Redis Cluster, whatever --redis-url says.
    run: ({ o, note }) => clusterWorkload(o, note),
  },
  timers: {
    parameters: (o) => ({ timers: o.timers, duration: o.duration, agents: o.agents, seed: o.seed }),
    // Its workspaces (and the seed load's) are its own; on a shared Redis they stay behind.
    run: ({ url, workspace, o, note }) => timersWorkload(url, workspace, o, note),
  },
  idle: {
    parameters: (o) => ({ agents: o.agents, cycles: o.decisions }),
    run: ({ url, workspace, o, note }) =>
      withClient(url, undefined, (redis) =>
        idleWorkload(redis, workspace, { agents: o.agents, cycles: o.decisions }, note),
      ),
    ownsWorkspace: true,
  },
  split: shape('split'),
  wide: shape('wide'),
  large: shape('large'),
  twin: {
    parameters: (o) => ({
      against: o.against,
      queued: o.sizes[0],
      agents: o.agents,
      decisions: o.decisions,
      seed: o.seed,
      ...(o.levels ? { levels: true } : {}),
    }),
    run: ({ url, workspace, o, note }) =>
      withClient(url, undefined, (redis) =>
        twinWorkload(
          redis,
          workspace,
          {
            against: o.against ?? '',
            agents: o.agents,
            queued: o.sizes[0] ?? 1000,
            decisions: o.decisions,
            seed: o.seed,
            levels: o.levels,
          },
          seededRandom,
          note,
        ),
      ),
  },
  steps: {
    parameters: (o) => ({ agents: o.agents, rounds: o.rounds, seed: o.seed, ...other(o) }),
    run: ({ url, workspace, o, note }) =>
      withClient(url, undefined, (redis) =>
        stepsWorkload(
          redis,
          workspace,
          { agents: o.agents, rounds: o.rounds, seed: o.seed, switchboard: o.switchboard ?? '' },
          seededRandom,
          note,
        ),
      ),
  },
  policy: {
    parameters: (o) => ({ sizes: o.sizes, decisions: o.decisions }),
    run: ({ url, workspace, o }) =>
      withClient(url, undefined, (redis) =>
        policyWorkload(redis, workspace, {
          n: o.sizes[0] ?? 4000,
          contacts: o.sizes[1] ?? 30_000,
          sets: Math.min(o.sizes[2] ?? 1024, 1024),
          decisions: o.decisions,
        }),
      ),
  },
};

/** Runs the workload `o` names against the Redis at `url` (`admin` is a client of it). */
export async function runWorkload(
  admin: RedisClient,
  url: string,
  o: BenchOptions,
  note: Note,
): Promise<{ parameters: Record<string, unknown>; figures: object }> {
  const spec = WORKLOADS[o.workload];
  // A private server is empty; on a shared one, a workspace of our own, removed afterwards.
  const workspace = o.redisUrl ? `bench-${Date.now()}` : 'bench';
  const redis = o.cluster
    ? 'private 3-master Redis Cluster, appendonly off'
    : o.redisUrl
      ? 'external'
      : 'private, appendonly off';
  const parameters = { ...spec.parameters(o), redis };
  let figures: object;
  try {
    figures = await spec.run({ url, workspace, o, note });
  } catch (err) {
    // The workload's own error is the one reported: a clean-up that fails too (the same Redis
    // refusing or gone) is said after it, not in its place.
    if (spec.ownsWorkspace && o.redisUrl) {
      const cleanup = await dropWorkspace(admin, workspace).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (cleanup !== undefined) throw new CleanupFailed(err, cleanup, workspace);
    }
    throw err;
  }
  if (spec.ownsWorkspace && o.redisUrl) await dropWorkspace(admin, workspace);
  return { parameters, figures };
}

/**
 * A workload that failed, and whose workspace could not be removed afterwards either: `failure`
 * is the workload's own error (what the user is told first), `cleanup` the removal's.
 */
export class CleanupFailed extends Error {
  constructor(
    readonly failure: unknown,
    readonly cleanup: unknown,
    readonly workspace: string,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
  }

  /** The line said after the failure: what was left and how to remove it. */
  get cleanupNote(): string {
    const why = this.cleanup instanceof Error ? this.cleanup.message : String(this.cleanup);
    return `removing its workspace "${this.workspace}" failed too (${why.split('\n')[0]}); its keys may be left: remove them with redis-cli --scan --pattern '${KEY_ROOT}:{${this.workspace}}:*' | xargs redis-cli unlink, and SREM ${globalKeys.workspaces} ${this.workspace}`;
  }
}
