/** `npm run bench` arguments: the workload and its options, every bad value named at once. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { defaultDispatcherOptions } from '../../dispatcher/dispatcher.ts';
import { defaultProjectorOptions } from '../../projections/projector.ts';
import { redisUrlProblem } from '../redis-target.ts';
import { parseCommandLine } from '../sim/options.ts';
import { DECISION_WARMUP } from './decision.ts';
import { DEFAULT_SIZES, type ShapeWorkload } from './shapes.ts';

export const USAGE = `Usage: npm run bench -- [seed|floor|contract|decision|e2e|ingest|fanout|split|wide|large|policy|twin|steps|audit|replay|reference|cluster|timers|idle|all] [options]

Workloads (docs/BENCHMARKS.md):
  seed        dispatch drain: --contacts queued up front, --agents all available, zero handle time
  floor       the hardware floor: one hand-written Lua assignment step from --clients connections
  contract    what the writes users see cost alone: --contacts seed cycles (default 2000, --agents)
              run through the real steps, then the stream entries and documents they wrote
              written again by one plain Lua step with no routing keys (as texts, and with the
              documents decoded and encoded), beside the floor step: Redis µs per cycle, in floor
              steps (private redis-server only: it resets Redis's statistics)
  decision    median time of one routing decision with 1,000 and 100,000 contacts waiting
  e2e         one Switchboard process: POST /contacts at --rate (open loop) to AssignmentMade
              on a WebSocket; latency percentiles (each assignment completed, not timed), then
              the same rate against a bare feed (XADD, XREAD, WebSocket) as the anchor
  ingest      POST /contacts requests/s from --connections: Switchboard vs a bare fastify XADD
  fanout      one Switchboard process, --subscribers WebSockets on its live feed (a process of
              their own), contacts at --rate (default 50/s, two events each): deliveries/s,
              decision-to-receipt percentiles, lost and out-of-order events
  split       n agents with only A, n with only B, one with both; contacts needing [A,B], then
              --decisions agents with A (and a skill of their own, each a pool of its own) arriving;
              worst and median dispatch step per --sizes n
  wide        one agent with 32 skills against --sizes contacts each needing a distinct 4 of them;
              it completes and takes work --decisions times
  large       50 skills, --agents (default 10000) with 3..8, contacts needing 1..3, priorities 0..9:
              agents made available against queues of --sizes; then contacts against a full pool
              (split, wide, large with --levels: agents' skills at levels 1..5, each contact's at
              minimum levels 1..5; wide's agent at level 5 in all 32)
  policy      each routing policy (longest-available, aged priority, most-skilled, least-occupied)
              on split, wide with levels and most-skilled's walk over many skill sets; --sizes
              n,contacts,sets (default 4000,30000,1024): worst and median dispatch step of each
  twin        (not in all) this version's dispatch step against another (--against <file>, e.g. one saved by
              git show <rev>:src/dispatcher/lua/dispatch-14.lua) on twin workspaces of large's
              queue (--sizes queued, default 1000; --agents; --decisions; --levels), each
              decision taken by both in turn; Redis time per step of each, and their ratio
              (private redis-server only: it loads the other version under this one's name)
  steps       (not in all) this checkout's routing steps against another's (--switchboard <dir>) on
              one Redis, in workspaces of their own with the same --agents (default 40),
              --rounds rounds alternating between them (each: as many contacts as agents queued,
              the agents made available, a dispatch step, the completions): Redis µs per queued
              contact, decision and completion of each (commandstats), and this over the other
              (private redis-server only: it resets Redis's statistics)
  audit       a log of --events events made through the Lua steps (--agents, default 200), then
              audited as npm run audit does, and replayed again from memory: events/s of each
  replay      a log of --events events (--agents, default 200) read back in order from the stream and
              from the archive (all but the newest entries archived): events/s of each; archive
              bytes per million entries; state bytes per queued contact (--contacts) and per agent
  reference   the reference ACD's dispatcher loop (BZPOPMIN, 1 s locks, separate calls, one
              contact at a time) on --agents and --contacts as seed: assignments/s
  cluster     a private 3-master Redis Cluster: the seed cycle on workspaces spread over the
              masters (--contacts each); Redis µs per assignment per master vs a single Redis,
              and aggregate assignments/s with 1, 2 and 3 masters busy
  timers      the clock's lag: --timers offers nobody answers, made over --duration s (default 2),
              expire; (time the clock appended each ExpireOffer) - (its due time), median and
              p99, idle and while the seed workload (--agents) drains another workspace
  idle        agents freeing up beside idle colleagues: --agents holding A available, as many
              contacts needing A and Z (nobody holds Z) queued, then --decisions cycles of a
              contact needing A arriving, taken and completed; the dispatcher runs when woken:
              wake-ups, Lua steps and Redis CPU per cycle
  all         every workload above but twin in one run, then one table of figures, anchors,
              ratios and targets (npm run bench -- all --help)

Options:
  --workload <name>      the workload (or give it as the first argument; default seed)
  --agents <n>           agents (default 40; e2e 200)
  --contacts <n>         seed: contacts queued up front (default 5000); contract: cycles (default 2000)
  --offers               seed: offers on (offerTimeoutMs 60 s): each decision is accepted
                         (AcceptOffer) before its completion
  --timers <n>           timers: offers left to expire per phase (default 500)
  --events <n>           audit, replay: events in the log (default 100000)
  --clients <n>          seed: concurrent dispatch loops (default 1); floor: connections (default 50)
  --count <n>            floor: assignment steps to run (default 200000)
  --queues <a,b,...>     decision: queue lengths to compare (default 1000,100000)
  --decisions <n>        decision: agents made available one at a time (default 200); idle:
                         cycles (default 2000)
  --rate <n>             e2e: offered contacts/s (default 1000); fanout: contacts/s (default 50)
  --rates <a,b,...>      e2e only: several offered rates in one go (instead of --rate)
  --duration <s>         e2e, ingest, fanout: seconds of each measured run (default 5); timers:
                         seconds over which the offers are made (default 2)
  --warmup <s>           e2e, ingest, fanout: seconds of load before measuring, not reported (default:
                         e2e 5, fanout 3, ingest 1); e2e's and fanout's (to the subscribers) with
                         Switchboard health-checked and scraped as a deployed instance is
  --in-flight <n>        e2e: most unanswered POSTs; later sends are dropped and counted (default 256)
  --connections <n>      ingest: concurrent keep-alive connections (default 50)
  --haproxy              ingest: both sides behind an HAProxy of their own (infra/haproxy's template);
                         fanout: the subscribers and commands through an HAProxy in front of Switchboard
  --cluster              e2e: Switchboard on a private 3-master Redis Cluster (no replicas, AOF off);
                         the bare feed and Redis's CPU figure on the master holding the workspace
  --subscribers <n>      fanout: WebSocket subscribers on the live feed (default 1000)
  --dispatch-batch <n>   seed, decision, cluster: decisions per dispatch step (default ${defaultDispatcherOptions.batch}, as
                         DISPATCH_BATCH)
  --project-batch <n>    seed, decision, cluster: commands per projector step (default ${defaultProjectorOptions.batch}, as
                         PROJECT_BATCH)
  --dispatch-step-ms <ms> seed, decision, cluster: a dispatch step's time budget (default ${defaultDispatcherOptions.stepBudgetMs}, as
                         DISPATCH_STEP_MS; 0: bounded by --dispatch-batch only)
  --project-step-ms <ms> seed, decision, cluster: a projector step's time budget (default ${defaultProjectorOptions.stepBudgetMs}, as
                         PROJECT_STEP_MS; 0: bounded by --project-batch only)
  --sizes <a,b,...>      split, wide, large: sizes to compare (split ${DEFAULT_SIZES.split.join(',')}; wide ${DEFAULT_SIZES.wide.join(',')}; large ${DEFAULT_SIZES.large.join(',')})
  --levels               split, wide, large, twin: the variant with proficiency levels (see above)
  --against <file>       twin: the other version of the dispatch step (a Lua file)
  --switchboard <dir>    e2e, ingest, fanout: run the Switchboard process of another checkout (its
                         src/main.ts, e.g. made by git worktree add <dir> <rev>) under this bench,
                         to compare versions with the same load generator and figures; steps: the
                         checkout whose steps this one's are compared with
  --rounds <n>           steps: rounds of each checkout (default 300)
  --seed <n>             seed of the skills (default 42)
  --redis-url <url>      use this Redis instead of starting a private redis-server (split, wide,
                         large and policy time their steps with its SLOWLOG: they clear it and
                         put its settings back; contract and twin run on a private one only);
                         checked as REDIS_URL is: database 0, no query, the login percent-encoded
  --json                 one JSON line per run instead of a table
  --help                 this text
`;

export type Workload =
  | 'seed'
  | 'floor'
  | 'contract'
  | 'decision'
  | 'e2e'
  | 'ingest'
  | 'fanout'
  | 'audit'
  | 'replay'
  | 'reference'
  | 'cluster'
  | 'timers'
  | 'idle'
  | 'policy'
  | 'twin'
  | 'steps'
  | ShapeWorkload;
export const WORKLOADS: readonly Workload[] = [
  'seed',
  'floor',
  'contract',
  'decision',
  'e2e',
  'ingest',
  'fanout',
  'split',
  'wide',
  'large',
  'policy',
  'audit',
  'replay',
  'reference',
  'cluster',
  'timers',
  'idle',
];

/** Workloads that compare versions of Switchboard, not figures of this one: not in `all`. */
export const COMPARISONS: readonly Workload[] = ['twin', 'steps'];

/**
 * Workloads that run on a private redis-server only, and why. They refuse --redis-url; `all`
 * starts a private server for them whatever its --redis-url says.
 */
export const PRIVATE_ONLY: Partial<Record<Workload, string>> = {
  twin: "twin loads another dispatch library under this version's name",
  contract: "contract times its steps by resetting Redis's statistics (CONFIG RESETSTAT)",
  steps: "steps times its steps by resetting Redis's statistics (CONFIG RESETSTAT)",
};

export const isShape = (w: Workload): w is ShapeWorkload => w === 'split' || w === 'wide' || w === 'large';

export interface BenchOptions {
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
  readonly subscribers: number;
  readonly dispatchBatch: number;
  readonly projectBatch: number;
  readonly dispatchStepMs: number;
  readonly projectStepMs: number;
  readonly seed: number;
  readonly redisUrl: string | undefined;
  readonly json: boolean;
  /** timers: offers left to expire per phase. */
  readonly timers: number;
  /** seed: offers on, each accepted before its completion. */
  readonly offers: boolean;
  /** split, wide, large: the variant with proficiency levels. */
  readonly levels: boolean;
  /** ingest: both sides behind an HAProxy each; fanout: Switchboard behind one (infra/haproxy's template). */
  readonly haproxy: boolean;
  /** e2e: Switchboard on a private 3-master Redis Cluster. */
  readonly cluster: boolean;
  /** twin: the other version's dispatch step file. */
  readonly against: string | undefined;
  /**
   * e2e, ingest, fanout: the root of another checkout whose src/main.ts runs as the Switchboard
   * process; steps: the checkout whose steps this one's are compared with.
   */
  readonly switchboard: string | undefined;
  /** steps: rounds of each checkout. */
  readonly rounds: number;
}

/** The options of a single workload's command line. */
export const BENCH_OPTIONS = {
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
  subscribers: { type: 'string' },
  'dispatch-batch': { type: 'string' },
  'project-batch': { type: 'string' },
  'dispatch-step-ms': { type: 'string' },
  'project-step-ms': { type: 'string' },
  seed: { type: 'string' },
  'redis-url': { type: 'string' },
  timers: { type: 'string' },
  offers: { type: 'boolean', default: false },
  levels: { type: 'boolean', default: false },
  haproxy: { type: 'boolean', default: false },
  cluster: { type: 'boolean', default: false },
  against: { type: 'string' },
  switchboard: { type: 'string' },
  rounds: { type: 'string' },
} as const satisfies Record<string, { type: 'string' | 'boolean'; default?: boolean }>;

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values, positionals, check } = parseCommandLine(argv, USAGE, BENCH_OPTIONS);
  const named = values.workload ?? positionals[0] ?? 'seed';
  const workloadPositionals = values.workload === undefined ? 1 : 0;
  check.check(
    positionals.length <= workloadPositionals,
    `unexpected argument(s): ${positionals.slice(workloadPositionals).join(' ')}`,
  );
  check.check(
    WORKLOADS.includes(named as Workload) || COMPARISONS.includes(named as Workload),
    `workload: must be one of ${[...WORKLOADS, ...COMPARISONS].join(', ')} (got "${named}")`,
  );
  const workload = named as Workload;
  const count = (name: string, raw: string | undefined, def: number, max: number) =>
    check.number(name, raw, def, { integer: true, min: 1, max });
  const defaultAgents =
    workload === 'e2e' || workload === 'audit' || workload === 'replay'
      ? 200
      : workload === 'large' || workload === 'twin'
        ? 10_000
        : 40;
  const agents = count('agents', values.agents, defaultAgents, 1_000_000);
  const contacts = count('contacts', values.contacts, workload === 'contract' ? 2000 : 5000, 10_000_000);
  const events = count('events', values.events, 100_000, 100_000_000);
  const clients = count('clients', values.clients, workload === 'floor' ? 50 : 1, 1000);
  const steps = count('count', values.count, 200_000, 100_000_000);
  // Compared smallest to largest (the ratios are the largest's over the smallest's), whatever the
  // order given: each a workspace of its own, so a length or size given twice is refused.
  const ascending = (name: string, list: readonly number[]) => {
    const sorted = [...list].sort((a, b) => a - b);
    check.check(
      sorted.every((n, i) => i === 0 || n !== sorted[i - 1]),
      `--${name}: each value once (got ${list.join(',')})`,
    );
    return sorted;
  };
  const queues = ascending(
    'queues',
    check.integers('queues', values.queues, [1000, 100_000], 'queue lengths', {
      min: 1,
      max: 10_000_000,
    }),
  );
  const decisions = count('decisions', values.decisions, workload === 'idle' ? 2000 : 200, 100_000);
  const defaultSizes = isShape(workload)
    ? DEFAULT_SIZES[workload]
    : workload === 'policy'
      ? [4000, 30_000, 1024]
      : [1000];
  const sizesGiven = check.integers('sizes', values.sizes, defaultSizes, 'sizes', {
    min: 1,
    max: 10_000_000,
  });
  // policy's are n,contacts,sets and twin's the one queue length: in the order given.
  const sizes = isShape(workload) ? ascending('sizes', sizesGiven) : sizesGiven;
  const rate = count('rate', values.rate, workload === 'fanout' ? 50 : 1000, 100_000);
  check.check(
    values.rate === undefined || values.rates === undefined,
    '--rate and --rates: give one or the other',
  );
  const rates = check.integers('rates', values.rates, [rate], 'rates', { min: 1, max: 100_000, most: 20 });
  // Only e2e runs once per rate: fanout took the first and dropped the others without a word.
  check.check(
    values.rates === undefined || workload === 'e2e',
    `--rates: only for e2e${workload === 'fanout' ? '; give fanout one --rate' : ''}`,
  );
  const duration = check.number('duration', values.duration, workload === 'timers' ? 2 : 5, {
    min: 0.1,
    max: 300,
  });
  const timers = count('timers', values.timers, 500, 100_000);
  const warmup = check.number(
    'warmup',
    values.warmup,
    workload === 'e2e' ? 5 : workload === 'fanout' ? 3 : 1,
    { min: 0, max: 60 },
  );
  const inFlight = count('in-flight', values['in-flight'], 256, 10_000);
  const connections = count('connections', values.connections, 50, 1000);
  const subscribers = count('subscribers', values.subscribers, 1000, 100_000);
  const dispatchBatch = count(
    'dispatch-batch',
    values['dispatch-batch'],
    defaultDispatcherOptions.batch,
    5000,
  );
  const projectBatch = count('project-batch', values['project-batch'], defaultProjectorOptions.batch, 5000);
  const stepMs = (name: string, raw: string | undefined, def: number) =>
    check.number(name, raw, def, { integer: true, min: 0, max: 1000 });
  const dispatchStepMs = stepMs(
    'dispatch-step-ms',
    values['dispatch-step-ms'],
    defaultDispatcherOptions.stepBudgetMs,
  );
  const projectStepMs = stepMs(
    'project-step-ms',
    values['project-step-ms'],
    defaultProjectorOptions.stepBudgetMs,
  );
  const seed = check.number('seed', values.seed, 42, { integer: true, min: 0, max: 2 ** 32 - 1 });
  const redisUrl = values['redis-url'];
  // As the other tools and REDIS_URL take one (e2e's Switchboard processes are given it), its
  // password masked in the message.
  const redisUrlBad = redisUrl === undefined ? undefined : redisUrlProblem(redisUrl);
  check.check(redisUrlBad === undefined, `--redis-url: ${redisUrlBad}`);
  check.check(
    !values.levels || isShape(workload) || workload === 'twin',
    '--levels: only for split, wide, large and twin',
  );
  check.check(
    workload !== 'twin' || (values.against !== undefined && values.against.trim() !== ''),
    '--against: twin needs the other version of the dispatch step, a Lua file',
  );
  check.check(values.against === undefined || workload === 'twin', '--against: only for twin');
  check.check(
    values.against === undefined || values.against.trim() === '' || existsSync(values.against),
    `--against: no file ${values.against} (save the other version first, e.g. git show <rev>:src/dispatcher/lua/dispatch-14.lua > /tmp/dispatch.lua)`,
  );
  check.check(
    PRIVATE_ONLY[workload] === undefined || redisUrl === undefined,
    `--redis-url: ${PRIVATE_ONLY[workload]}; it runs on its own private redis-server only`,
  );
  check.check(
    !values.haproxy || workload === 'ingest' || workload === 'fanout',
    '--haproxy: only for ingest and fanout',
  );
  check.check(!values.cluster || workload === 'e2e', '--cluster: only for e2e');
  check.check(
    !values.cluster || redisUrl === undefined,
    '--cluster: e2e starts its own Redis Cluster; leave out --redis-url',
  );
  // An empty one (`--switchboard "$OTHER"` with OTHER unset) resolved to the current directory:
  // this checkout, compared with itself without a word.
  const switchboardEmpty = values.switchboard !== undefined && values.switchboard.trim() === '';
  check.check(
    !switchboardEmpty,
    '--switchboard: must name the root of another checkout (got an empty value), e.g. git worktree add /tmp/other <rev>',
  );
  const switchboard =
    values.switchboard === undefined || switchboardEmpty ? undefined : path.resolve(values.switchboard);
  const runsOther = workload === 'e2e' || workload === 'ingest' || workload === 'fanout';
  check.check(
    switchboard === undefined || runsOther || workload === 'steps',
    '--switchboard: only for e2e, ingest, fanout and steps',
  );
  check.check(
    workload !== 'steps' || switchboard !== undefined || switchboardEmpty,
    "--switchboard: steps compares this checkout's steps with another checkout's; give its root (e.g. git worktree add /tmp/other <rev>)",
  );
  if (switchboard !== undefined) {
    // The Switchboard process (e2e, ingest, fanout), or the projector step's module (steps).
    const needs =
      workload === 'steps' ? path.join('src', 'projections', 'projector.ts') : path.join('src', 'main.ts');
    const has = existsSync(path.join(switchboard, needs));
    check.check(
      has,
      `--switchboard: no ${needs} in ${switchboard} (give the root of another checkout, e.g. git worktree add /tmp/other <rev>)`,
    );
    // Its modules find some packages' files from where they lie (createRequire(import.meta.url)).
    check.check(
      !has || existsSync(path.join(switchboard, 'node_modules')),
      `--switchboard: ${switchboard} has no node_modules (run npm ci there, or link this checkout's: ln -s "$PWD/node_modules" ${switchboard}/node_modules)`,
    );
  }
  // Read by these workloads alone: elsewhere they would be reported nowhere and change nothing.
  const batched = workload === 'seed' || workload === 'decision' || workload === 'cluster';
  check.check(
    values['dispatch-batch'] === undefined || batched,
    '--dispatch-batch: only for seed, decision and cluster',
  );
  check.check(
    values['project-batch'] === undefined || batched,
    '--project-batch: only for seed, decision and cluster',
  );
  for (const name of ['dispatch-step-ms', 'project-step-ms'] as const)
    check.check(values[name] === undefined || batched, `--${name}: only for seed, decision and cluster`);
  check.check(!values.offers || workload === 'seed', '--offers: only for seed');
  const rounds = count('rounds', values.rounds, 300, 100_000);
  check.check(values.rounds === undefined || workload === 'steps', '--rounds: only for steps');
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
    count: steps,
    queues,
    sizes,
    decisions,
    rates,
    duration,
    warmup,
    inFlight,
    connections,
    subscribers,
    dispatchBatch,
    projectBatch,
    dispatchStepMs,
    projectStepMs,
    seed,
    redisUrl,
    json: values.json ?? false,
    timers,
    offers: values.offers ?? false,
    levels: values.levels ?? false,
    haproxy: values.haproxy ?? false,
    cluster: values.cluster ?? false,
    against: values.against,
    switchboard,
    rounds,
  };
}
