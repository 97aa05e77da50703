/**
 * `npm run bench -- <workload> [options]`: the workloads of BENCH.md, run against a private
 * redis-server this command starts (appendonly off) or the one `--redis-url` names. Each run
 * prints one JSON line `{workload, parameters, machine, figures, at}` with `--json`, a table
 * otherwise.
 *
 * - `seed`: 5,000 contacts queued up front, N agents all available; the dispatcher step runs
 *   while every assignment at once completes (zero handle time), so routing is the bottleneck.
 *   `routing` counts only the time inside dispatchPending; `loop` the whole drain, including the
 *   CompleteContact appends and their projection.
 * - `floor`: the hardware floor, one hand-written Lua step per assignment from 50 clients.
 * - `decision`: the cost of one routing decision with 1,000 and 100,000 contacts waiting.
 * - `e2e`: one Switchboard process; `POST /contacts` at a fixed offered rate to `AssignmentMade`
 *   on a WebSocket subscriber (src/cli/bench/e2e.ts).
 * - `ingest`: `POST /contacts` throughput, Switchboard against a bare fastify XADD handler
 *   (src/cli/bench/ingest.ts).
 */
import os from 'node:os';
import { Redis } from 'ioredis';
import { connectRedis } from '../adapters/redis/client.ts';
import { appendCommand } from '../adapters/redis/command-log.ts';
import { globalKeys, KEY_ROOT, workspaceKeys } from '../adapters/redis/keys.ts';
import { type RedisServerHandle, startRedisServer } from '../topology/redis-server.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { defaultDispatcherOptions, dispatchPending } from '../dispatcher/dispatcher.ts';
import type { Command } from '../domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../projections/projector.ts';
import { auditWorkload } from './bench/audit.ts';
import { e2eWorkload } from './bench/e2e.ts';
import { ingestWorkload } from './bench/ingest.ts';
import { DEFAULT_SIZES, type ShapeWorkload, shapeWorkload } from './bench/shapes.ts';
import { OptionChecker, parseOrUsage, UsageError } from './sim/options.ts';
import { seededRandom, seedSkills } from './sim/random.ts';
import { mean, median, percentile, round } from './sim/stats.ts';

const USAGE = `Usage: npm run bench -- [seed|floor|decision|e2e|ingest|split|wide|large|audit] [options]

Workloads (BENCH.md):
  seed        dispatch drain: --contacts queued up front, --agents all available, zero handle time
  floor       the hardware floor: one hand-written Lua assignment step from --clients connections
  decision    median time of one routing decision with 1,000 and 100,000 contacts waiting
  e2e         one Switchboard process: POST /contacts at --rate (open loop) to AssignmentMade
              on a WebSocket; latency percentiles (each assignment completed, not timed)
  ingest      POST /contacts requests/s from --connections: Switchboard vs a bare fastify XADD
  split       n agents with only A, n with only B, one with both; contacts needing [A,B], then
              --decisions agents with only A arriving; worst and median dispatch step per --sizes n
  wide        one agent with 32 skills against --sizes contacts each needing a distinct 4 of them;
              it completes and takes work --decisions times
  large       50 skills, --agents (default 10000) with 3..8, contacts needing 1..3, priorities 0..9:
              agents made available against queues of --sizes; then contacts against a full pool
  audit       a log of --events events made through the Lua steps (--agents, default 200), then
              audited as npm run audit does, and replayed again from memory: events/s of each

Options:
  --workload <name>      the workload (or give it as the first argument; default seed)
  --agents <n>           agents (default 40; e2e 200)
  --contacts <n>         seed: contacts queued up front (default 5000)
  --events <n>           audit: events in the log to audit (default 100000)
  --clients <n>          seed: concurrent dispatch loops (default 1); floor: connections (default 50)
  --count <n>            floor: assignment steps to run (default 200000)
  --queues <a,b,...>     decision: queue lengths to compare (default 1000,100000)
  --decisions <n>        decision: agents made available one at a time (default 200)
  --rate <n>             e2e: offered contacts/s (default 1000)
  --rates <a,b,...>      e2e: several offered rates in one go (instead of --rate)
  --duration <s>         e2e, ingest: seconds of each measured run (default 5)
  --warmup <s>           e2e, ingest: seconds of load before measuring, not reported (default 1)
  --in-flight <n>        e2e: most unanswered POSTs; later sends are dropped and counted (default 256)
  --connections <n>      ingest: concurrent keep-alive connections (default 50)
  --dispatch-batch <n>   work items per dispatch step (default ${defaultDispatcherOptions.batch}, as DISPATCH_BATCH)
  --project-batch <n>    commands per projector step (default ${defaultProjectorOptions.batch}, as PROJECT_BATCH)
  --sizes <a,b,...>      split, wide, large: sizes to compare (split ${DEFAULT_SIZES.split.join(',')}; wide ${DEFAULT_SIZES.wide.join(',')}; large ${DEFAULT_SIZES.large.join(',')})
  --seed <n>             seed of the skills (default 42)
  --redis-url <url>      use this Redis instead of starting a private redis-server
  --json                 one JSON line per run instead of a table
  --help                 this text
`;

type Workload = 'seed' | 'floor' | 'decision' | 'e2e' | 'ingest' | 'audit' | ShapeWorkload;
const WORKLOADS: readonly Workload[] = [
  'seed',
  'floor',
  'decision',
  'e2e',
  'ingest',
  'split',
  'wide',
  'large',
  'audit',
];

interface BenchOptions {
  readonly workload: Workload;
  readonly agents: number;
  readonly contacts: number;
  readonly events: number;
  readonly clients: number;
  readonly count: number;
  readonly queues: readonly number[];
  readonly sizes: readonly number[];
  readonly decisions: number;
  readonly rates: readonly number[];
  readonly duration: number;
  readonly warmup: number;
  readonly inFlight: number;
  readonly connections: number;
  readonly dispatchBatch: number;
  readonly projectBatch: number;
  readonly seed: number;
  readonly redisUrl: string | undefined;
  readonly json: boolean;
}

function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values, positionals } = parseOrUsage({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      workload: { type: 'string' },
      agents: { type: 'string' },
      contacts: { type: 'string' },
      events: { type: 'string' },
      clients: { type: 'string' },
      count: { type: 'string' },
      queues: { type: 'string' },
      sizes: { type: 'string' },
      decisions: { type: 'string' },
      rate: { type: 'string' },
      rates: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'in-flight': { type: 'string' },
      connections: { type: 'string' },
      'dispatch-batch': { type: 'string' },
      'project-batch': { type: 'string' },
      seed: { type: 'string' },
      'redis-url': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const check = new OptionChecker();
  const named = values.workload ?? positionals[0] ?? 'seed';
  check.check(
    positionals.length <= (values.workload === undefined ? 1 : 0),
    `unexpected argument(s): ${positionals.slice(values.workload === undefined ? 1 : 0).join(' ')}`,
  );
  check.check(
    WORKLOADS.includes(named as Workload),
    `workload: must be one of ${WORKLOADS.join(', ')} (got "${named}")`,
  );
  const workload = named as Workload;
  const agents = check.number(
    'agents',
    values.agents,
    workload === 'e2e' || workload === 'audit' ? 200 : workload === 'large' ? 10_000 : 40,
    {
      integer: true,
      min: 1,
      max: 1_000_000,
    },
  );
  const contacts = check.number('contacts', values.contacts, 5000, {
    integer: true,
    min: 1,
    max: 10_000_000,
  });
  const events = check.number('events', values.events, 100_000, { integer: true, min: 1, max: 100_000_000 });
  const clients = check.number('clients', values.clients, workload === 'floor' ? 50 : 1, {
    integer: true,
    min: 1,
    max: 1000,
  });
  const count = check.number('count', values.count, 200_000, { integer: true, min: 1, max: 100_000_000 });
  const queuesRaw = values.queues ?? '1000,100000';
  const queues = queuesRaw.split(',').map((s) => Number(s.trim()));
  check.check(
    queues.length >= 1 && queues.every((n) => Number.isInteger(n) && n >= 1 && n <= 10_000_000),
    `--queues: must be a comma-separated list of queue lengths from 1 to 10000000 (got "${queuesRaw}")`,
  );
  const decisions = check.number('decisions', values.decisions, 200, { integer: true, min: 1, max: 100_000 });
  const sizesRaw = values.sizes ?? (isShape(workload) ? DEFAULT_SIZES[workload].join(',') : '1000');
  const sizes = sizesRaw.split(',').map((s) => Number(s.trim()));
  check.check(
    sizes.length >= 1 && sizes.every((n) => Number.isInteger(n) && n >= 1 && n <= 10_000_000),
    `--sizes: must be a comma-separated list of sizes from 1 to 10000000 (got "${sizesRaw}")`,
  );
  const rate = check.number('rate', values.rate, 1000, { integer: true, min: 1, max: 100_000 });
  check.check(
    values.rate === undefined || values.rates === undefined,
    '--rate and --rates: give one or the other',
  );
  let rates = [rate];
  if (values.rates !== undefined) {
    rates = values.rates.split(',').map((s) => Number(s.trim()));
    check.check(
      rates.length >= 1 &&
        rates.length <= 20 &&
        rates.every((n) => Number.isInteger(n) && n >= 1 && n <= 100_000),
      `--rates: must be a comma-separated list of up to 20 rates from 1 to 100000 (got "${values.rates}")`,
    );
  }
  const duration = check.number('duration', values.duration, 5, { min: 0.1, max: 300 });
  const warmup = check.number('warmup', values.warmup, 1, { min: 0, max: 60 });
  const inFlight = check.number('in-flight', values['in-flight'], 256, {
    integer: true,
    min: 1,
    max: 10_000,
  });
  const connections = check.number('connections', values.connections, 50, {
    integer: true,
    min: 1,
    max: 1000,
  });
  const dispatchBatch = check.number(
    'dispatch-batch',
    values['dispatch-batch'],
    defaultDispatcherOptions.batch,
    {
      integer: true,
      min: 1,
      max: 5000,
    },
  );
  const projectBatch = check.number('project-batch', values['project-batch'], defaultProjectorOptions.batch, {
    integer: true,
    min: 1,
    max: 5000,
  });
  const seed = check.number('seed', values.seed, 42, { integer: true, min: 0, max: 2 ** 32 - 1 });
  const redisUrl = values['redis-url'];
  if (redisUrl !== undefined) {
    let ok = false;
    try {
      const u = new URL(redisUrl);
      ok = u.protocol === 'redis:' || u.protocol === 'rediss:';
    } catch {
      ok = false;
    }
    check.check(
      ok,
      `--redis-url: must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379 (got "${redisUrl}")`,
    );
  }
  if (workload === 'decision')
    check.check(
      decisions + DECISION_WARMUP <= Math.min(...queues),
      `--decisions: must be at most the shortest queue less ${DECISION_WARMUP} (${Math.min(...queues) - DECISION_WARMUP}), or some agents find nothing to take`,
    );
  check.done();
  return {
    workload,
    agents,
    contacts,
    events,
    clients,
    count,
    queues,
    sizes,
    decisions,
    rates,
    duration,
    warmup,
    inFlight,
    connections,
    dispatchBatch,
    projectBatch,
    seed,
    redisUrl,
    json: values.json ?? false,
  };
}

const isShape = (w: Workload): w is ShapeWorkload => w === 'split' || w === 'wide' || w === 'large';

// ---- shared ----

interface Machine {
  readonly cpus: number;
  readonly model: string;
  readonly node: string;
  readonly redis: string;
}

async function machine(redis: RedisClient): Promise<Machine> {
  const info = (await redis.info('server')) as string;
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
  };
}

const nowNs = () => process.hrtime.bigint();
const seconds = (ns: bigint) => Number(ns) / 1e9;

let quiet = false;
function note(text: string): void {
  if (!quiet) process.stderr.write(`bench: ${text}\n`);
}

/** Appends commands in concurrent chunks (the client pipelines them), then projects them all. */
async function appendAndProject(
  redis: RedisClient,
  workspace: string,
  commands: readonly Command[],
  chunk = 2000,
): Promise<void> {
  for (let i = 0; i < commands.length; i += chunk) {
    await Promise.all(
      commands.slice(i, i + chunk).map((command) => appendCommand(redis, { workspace, command })),
    );
    if ((i / chunk) % 10 === 9) await project(redis, workspace);
  }
  await project(redis, workspace);
}

function project(redis: RedisClient, workspace: string, batch = 1000): Promise<number> {
  return projectPending(redis, workspace, [], { ...defaultProjectorOptions, batch });
}

interface Agent {
  readonly id: string;
  readonly skills: string[];
}

function seedAgents(n: number, rng: () => number): Agent[] {
  return Array.from({ length: n }, (_, i) => ({ id: `agent-${i + 1}`, skills: seedSkills(rng) }));
}

function registerCommands(agents: readonly Agent[]): Command[] {
  return agents.map((a) => ({ type: 'RegisterAgent', agentId: a.id, skills: a.skills, capacity: 1 }));
}

function availableCommands(agents: readonly Agent[]): Command[] {
  return agents.map((a) => ({ type: 'ChangeAgentState', agentId: a.id, state: 'available' }));
}

function queueCommands(n: number, rng: () => number, prefix = 'contact'): Command[] {
  return Array.from({ length: n }, (_, i) => ({
    type: 'QueueContact',
    contactId: `${prefix}-${i + 1}`,
    skills: seedSkills(rng),
    priority: 0,
  }));
}

/** Skill pairs some contact needs and no agent holds: those contacts can never be assigned. */
function uncovered(agents: readonly Agent[], commands: readonly Command[]): number {
  const held = new Set(agents.map((a) => a.skills.join(',')));
  return commands.filter((c) => c.type === 'QueueContact' && !held.has(c.skills.join(','))).length;
}

/** Removes a workspace's keys (on a shared Redis). */
async function dropWorkspace(redis: RedisClient, workspace: string): Promise<void> {
  const r = redis as Redis;
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${KEY_ROOT}:{${workspace}}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await r.unlink(...keys);
  } while (cursor !== '0');
  await r.srem(globalKeys.workspaces, workspace);
}

// ---- seed: the dispatch drain ----

interface SeedFigures {
  readonly assignments: number;
  /** Assignments per second of the dispatch step alone (time inside dispatchPending). */
  readonly routingPerS: number;
  /** Assignments per second of the whole drain, completes and projection included. */
  readonly loopPerS: number;
  readonly routingSeconds: number;
  readonly loopSeconds: number;
  /** Loop iterations: dispatch, then complete and project what it assigned. */
  readonly rounds: number;
  readonly unassignable: number;
  readonly setupSeconds: number;
}

async function seedWorkload(url: string, workspace: string, o: BenchOptions): Promise<SeedFigures> {
  const redis = connectRedis({ url });
  const clients = [redis, ...Array.from({ length: o.clients - 1 }, () => connectRedis({ url }))];
  try {
    const k = workspaceKeys(workspace);
    const rng = seededRandom(o.seed);
    const agents = seedAgents(o.agents, rng);
    const contacts = queueCommands(o.contacts, rng);
    const unassignable = uncovered(agents, contacts);
    if (unassignable > 0)
      note(
        `${unassignable} contacts need a skill pair no agent holds; they stay queued (try another --seed)`,
      );
    const setupStart = nowNs();
    await ensureGroup(redis, workspace);
    note(`setting up ${o.agents} agents and ${o.contacts} contacts`);
    await appendAndProject(redis, workspace, registerCommands(agents));
    await appendAndProject(redis, workspace, availableCommands(agents));
    await appendAndProject(redis, workspace, contacts);
    const setupSeconds = seconds(nowNs() - setupStart);
    const target = o.contacts - unassignable;

    // Where the drain's AssignmentMade events start.
    let cursor =
      ((await redis.xrevrange(k.events, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]?.[0] ?? '0-0';
    let reading: Promise<unknown> = Promise.resolve();
    /** New AssignmentMade events since the last call (serialized between loops). */
    const takeAssigned = (conn: RedisClient): Promise<string[]> => {
      const run = reading.then(async () => {
        const entries = (await conn.xrange(k.events, `(${cursor}`, '+', 'COUNT', 50_000)) as [
          string,
          string[],
        ][];
        const ids: string[] = [];
        for (const [id, fields] of entries) {
          cursor = id;
          if (fields[1] !== 'AssignmentMade') continue;
          const env = JSON.parse(fields[3] ?? '{}') as { data?: { contactId?: string } };
          if (env.data?.contactId) ids.push(env.data.contactId);
        }
        return ids;
      });
      reading = run.catch(() => {});
      return run;
    };

    const dispatchOpts = { ...defaultDispatcherOptions, batch: o.dispatchBatch };
    const projectOpts = { ...defaultProjectorOptions, batch: o.projectBatch };
    let assignments = 0;
    let rounds = 0;
    let inFlight = 0;
    let since = 0n;
    let routingNs = 0n;
    let endNs: bigint | undefined;
    let idleStreak = 0;
    const hardStop = Date.now() + 600_000;
    note(`draining with ${o.clients} dispatch loop(s)`);
    const t0 = nowNs();

    const loop = async (conn: RedisClient) => {
      while (endNs === undefined && idleStreak <= 10 * o.clients && Date.now() < hardStop) {
        if (inFlight++ === 0) since = nowNs();
        let made: number;
        try {
          made = await dispatchPending(conn, workspace, dispatchOpts);
        } finally {
          if (--inFlight === 0) routingNs += nowNs() - since;
        }
        rounds++;
        assignments += made;
        if (assignments >= target) {
          endNs ??= nowNs();
          break;
        }
        // Zero handle time: every assigned contact completes at once; projecting the
        // completions puts the agents back in the availability sets (and on the work list).
        const done = await takeAssigned(conn);
        await Promise.all(
          done.map((contactId) =>
            appendCommand(conn, { workspace, command: { type: 'CompleteContact', contactId } }),
          ),
        );
        const applied = await projectPending(conn, workspace, [], projectOpts);
        idleStreak = made === 0 && done.length === 0 && applied === 0 ? idleStreak + 1 : 0;
      }
    };
    await Promise.all(clients.map((c) => loop(c)));
    const loopNs = (endNs ?? nowNs()) - t0;

    const recorded = Number((await redis.hget(k.stats, 'assignments')) ?? 0);
    if (recorded !== assignments)
      throw new Error(
        `the bench counted ${assignments} assignments, the workspace's stats ${recorded}` +
          (o.redisUrl
            ? ' (is a Switchboard dispatcher serving this Redis too? run without --redis-url)'
            : ''),
      );
    if (assignments < target)
      throw new Error(`the drain stalled after ${assignments} of ${target} assignments`);
    return {
      assignments,
      routingPerS: Math.round(assignments / seconds(routingNs)),
      loopPerS: Math.round(assignments / seconds(loopNs)),
      routingSeconds: round(seconds(routingNs), 3) ?? 0,
      loopSeconds: round(seconds(loopNs), 3) ?? 0,
      rounds,
      unassignable,
      setupSeconds: round(setupSeconds, 2) ?? 0,
    };
  } finally {
    for (const c of clients) c.disconnect();
  }
}

// ---- floor: one hand-written Lua step ----

/**
 * The least any assignment can cost on this Redis: pop the head contact, ZINTER its two skills'
 * availability sets (the LAA is the lowest score), take the agent out of both, record the
 * assignment in a hash and append one stream entry. With zero handle time the agent re-enters
 * both sets at once (now as score), as in the seed workload, so the run never runs dry.
 *
 * KEYS[1] queue, KEYS[2] assignments, KEYS[3] stream, KEYS[4..] availability sets;
 * ARGV[1] availability key prefix. Contacts are "<id>|<skill>|<skill>".
 */
const FLOOR_LUA = `
local popped = redis.call('ZPOPMIN', KEYS[1])
local member = popped[1]
if not member then return -1 end
local id, s1, s2 = string.match(member, '^([^|]+)|([^|]+)|([^|]+)$')
local k1, k2 = ARGV[1] .. s1, ARGV[1] .. s2
local agents = redis.call('ZINTER', 2, k1, k2, 'AGGREGATE', 'MIN')
local agent = agents[1]
if not agent then return 0 end
redis.call('ZREM', k1, agent)
redis.call('ZREM', k2, agent)
redis.call('HSET', KEYS[2], id, agent)
redis.call('XADD', KEYS[3], '*', 'contact', id, 'agent', agent)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', k1, now, agent)
redis.call('ZADD', k2, now, agent)
return 1
`;

interface FloorFigures {
  readonly opsPerS: number;
  readonly ops: number;
  readonly assigned: number;
  readonly meanLatencyUs: number | null;
  readonly p99LatencyUs: number | null;
  readonly seconds: number;
}

type FloorClient = Redis & { sbFloor(...args: (string | number)[]): Promise<number> };

async function floorWorkload(url: string, o: BenchOptions): Promise<FloorFigures> {
  const tag = `{bench-floor-${Date.now()}}`;
  const prefix = `${KEY_ROOT}:${tag}:avail:`;
  const queue = `${KEY_ROOT}:${tag}:queue`;
  const assignments = `${KEY_ROOT}:${tag}:assignments`;
  const stream = `${KEY_ROOT}:${tag}:events`;
  const skills = ['Billing', 'Disputes', 'English', 'Spanish', 'Support'];
  const availKeys = skills.map((s) => prefix + s);
  const admin = new Redis(url, { maxRetriesPerRequest: 2 });
  const clients: FloorClient[] = [];
  try {
    const rng = seededRandom(o.seed);
    const agents = seedAgents(o.agents, rng);
    note(`setting up ${o.agents} agents and ${o.count} contacts`);
    const setup = admin.pipeline();
    agents.forEach((a, i) => {
      for (const s of a.skills) setup.zadd(prefix + s, i, a.id);
    });
    await setup.exec();
    for (let i = 0; i < o.count; i += 10_000) {
      const args: (string | number)[] = [];
      for (let j = i; j < Math.min(o.count, i + 10_000); j++) {
        const [s1, s2] = seedSkills(rng);
        args.push(j, `contact-${j + 1}|${s1}|${s2}`);
      }
      await admin.zadd(queue, ...args);
    }
    for (let i = 0; i < o.clients; i++) {
      const c = new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: false }) as FloorClient;
      c.defineCommand('sbFloor', { numberOfKeys: 3 + availKeys.length, lua: FLOOR_LUA });
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.ping()));
    const keys = [queue, assignments, stream, ...availKeys];
    await admin.script('LOAD', FLOOR_LUA); // so no client's first call falls back to EVAL

    note(`running ${o.count} steps from ${o.clients} clients`);
    let started = 0;
    let assigned = 0;
    const latencies: number[] = [];
    const t0 = nowNs();
    await Promise.all(
      clients.map(async (c) => {
        while (started < o.count) {
          started++;
          const s = nowNs();
          const r = await c.sbFloor(...keys, prefix);
          latencies.push(Number(nowNs() - s) / 1000);
          if (r === 1) assigned++;
        }
      }),
    );
    const elapsed = seconds(nowNs() - t0);
    return {
      opsPerS: Math.round(o.count / elapsed),
      ops: o.count,
      assigned,
      meanLatencyUs: round(mean(latencies)),
      p99LatencyUs: round(percentile(latencies, 99)),
      seconds: round(elapsed, 3) ?? 0,
    };
  } finally {
    await admin.unlink(queue, assignments, stream, ...availKeys).catch(() => {});
    admin.disconnect();
    for (const c of clients) c.disconnect();
  }
}

// ---- decision: the cost of one routing decision against the queue length ----

/** Decisions per queue length made before the timed ones. */
const DECISION_WARMUP = 20;

interface DecisionFigures {
  readonly medianUs: Record<string, number | null>;
  readonly p90Us: Record<string, number | null>;
  /** Median with the longest queue over median with the shortest (BENCH.md: under 1.5). */
  readonly ratio: number | null;
  readonly decisions: number;
}

async function decisionWorkload(url: string, base: string, o: BenchOptions): Promise<DecisionFigures> {
  const redis = connectRedis({ url });
  const dispatchOpts = { ...defaultDispatcherOptions, batch: o.dispatchBatch };
  const projectOpts = { ...defaultProjectorOptions, batch: o.projectBatch };
  const workspaces = o.queues.map((size) => `${base}-decision-${size}`);
  try {
    // The same agents and the same kind of queue for every size: only the length differs.
    let agents: Agent[] = [];
    for (const [i, size] of o.queues.entries()) {
      const workspace = workspaces[i]!;
      const rng = seededRandom(o.seed);
      agents = seedAgents(DECISION_WARMUP + o.decisions, rng);
      await ensureGroup(redis, workspace);
      note(`queueing ${size} contacts in ${workspace}`);
      await appendAndProject(redis, workspace, registerCommands(agents));
      await appendAndProject(redis, workspace, queueCommands(size, rng), 5000);
      // Nobody is available: the dispatcher looks at every new contact once and finds no agent.
      const idle = await dispatchPending(redis, workspace, { ...dispatchOpts, batch: 1000 });
      if (idle !== 0) throw new Error(`expected no assignment with no agent available, got ${idle}`);
    }
    // Agents become available one at a time, the sizes taking turns, so warm-up and drift fall
    // on every size alike; the first few decisions of each are not timed.
    const times: number[][] = o.queues.map(() => []);
    note(`timing ${o.decisions} decisions per queue length`);
    for (const [n, a] of agents.entries()) {
      for (const [i, workspace] of workspaces.entries()) {
        await appendCommand(redis, {
          workspace,
          command: { type: 'ChangeAgentState', agentId: a.id, state: 'available' },
        });
        await projectPending(redis, workspace, [], projectOpts);
        const s = nowNs();
        const made = await dispatchPending(redis, workspace, dispatchOpts);
        const us = Number(nowNs() - s) / 1000;
        if (made !== 1)
          throw new Error(
            `agent ${a.id} made ${made} assignments in ${workspace}, expected 1` +
              (o.redisUrl
                ? ' (is a Switchboard dispatcher serving this Redis too? run without --redis-url)'
                : ''),
          );
        if (n >= DECISION_WARMUP) times[i]!.push(us);
      }
    }
    const medianUs: Record<string, number | null> = {};
    const p90Us: Record<string, number | null> = {};
    o.queues.forEach((size, i) => {
      medianUs[String(size)] = round(median(times[i]!));
      p90Us[String(size)] = round(percentile(times[i]!, 90));
    });
    const first = median(times[0]!);
    const last = median(times[times.length - 1]!);
    return {
      medianUs,
      p90Us,
      ratio: first && last ? round(last / first, 2) : null,
      decisions: o.decisions,
    };
  } finally {
    if (o.redisUrl) for (const w of workspaces) await dropWorkspace(redis, w).catch(() => {});
    redis.disconnect();
  }
}

// ---- main ----

function table(result: Record<string, unknown>): string {
  const lines: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
    } else lines.push(`${prefix}\t${Array.isArray(v) ? v.join(',') : String(v)}`);
  };
  walk('', result);
  const width = Math.max(...lines.map((l) => l.split('\t')[0]!.length));
  return `${lines
    .map((l) => {
      const [k, v] = l.split('\t');
      return `  ${k!.padEnd(width)}  ${v}`;
    })
    .join('\n')}\n`;
}

async function main(): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.problems.join('\nbench: ')}\nRun with --help for the options.\n`);
      return 2;
    }
    throw err;
  }
  quiet = o.json;
  let server: RedisServerHandle | undefined;
  let url = o.redisUrl;
  if (!url) {
    try {
      server = await startRedisServer({ appendonly: false });
    } catch (err) {
      process.stderr.write(
        `bench: cannot start a private redis-server (${(err as Error).message.split('\n')[0]}); install redis-server or pass --redis-url\n`,
      );
      return 1;
    }
    url = server.url;
    note(`started a private redis-server at ${url} (appendonly off)`);
  }
  const admin = connectRedis({ url });
  let lastError: Error | undefined;
  admin.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    try {
      await admin.ping();
    } catch (err) {
      process.stderr.write(`bench: cannot reach Redis at ${url}: ${(lastError ?? (err as Error)).message}\n`);
      return 1;
    }
    if (o.redisUrl)
      note(
        'using a shared Redis: a Switchboard serving it would discover the bench workspaces and route them too',
      );
    const m = await machine(admin);
    // A private server is empty; on a shared one, a workspace of our own, removed afterwards.
    const workspace = o.redisUrl ? `bench-${Date.now()}` : 'bench';
    let parameters: Record<string, unknown>;
    let figures: object;
    const redisMode = o.redisUrl ? 'external' : 'private, appendonly off';
    if (o.workload === 'seed') {
      parameters = {
        agents: o.agents,
        contacts: o.contacts,
        clients: o.clients,
        dispatchBatch: o.dispatchBatch,
        projectBatch: o.projectBatch,
        seed: o.seed,
        redis: redisMode,
      };
      try {
        figures = await seedWorkload(url, workspace, o);
      } finally {
        if (o.redisUrl) await dropWorkspace(admin, workspace);
      }
    } else if (o.workload === 'floor') {
      parameters = { agents: o.agents, clients: o.clients, count: o.count, seed: o.seed, redis: redisMode };
      figures = await floorWorkload(url, o);
    } else if (o.workload === 'e2e') {
      parameters = {
        agents: o.agents,
        ...(o.rates.length === 1 ? { rate: o.rates[0] } : { rates: o.rates }),
        duration: o.duration,
        warmup: o.warmup,
        inFlight: o.inFlight,
        redis: redisMode,
      };
      try {
        const e2e = await e2eWorkload(url, workspace, o, note);
        figures = o.rates.length === 1 ? e2e.runs[0]! : e2e;
      } finally {
        if (o.redisUrl) await dropWorkspace(admin, workspace);
      }
    } else if (o.workload === 'ingest') {
      parameters = {
        connections: o.connections,
        duration: o.duration,
        warmup: o.warmup,
        redis: redisMode,
      };
      try {
        figures = await ingestWorkload(url, workspace, o, note);
      } finally {
        if (o.redisUrl) await dropWorkspace(admin, workspace);
      }
    } else if (o.workload === 'audit') {
      parameters = { events: o.events, agents: o.agents, seed: o.seed, redis: redisMode };
      const redis = connectRedis({ url }, { commandTimeout: 60_000 });
      try {
        figures = await auditWorkload(redis, url, workspace, o, note);
      } finally {
        redis.disconnect();
        if (o.redisUrl) await dropWorkspace(admin, workspace);
      }
    } else if (isShape(o.workload)) {
      parameters = {
        sizes: o.sizes,
        agents: o.agents,
        decisions: o.decisions,
        seed: o.seed,
        redis: redisMode,
      };
      const redis = connectRedis({ url });
      try {
        figures = await shapeWorkload(redis, workspace, o.workload, o, seededRandom);
      } finally {
        redis.disconnect();
      }
    } else {
      parameters = {
        queues: o.queues,
        decisions: o.decisions,
        dispatchBatch: o.dispatchBatch,
        seed: o.seed,
        redis: redisMode,
      };
      figures = await decisionWorkload(url, workspace, o);
    }
    const result = { workload: o.workload, parameters, machine: m, figures, at: new Date().toISOString() };
    process.stdout.write(
      o.json ? `${JSON.stringify(result)}\n` : `Switchboard bench: ${o.workload}\n${table(result)}`,
    );
    return 0;
  } finally {
    admin.disconnect();
    await server?.stop();
  }
}

main().then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
