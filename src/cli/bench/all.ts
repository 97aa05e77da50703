/**
 * `npm run bench -- all`: every registered workload (options.ts WORKLOADS) in one run, each on a
 * fresh private redis-server of its own (as when run alone), then one table: each figure, the
 * anchor it is compared with (measured in the same run), their ratio, the target and whether it is
 * met. The rows come from each workload's row maker (report.ts, cluster.ts); a workload with none
 * still runs and its figures are in the JSON.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectRedis } from '../../adapters/redis/client.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { type RedisServerHandle, startRedisServer } from '../../topology/redis-server.ts';
import { nowNs, round, seconds } from '../sim/stats.ts';
import { type ClusterFigures, MASTERS } from './cluster.ts';
import { failureReason } from './failure.ts';
import { idleRows } from './idle.ts';
import { PRIVATE_ONLY, parseBenchArgs, WORKLOADS, type Workload } from './options.ts';
import { redisPingProblem } from './reach.ts';
import { redisStats } from './redis-time.ts';
import { replayRows } from './replay.ts';
import {
  at,
  benchRows,
  type Machine,
  machine,
  type Row,
  type RowMaker,
  row,
  STANDARD_ROWS,
  type Target,
  type WorkloadRun,
} from './report.ts';
import { CleanupFailed, runWorkload } from './workloads.ts';
import type { Note } from './workspace.ts';

export type Preset = 'tiny' | 'quick' | 'full';

export interface AllOptions {
  readonly preset: Preset;
  readonly out: string | undefined;
  readonly json: boolean;
  readonly seed: number;
  readonly redisUrl: string | undefined;
}

/**
 * The runs of each workload in `all`, per preset: one argument list per run (the workload's own
 * options; what is not given takes the workload's default). A registered workload not listed here
 * runs once with its defaults.
 */
export const ALL_RUNS: Record<string, Record<Preset, string[][]>> = {
  seed: {
    tiny: [['--agents', '40', '--contacts', '500']],
    quick: [
      ['--agents', '40'],
      ['--agents', '1000'],
    ],
    full: [
      ['--agents', '40'],
      ['--agents', '1000'],
    ],
  },
  reference: {
    tiny: [['--agents', '40', '--contacts', '300']],
    quick: [
      ['--agents', '40', '--contacts', '2000'],
      ['--agents', '1000', '--contacts', '2000'],
    ],
    full: [
      ['--agents', '40'],
      ['--agents', '1000'],
    ],
  },
  floor: {
    tiny: [['--agents', '40', '--count', '3000', '--clients', '8']],
    quick: [
      ['--agents', '40', '--count', '60000'],
      ['--agents', '1000', '--count', '20000'],
    ],
    full: [
      ['--agents', '40'],
      ['--agents', '1000'],
    ],
  },
  contract: {
    tiny: [['--contacts', '200']],
    quick: [[]],
    full: [['--contacts', '10000']],
  },
  decision: {
    tiny: [['--queues', '300,600', '--decisions', '10']],
    quick: [['--queues', '1000,100000', '--decisions', '200']],
    full: [[]],
  },
  e2e: {
    tiny: [['--rate', '200', '--duration', '1', '--warmup', '0.5']],
    // On one Redis, 1,000/s first (the rows with targets), then lower rates: the highest held
    // with p99 under 10 ms (BENCH.md).
    quick: [
      ['--rates', '1000,250,500,750', '--duration', '3'],
      ['--rate', '1000', '--duration', '3', '--cluster'],
    ],
    full: [
      ['--rates', '1000,250,500,750'],
      ['--rate', '1000', '--cluster'],
    ],
  },
  ingest: {
    tiny: [
      ['--duration', '1', '--warmup', '0.3', '--connections', '10'],
      ['--duration', '1', '--warmup', '0.3', '--connections', '10', '--haproxy'],
    ],
    quick: [
      ['--duration', '3'],
      ['--duration', '3', '--haproxy'],
    ],
    full: [[], ['--haproxy']],
  },
  fanout: {
    tiny: [
      ['--subscribers', '100', '--duration', '1', '--warmup', '0.5'],
      ['--subscribers', '100', '--duration', '1', '--warmup', '0.5', '--haproxy'],
    ],
    // 120,000 deliveries/s offered: a target of at least 100,000/s is only shown by offering more
    // (the figure counts from the first contact sent to the last delivery, so an offer of exactly
    // 100,000/s reads a little under it however fast the feed is).
    quick: [
      ['--duration', '3', '--rate', '60'],
      ['--duration', '3', '--rate', '60', '--haproxy'],
    ],
    full: [
      ['--rate', '60'],
      ['--rate', '60', '--haproxy'],
    ],
  },
  split: {
    tiny: [
      ['--sizes', '50,200', '--decisions', '5'],
      ['--sizes', '50,200', '--decisions', '5', '--levels'],
    ],
    quick: [
      ['--sizes', '2000,8000'],
      ['--sizes', '2000,8000', '--levels'],
    ],
    full: [[], ['--levels']],
  },
  wide: {
    tiny: [['--sizes', '100,400', '--decisions', '5']],
    quick: [['--sizes', '2000,10000']],
    full: [[]],
  },
  large: {
    tiny: [
      ['--sizes', '50,200', '--decisions', '5', '--agents', '300'],
      ['--sizes', '50,200', '--decisions', '5', '--agents', '300', '--levels'],
    ],
    quick: [
      ['--sizes', '1000,100000'],
      ['--sizes', '1000,100000', '--levels'],
    ],
    full: [[], ['--levels']],
  },
  policy: {
    tiny: [['--sizes', '50,200,16', '--decisions', '5']],
    quick: [['--sizes', '2000,10000,1024', '--decisions', '50']],
    full: [[]],
  },
  audit: {
    tiny: [['--events', '3000', '--agents', '30']],
    quick: [['--events', '100000']],
    full: [['--events', '1000000']],
  },
  replay: {
    tiny: [['--events', '3000', '--agents', '30', '--contacts', '2000']],
    quick: [['--events', '100000']],
    full: [['--events', '1000000']],
  },
  cluster: { tiny: [['--contacts', '200']], quick: [['--contacts', '2000']], full: [['--contacts', '5000']] },
  // 500 offers expiring over 2 s, idle and beside seed (the defaults); the smoke test, 100 over 1 s.
  timers: { tiny: [['--timers', '100', '--duration', '1']], quick: [[]], full: [[]] },
  idle: {
    tiny: [['--agents', '10', '--decisions', '100']],
    quick: [['--decisions', '2000']],
    full: [['--decisions', '20000']],
  },
};

/**
 * The table rows of a cluster run: each master's Redis main-thread CPU per assignment against the
 * single Redis's (target within 1.2x: Redis's own CPU statistics, as the seed cycle's targets), each
 * master's SLOWLOG µs against the single's (the same cycle's wall time inside its steps), the
 * aggregate with 1 master busy against the single Redis and with 2 and 3 against 1, and the
 * throughput the µs imply with a core per master.
 */
export const clusterRows: RowMaker = (run) => {
  const f = run.figures as ClusterFigures;
  const singleCpu = { name: 'single Redis, same cycle', value: f.singleCpuUsPerAssignment, unit: 'µs' };
  const single = {
    name: 'single Redis, same cycle',
    value: at(f, 'singleUsPerAssignment.total'),
    unit: 'µs',
  };
  const rows: Row[] = [
    ...Object.entries(f.masterCpuUsPerAssignment ?? {}).map(([port, us], i) =>
      row(`cluster: Redis main-thread CPU per assignment, master ${i + 1} (:${port})`, us, 'µs', singleCpu, {
        on: 'ratio',
        op: '<=',
        value: 1.2,
      }),
    ),
    ...Object.entries(f.masterUsPerAssignment).map(([port, us], i) =>
      row(
        `cluster: Redis µs per assignment (SLOWLOG), master ${i + 1} (:${port})`,
        at(us, 'total'),
        'µs',
        single,
      ),
    ),
  ];
  const one = f.phases[0];
  for (const p of f.phases)
    rows.push(
      row(
        `cluster: aggregate, ${p.masters} master${p.masters > 1 ? 's' : ''} busy (${f.cores} cores)`,
        p.assignmentsPerS,
        'assignments/s',
        p.masters === 1
          ? { name: 'single Redis, same workspaces', value: f.singleAssignmentsPerS, unit: 'assignments/s' }
          : { name: '1 master busy', value: one?.assignmentsPerS ?? null, unit: 'assignments/s' },
      ),
    );
  const last = f.phases[f.phases.length - 1];
  rows.push(
    row(
      `cluster: model, ${MASTERS} masters with a core each (1e6 / µs × masters)`,
      f.modelAggregatePerS,
      'assignments/s',
      last
        ? {
            name: `measured, ${last.masters} masters busy`,
            value: last.assignmentsPerS,
            unit: 'assignments/s',
          }
        : undefined,
    ),
  );
  return rows;
};

/** Every workload's row maker. */
export const ROW_MAKERS: Record<string, RowMaker> = {
  ...STANDARD_ROWS,
  cluster: clusterRows,
  replay: replayRows,
  idle: idleRows,
};

/** The registered workloads in the table's order: seed and its anchors first, then as registered. */
export function allWorkloads(registered: readonly string[] = WORKLOADS): string[] {
  const first = ['seed', 'reference', 'floor'].filter((w) => registered.includes(w));
  return [...first, ...registered.filter((w) => !first.includes(w))];
}

export interface AllResult {
  readonly command: string;
  readonly at: string;
  readonly preset: Preset;
  readonly machine: Machine | null;
  readonly seconds: number;
  /** The machine's 1-minute load average at the start and at the end (other processes included). */
  readonly loadAverage: readonly [number, number];
  readonly rows: Row[];
  readonly runs: WorkloadRun[];
  readonly notes: string[];
}

export async function runAll(o: AllOptions, note: Note, command: string): Promise<AllResult> {
  const t0 = nowNs();
  const load0 = os.loadavg()[0] ?? 0;
  const runs: WorkloadRun[] = [];
  let m: Machine | null = null;
  for (const workload of allWorkloads()) {
    for (const args of ALL_RUNS[workload]?.[o.preset] ?? [[]]) {
      const argv = [
        workload,
        ...args,
        '--seed',
        String(o.seed),
        // Some workloads run on a private redis-server whatever --redis-url says (options.ts).
        ...(o.redisUrl && PRIVATE_ONLY[workload as Workload] === undefined
          ? ['--redis-url', o.redisUrl]
          : []),
      ];
      note(`${workload} ${args.join(' ')}`);
      const run = await runOne(argv, (text) => note(`  [${workload}] ${text}`));
      m ??= run.machine;
      runs.push(run.result);
      if (run.result.error) note(`  [${workload}] failed: ${run.result.error}`);
    }
  }
  const rows = benchRows(runs, ROW_MAKERS);
  const notes = [
    ...runs.filter((r) => r.error).map((r) => `${r.workload} failed: ${r.error}`),
    ...[...new Set(runs.filter((r) => !ROW_MAKERS[r.workload]).map((r) => r.workload))].map(
      (w) => `${w}: no row of its own (figures in bench-all.json)`,
    ),
    ...runs.flatMap((r) => {
      const limited = (r.figures as { limitedBy?: unknown } | null)?.limitedBy;
      return r.workload === 'cluster' && typeof limited === 'string' ? [`cluster: ${limited}`] : [];
    }),
  ];
  return {
    command,
    at: new Date().toISOString(),
    preset: o.preset,
    machine: m,
    seconds: round(seconds(nowNs() - t0), 1) ?? 0,
    loadAverage: [round(load0, 1) ?? 0, round(os.loadavg()[0] ?? 0, 1) ?? 0],
    rows,
    runs,
    notes,
  };
}

/** One workload run on a fresh private redis-server (or the one its --redis-url names), failures recorded. */
async function runOne(argv: string[], note: Note): Promise<{ result: WorkloadRun; machine: Machine | null }> {
  const o = parseBenchArgs(argv);
  const redisUrl = o.redisUrl;
  const t0 = nowNs();
  let server: RedisServerHandle | undefined;
  let admin: RedisClient | undefined;
  let m: Machine | null = null;
  let parameters: Record<string, unknown> = {};
  try {
    server = redisUrl ? undefined : await startRedisServer({ appendonly: false });
    const url = redisUrl ?? server!.url;
    admin = connectRedis({ url }, { commandTimeout: 60_000 });
    m = await machine(admin);
    const before = redisUrl ? undefined : await redisStats(admin);
    const r = await runWorkload(admin, url, o, note);
    parameters = r.parameters;
    const after = before ? await redisStats(admin) : undefined;
    const stats =
      before && after
        ? {
            evalCalls: after.evalCalls - before.evalCalls,
            evalUs: after.evalUs - before.evalUs,
            cpuUs: Math.round(after.cpuUs - before.cpuUs),
          }
        : undefined;
    const elapsed = round(seconds(nowNs() - t0), 1) ?? 0;
    return {
      result: {
        workload: o.workload,
        parameters,
        figures: r.figures,
        ...(stats ? { redisStats: stats } : {}),
        seconds: elapsed,
      },
      machine: m,
    };
  } catch (err) {
    const elapsed = round(seconds(nowNs() - t0), 1) ?? 0;
    const error =
      err instanceof CleanupFailed
        ? `${failureReason(o.workload, err.failure)}; ${err.cleanupNote}`
        : failureReason(o.workload, err);
    return {
      result: { workload: o.workload, parameters, figures: null, seconds: elapsed, error },
      machine: m,
    };
  } finally {
    admin?.disconnect();
    await server?.stop();
  }
}

/** The markdown an `all` run prints and writes: what ran, where, the table and the notes. */
export function allMarkdown(r: AllResult): string {
  const m = r.machine;
  const where = m ? `${m.cpus} × ${m.model}, Node ${m.node}, Redis ${m.redis}` : 'machine unknown';
  const notes = r.notes.length > 0 ? `\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : '';
  return `Measured ${r.at.slice(0, 16).replace('T', ' ')} UTC with \`${r.command}\` (${r.preset} sizes, ${r.seconds} s; ${where}; load average ${r.loadAverage.join(' → ')}).\n\n${markdownTable(r.rows)}${notes}`;
}

/** `npm run bench -- all ...`: runs, prints or writes. Returns the exit code. */
export async function allMain(argv: readonly string[], o: AllOptions): Promise<number> {
  const note: Note = (text) => {
    if (!o.json || o.out) process.stderr.write(`bench all: ${text}\n`);
  };
  // A Redis the user named is asked first, as a single workload does (bench.ts): not Redis, or
  // not reachable, stops the run with one line before any workload, not each workload in turn.
  if (o.redisUrl) {
    const admin = connectRedis({ url: o.redisUrl });
    const problem = await redisPingProblem(admin, o.redisUrl, true).finally(() => admin.disconnect());
    if (problem !== undefined) {
      process.stderr.write(problem);
      return 1;
    }
  }
  const command = `npm run bench -- ${argv.join(' ')}`.trim();
  const result = await runAll(o, note, command);
  const md = allMarkdown(result);
  if (o.out) {
    await mkdir(o.out, { recursive: true });
    await writeFile(path.join(o.out, 'bench-all.md'), md);
    await writeFile(path.join(o.out, 'bench-all.json'), `${JSON.stringify(result, null, 2)}\n`);
    note(`wrote ${path.join(o.out, 'bench-all.md')} and bench-all.json`);
  }
  process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : md);
  return result.runs.some((r) => r.error) ? 1 : 0;
}

/** 12,345 / 123 / 12.3 / 1.23 */
export function formatNumber(v: number | null): string {
  if (v === null) return '–';
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 0.1 ? 2 : 3;
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/**
 * `v` as formatNumber writes it, with more digits when those would read against `target` the other
 * way from `met` (0.596 is not 0.6 against a target of at least 0.6; 5.004 ms not 5 ms against at
 * most 5 ms): the table says what the JSON says.
 */
function formatAgainst(v: number | null, target: Target | null, met: boolean | null): string {
  const text = formatNumber(v);
  if (v === null || target === null || met === null) return text;
  const holds = (x: number) =>
    target.op === '>=' ? x >= target.value : target.op === '<=' ? x <= target.value : x < target.value;
  const shown = (t: string) => Number(t.replace(/,/g, ''));
  if (holds(shown(text)) === met) return text;
  const from = (text.split('.')[1] ?? '').length + 1;
  for (let digits = from; digits <= 6; digits++) {
    const more = v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
    if (holds(shown(more)) === met) return more;
  }
  return String(v);
}

const OPS = { '>=': '≥', '<=': '≤', '<': '<' } as const;

export function targetText(t: Target | null, unit: string): string {
  if (!t) return '';
  return t.on === 'ratio' ? `ratio ${OPS[t.op]} ${t.value}` : `${OPS[t.op]} ${formatNumber(t.value)} ${unit}`;
}

/** The rows as a markdown table. */
export function markdownTable(rows: readonly Row[]): string {
  const lines = [
    '| Figure | Value | Anchor (same run) | Ratio | Target | Met |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const anchor =
      r.anchor === null
        ? ''
        : `${r.anchor}${r.anchorPublished ? ' (published)' : ''}: ${formatNumber(r.anchorValue)} ${r.anchorUnit}`;
    const met = r.met === null ? (r.target ? 'n/a' : '') : r.met ? 'yes' : '**no**';
    lines.push(
      `| ${r.figure} | ${formatAgainst(r.value, r.target?.on === 'figure' ? r.target : null, r.met)} ${r.unit} | ${anchor} | ${r.ratio === null ? '' : formatAgainst(r.ratio, r.target?.on === 'ratio' ? r.target : null, r.met)} | ${targetText(r.target, r.unit)} | ${met} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
