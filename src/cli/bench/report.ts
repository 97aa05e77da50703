/** What a bench run prints: one JSON line, or the same figures as an aligned table. */
import os from 'node:os';
import type { RedisClient } from '../../adapters/redis/scripts.ts';

export interface Machine {
  readonly cpus: number;
  readonly model: string;
  readonly node: string;
  readonly redis: string;
}

export async function machine(redis: RedisClient): Promise<Machine> {
  const info = (await redis.info('server')) as string;
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
  };
}

export interface BenchResult {
  readonly workload: string;
  readonly parameters: Record<string, unknown>;
  readonly machine: Machine;
  readonly figures: object;
  readonly at: string;
}

export function formatResult(result: BenchResult, json: boolean): string {
  return json ? `${JSON.stringify(result)}\n` : `Switchboard bench: ${result.workload}\n${table(result)}`;
}

/** One line per leaf value, named by its path (`figures.runs.1000.steps`). */
function table(result: BenchResult): string {
  const lines: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    const nested = Array.isArray(v) ? v.some((x) => x !== null && typeof x === 'object') : v !== null;
    if (typeof v === 'object' && nested) {
      for (const [k, x] of Object.entries(v as object)) walk(prefix ? `${prefix}.${k}` : k, x);
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

/** One workload's result inside `npm run bench -- all`. */
export interface WorkloadRun {
  readonly workload: string;
  readonly parameters: Record<string, unknown>;
  readonly figures: object | null;
  /**
   * Redis's own statistics over the run, on the single Redis the bench owns: EVAL/EVALSHA/FCALL calls
   * and their µs (INFO commandstats, the clock SLOWLOG uses) and main-thread CPU µs (INFO cpu).
   */
  readonly redisStats?: { readonly evalCalls: number; readonly evalUs: number; readonly cpuUs: number };
  readonly seconds: number;
  readonly error?: string;
}

export interface Target {
  /** What the target is on: the figure itself or its ratio to the anchor. */
  readonly on: 'figure' | 'ratio';
  readonly op: '>=' | '<=' | '<';
  readonly value: number;
}

export interface Row {
  readonly figure: string;
  readonly value: number | null;
  readonly unit: string;
  /** A figure measured in the same run (or, when `anchorPublished`, a published one) to compare with. */
  readonly anchor: string | null;
  readonly anchorValue: number | null;
  readonly anchorUnit: string | null;
  readonly anchorPublished?: boolean;
  /** value / anchorValue. */
  readonly ratio: number | null;
  readonly target: Target | null;
  /** Whether the target is met; null with no target, or with nothing to compare. */
  readonly met: boolean | null;
}

interface Anchor {
  readonly name: string;
  readonly value: number | null;
  readonly unit: string;
  readonly published?: boolean;
}

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The number at a dotted path of `o`, or null. */
export function at(o: unknown, path: string): number | null {
  let v: unknown = o;
  for (const k of path.split('.'))
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return finite(v);
}

export function row(
  figure: string,
  value: number | null,
  unit: string,
  anchor?: Anchor,
  target?: Target,
): Row {
  const a = anchor?.value ?? null;
  const ratio = value !== null && a !== null && a !== 0 ? Math.round((value / a) * 1000) / 1000 : null;
  const subject = target?.on === 'ratio' ? ratio : value;
  const met =
    !target || subject === null
      ? null
      : target.op === '>='
        ? subject >= target.value
        : target.op === '<='
          ? subject <= target.value
          : subject < target.value;
  return {
    figure,
    value,
    unit,
    anchor: anchor?.name ?? null,
    anchorValue: a,
    anchorUnit: anchor?.unit ?? null,
    ...(anchor?.published ? { anchorPublished: true } : {}),
    ratio,
    target: target ?? null,
    met,
  };
}

/** The rows one workload's run gives, with the other runs of the same `all` to anchor them. */
export type RowMaker = (run: WorkloadRun, runs: readonly WorkloadRun[]) => Row[];

/**
 * The runs of `workload`, the one whose `agents` parameter matches first, else the first. A
 * failed run counts as missing.
 */
export function find(
  runs: readonly WorkloadRun[],
  workload: string,
  agents?: unknown,
): WorkloadRun | undefined {
  const ok = runs.filter((r) => r.workload === workload && r.figures !== null);
  return ok.find((r) => agents !== undefined && r.parameters.agents === agents) ?? ok[0];
}

const PUBLISHED_REFERENCE: Record<number, number> = { 40: 480, 1000: 430 };

const seedRows: RowMaker = (run, runs) => {
  const agents = run.parameters.agents;
  const n = `${agents} agents`;
  const f = run.figures;
  const ref = find(runs, 'reference', agents);
  const floor = find(runs, 'floor', agents);
  const refAnchor = {
    name: `reference ACD loop, ${ref?.parameters.agents} agents`,
    value: at(ref?.figures, 'assignmentsPerS'),
    unit: 'assignments/s',
  };
  const floorAnchor = {
    name: `floor step, ${floor?.parameters.agents} agents, ${floor?.parameters.clients} connections`,
    value: at(floor?.figures, 'opsPerS'),
    unit: 'steps/s',
  };
  // The floor's own figure, over its steps alone (not its set-up).
  const floorCpu = {
    name: `floor step, ${floor?.parameters.agents} agents (INFO cpu)`,
    value: at(floor?.figures, 'redisCpuUsPerStep'),
    unit: 'µs/step',
  };
  const redisUs = at(f, 'redisUsPerAssignment.total');
  const cpuUs = at(f, 'redisCpuUsPerAssignment');
  return [
    row(`seed routing, ${n}`, at(f, 'routingPerS'), 'assignments/s', floorAnchor, {
      on: 'ratio',
      op: '>=',
      value: 0.6,
    }),
    row(`seed routing, ${n}`, at(f, 'routingPerS'), 'assignments/s', refAnchor),
    row(`seed loop, ${n}`, at(f, 'loopPerS'), 'assignments/s', refAnchor),
    row(`seed loop, ${n}`, at(f, 'loopPerS'), 'assignments/s', floorAnchor),
    // Each step's time as SLOWLOG logs it (a 0 threshold, in a run of its own): wall time inside
    // the steps, each inner command's own logging included (about 0.8 µs a call). It splits the
    // cycle by step; the targets are on Redis's CPU below.
    ...(redisUs === null ? [] : [row(`Redis µs per assignment cycle (SLOWLOG), ${n}`, redisUs, 'µs')]),
    // How much of that time is inside the Redis commands the steps run; the rest is their Lua.
    ...(at(f, 'redisCommandsShare') === null || redisUs === null
      ? []
      : [
          row(
            `Redis µs per assignment cycle inside the steps' commands, ${n}`,
            roundTo(redisUs * (at(f, 'redisCommandsShare') as number), 1),
            'µs',
            { name: 'the whole cycle (SLOWLOG)', value: redisUs, unit: 'µs' },
          ),
        ]),
    // The targets (BENCH.md: Redis's own statistics, not wall time; about twice the floor step):
    // the main-thread CPU of the drain without SLOWLOG, against the floor step's measured the same way.
    ...(cpuUs === null
      ? []
      : [
          row(`Redis main-thread CPU per assignment cycle, ${n}`, cpuUs, 'µs', floorCpu, {
            on: 'figure',
            op: '<=',
            value: 60,
          }),
          row(`Redis main-thread CPU per assignment cycle, ${n}`, cpuUs, 'µs', floorCpu, {
            on: 'ratio',
            op: '<=',
            value: 2,
          }),
        ]),
  ];
};

const referenceRows: RowMaker = (run) => {
  const agents = Number(run.parameters.agents);
  const published = PUBLISHED_REFERENCE[agents];
  return [
    row(
      `reference ACD loop, ${agents} agents`,
      at(run.figures, 'assignmentsPerS'),
      'assignments/s',
      published
        ? { name: 'BENCH.md, this machine class', value: published, unit: 'assignments/s', published: true }
        : undefined,
    ),
  ];
};

const decisionRows: RowMaker = (run) => {
  const queues = (run.parameters.queues as number[] | undefined) ?? [];
  const small = queues[0];
  const large = queues[queues.length - 1];
  return [
    row(
      `decision median, ${large?.toLocaleString('en-US')} queued`,
      at(run.figures, `medianUs.${large}`),
      'µs',
      {
        name: `${small?.toLocaleString('en-US')} queued`,
        value: at(run.figures, `medianUs.${small}`),
        unit: 'µs',
      },
      { on: 'ratio', op: '<', value: 1.5 },
    ),
  ];
};

const e2eRows: RowMaker = (run) => {
  const runs = (run.figures as { runs?: object[] } | null)?.runs;
  const f = runs ? (runs.find((r) => at(r, 'offeredPerS') === 1000) ?? runs[0]) : run.figures;
  const rate = at(f, 'offeredPerS');
  // A run with --cluster: Switchboard on a 3-master Redis Cluster (its parameters' `redis`).
  const on = /Cluster/.test((run.parameters as { redis?: string }).redis ?? '')
    ? ' on a 3-master cluster'
    : '';
  const at1k = `e2e${on} at ${rate?.toLocaleString('en-US')}/s`;
  // The bare feed at the same rate, right after (bare-xadd.ts with BARE_FEED=1): the hops alone on this machine.
  const bare = (p: string, name = 'bare feed: XADD, XREAD, WebSocket') =>
    at(f, `bare.${p}`) === null ? undefined : { name, value: at(f, `bare.${p}`), unit: 'ms' };
  return [
    row(`${at1k}: p50`, at(f, 'p50Ms'), 'ms', bare('p50Ms'), { on: 'figure', op: '<=', value: 2 }),
    row(`${at1k}: p99`, at(f, 'p99Ms'), 'ms', bare('p99Ms'), { on: 'figure', op: '<=', value: 5 }),
    // What the client sending a contact waits for its 201 (the command applied); no target.
    row(
      `${at1k}: the command's answer, p50`,
      at(f, 'answerP50Ms'),
      'ms',
      bare('answerP50Ms', 'bare feed: one XADD'),
    ),
    row(`${at1k}: achieved`, at(f, 'achievedPerS'), 'contacts/s', {
      name: 'offered',
      value: rate,
      unit: 'contacts/s',
    }),
    // With several rates: the highest held with p99 under 10 ms (BENCH.md; no target), of those tried.
    ...(runs && runs.length > 1
      ? [
          row(
            `e2e${on}: the highest rate with p99 under 10 ms`,
            at(run.figures, 'highestRateP99Under10ms'),
            'contacts/s',
            {
              name: 'the highest rate tried',
              value: Math.max(...runs.map((r) => at(r, 'offeredPerS') ?? 0)),
              unit: 'contacts/s',
            },
          ),
        ]
      : []),
  ];
};

/** ' through HAProxy' for a run with --haproxy (its parameters' `via`), else ''. */
const via = (run: WorkloadRun): string =>
  (run.parameters as { via?: string }).via === 'haproxy' ? ' through HAProxy' : '';

const ingestRows: RowMaker = (run) => {
  return [
    row(
      `ingestion${via(run)}, Switchboard POST /contacts`,
      at(run.figures, 'switchboard.requestsPerS'),
      'requests/s',
      {
        name: `bare fastify + XADD${via(run)}`,
        value: at(run.figures, 'bareXadd.requestsPerS'),
        unit: 'requests/s',
      },
      { on: 'ratio', op: '>=', value: 0.5 },
    ),
  ];
};

const fanoutRows: RowMaker = (run) => {
  const f = run.figures;
  const subs = at(run.parameters, 'subscribers');
  const rate = at(run.parameters, 'rate');
  const n = `fan-out${via(run)}, ${subs?.toLocaleString('en-US')} subscribers`;
  return [
    row(
      `${n}: deliveries`,
      at(f, 'deliveriesPerS'),
      'deliveries/s',
      rate !== null && subs !== null
        ? {
            name: `offered (${rate}/s contacts × 2 events × subscribers)`,
            value: rate * 2 * subs,
            unit: 'deliveries/s',
          }
        : undefined,
      { on: 'figure', op: '>=', value: 100_000 },
    ),
    row(`${n}: p99 decision to receipt`, at(f, 'p99Ms'), 'ms', undefined, {
      on: 'figure',
      op: '<=',
      value: 50,
    }),
    row(`${n}: lost`, at(f, 'lost'), 'events', undefined, { on: 'figure', op: '<=', value: 0 }),
  ];
};

const shapeRows: RowMaker = (run) => {
  const sizes = (run.parameters.sizes as number[] | undefined) ?? [];
  const small = sizes[0];
  const large = sizes[sizes.length - 1];
  const worst = at(run.figures, 'worstRedisStepUs');
  const name = run.parameters.levels ? `${run.workload} with levels` : run.workload;
  const rows = [
    row(
      `${name}: worst step, up to ${large?.toLocaleString('en-US')}`,
      worst === null ? null : worst / 1000,
      'ms',
      {
        name: `worst step at ${small?.toLocaleString('en-US')}`,
        value: roundTo((at(run.figures, `runs.${small}.worstRedisStepUs`) ?? Number.NaN) / 1000, 3),
        unit: 'ms',
      },
      { on: 'figure', op: '<=', value: 5 },
    ),
  ];
  if (run.workload === 'large')
    rows.push(
      row(
        `${name}: median step, ${large?.toLocaleString('en-US')} queued`,
        at(run.figures, `runs.${large}.medianRedisStepUs`),
        'µs',
        {
          name: `${small?.toLocaleString('en-US')} queued`,
          value: at(run.figures, `runs.${small}.medianRedisStepUs`),
          unit: 'µs',
        },
        { on: 'ratio', op: '<', value: 1.5 },
      ),
    );
  return rows;
};

/** Each routing policy's worst step over its shapes, against longest-available's (bench policy). */
const policyRows: RowMaker = (run) => {
  const policies = ((run.figures as { policies?: Record<string, Record<string, unknown>> } | null)
    ?.policies ?? {}) as Record<string, Record<string, { worstRedisStepUs?: number }>>;
  const worstOf = (p: string) => {
    const shapes = Object.values(policies[p] ?? {});
    return shapes.length ? Math.max(...shapes.map((s) => s.worstRedisStepUs ?? 0)) / 1000 : null;
  };
  const base = worstOf('longest-available');
  return Object.keys(policies)
    .filter((p) => p !== 'longest-available')
    .map((p) =>
      row(
        `policy ${p}: worst step`,
        worstOf(p),
        'ms',
        { name: 'longest-available', value: base, unit: 'ms' },
        { on: 'figure', op: '<=', value: 5 },
      ),
    );
};

const auditRows: RowMaker = (run) => [
  row(
    `audit, ${at(run.figures, 'events')?.toLocaleString('en-US')} events`,
    at(run.figures, 'eventsPerS'),
    'events/s',
    { name: 'the same replay from memory', value: at(run.figures, 'replayEventsPerS'), unit: 'events/s' },
    { on: 'figure', op: '>=', value: 50_000 },
  ),
];

/**
 * What the writes users see cost alone, against the floor step timed the same way in the same
 * rounds: the seed cycle's targets (60 µs, 2 floor steps) read against it.
 */
const contractRows: RowMaker = (run) => {
  const f = run.figures;
  const floorStep = {
    name: 'floor step, same rounds (Redis commandstats)',
    value: at(f, 'floorUsPerStep'),
    unit: 'µs/step',
  };
  return [
    row("Redis µs per cycle, the contract's writes alone (texts)", at(f, 'textsUsPerCycle'), 'µs', floorStep),
    row(
      "Redis µs per cycle, the contract's writes alone (texts, no outcome entries)",
      at(f, 'withoutOutcomesUsPerCycle'),
      'µs',
      floorStep,
    ),
    row(
      "Redis µs per cycle, the contract's writes alone (documents decoded and encoded)",
      at(f, 'encodedUsPerCycle'),
      'µs',
      floorStep,
    ),
  ];
};

/** Rows of the workloads whose figures have a target or anchor of their own (cluster adds its). */
export const STANDARD_ROWS: Record<string, RowMaker> = {
  // An anchor only: the seed rows compare with it.
  floor: () => [],
  reference: referenceRows,
  seed: seedRows,
  contract: contractRows,
  decision: decisionRows,
  e2e: e2eRows,
  ingest: ingestRows,
  fanout: fanoutRows,
  split: shapeRows,
  wide: shapeRows,
  large: shapeRows,
  policy: policyRows,
  audit: auditRows,
};

function roundTo(v: number | null, digits: number): number | null {
  return v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits;
}

/**
 * The table of an `all` run: each run's rows by its workload's maker, in the order of the runs;
 * a workload with no maker gives no row (its figures are in the JSON).
 */
export function benchRows(runs: readonly WorkloadRun[], makers: Record<string, RowMaker>): Row[] {
  return runs.flatMap((r) => (r.figures === null ? [] : (makers[r.workload]?.(r, runs) ?? [])));
}
