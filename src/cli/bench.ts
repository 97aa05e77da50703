/**
 * `npm run bench -- <workload> [options]`: the workloads of docs/BENCHMARKS.md, run against a private
 * redis-server this command starts (appendonly off) or the one `--redis-url` names. Each run
 * prints one JSON line `{workload, parameters, machine, figures, at}` with `--json`, a table
 * otherwise. The workloads are in src/cli/bench/ (workloads.ts lists them; `--help` describes
 * them): seed, floor, contract (the writes users see of a cycle, alone), decision, e2e, ingest,
 * the routing shapes split/wide/large, twin (one dispatch step against another on twin
 * workspaces), audit, the reference ACD's loop and the cluster scale-out. `all` runs every one of them and prints one
 * table of figures, anchors, ratios and targets (src/cli/bench/all.ts).
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectRedis } from '../adapters/redis/client.ts';
import { type RedisServerHandle, startRedisServer } from '../topology/redis-server.ts';
import { type AllOptions, allMain } from './bench/all.ts';
import { failureReason } from './bench/failure.ts';
import { BENCH_OPTIONS, parseBenchArgs } from './bench/options.ts';
import { redisPingProblem } from './bench/reach.ts';
import { formatResult, machine } from './bench/report.ts';
import { CleanupFailed, runWorkload } from './bench/workloads.ts';
import { redisUrlProblem } from './redis-target.ts';
import { parseCommandLine, runCommand, UsageError } from './sim/options.ts';

const ALL_USAGE = `Usage: npm run bench -- all [options]

Runs every workload (npm run bench -- --help lists them), each on a fresh private redis-server,
and prints one table: figure, anchor (measured in the same run), ratio, target, met.

Options:
  --out <dir>         write bench-all.md and bench-all.json there (else print the table, or the
                      JSON with --json); made if missing; one that cannot be written is refused
                      before any workload runs (exit 2)
  --full              the full sizes of docs/BENCHMARKS.md (seed/reference at 40 and 1,000
                      agents with 5,000 contacts, queues up to 1,000,000, a 1,000,000-event
                      audit; tens of minutes)
  --tiny              the smallest sizes that still measure something (a smoke test, ~1 minute)
  --seed <n>          seed of the skills (default 42)
  --redis-url <url>   run the single-Redis workloads on this Redis instead of fresh private ones
  --json              the JSON instead of the markdown table
  --help              this text

A single workload's options (--workload <name>, --agents, --contacts, ...) are refused (exit 2):
the preset sets every workload's sizes.
`;

const ALL_OPTIONS = {
  workload: { type: 'string' },
  out: { type: 'string' },
  full: { type: 'boolean', default: false },
  tiny: { type: 'boolean', default: false },
  seed: { type: 'string' },
  'redis-url': { type: 'string' },
} as const;

/**
 * Whether a bench command line asks for `all`: its first argument that is not an option or an
 * option's value is `all` (options may come before it: `--json all`), or `--workload all`.
 */
const isAll = (argv: readonly string[]): boolean => {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...BENCH_OPTIONS, ...ALL_OPTIONS },
    strict: false,
    allowPositionals: true,
  });
  return positionals[0] === 'all' || values.workload === 'all';
};

/**
 * Why the table could not be written under `out` (made with its parents when missing), checked
 * before the run rather than found when it writes, minutes of workloads later: the directory, or
 * the nearest of its parents that exists, must be a directory this process may write to.
 */
function outProblem(out: string): string | undefined {
  let at = path.resolve(out);
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(at);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== at) {
        at = parent;
        continue;
      }
      return `cannot write "${out}": ${(err as Error).message.split('\n')[0]}`;
    }
    if (!isDir)
      return `cannot write "${out}": ${at} is not a directory; give a directory to write bench-all.md and bench-all.json to`;
    try {
      accessSync(at, constants.W_OK | constants.X_OK);
    } catch {
      return `cannot write "${out}": ${at} is not writable by this user; give a directory to write bench-all.md and bench-all.json to`;
    }
    return undefined;
  }
}

/**
 * The single workloads' options `all` does not take, each refused in a line saying so rather than
 * ignored (`--workload seed` ran every workload) or called an unknown option (`--agents`): its
 * preset sets every workload's sizes. Options neither takes are left to the strict parse.
 */
function allUnusedProblems(argv: readonly string[]): string[] {
  const { tokens } = parseArgs({
    args: [...argv],
    options: { ...BENCH_OPTIONS, ...ALL_OPTIONS },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const problems = new Set<string>();
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return []; // --help: the usage
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    if (t.name === 'workload' && t.value !== undefined && t.value !== 'all')
      problems.add(
        `--workload ${t.value}: bench all runs every workload; run npm run bench -- ${t.value} for that one alone`,
      );
    else if (Object.hasOwn(BENCH_OPTIONS, t.name) && !Object.hasOwn(ALL_OPTIONS, t.name))
      problems.add(
        `--${t.name}: not an option of bench all (its preset, quick, --tiny or --full, sets each workload's sizes); give it to one workload: npm run bench -- <workload> --${t.name} ...`,
      );
  }
  return [...problems];
}

function parseAllArgs(argv: readonly string[]): AllOptions {
  const unused = allUnusedProblems(argv);
  if (unused.length > 0) throw new UsageError(unused);
  const { values, positionals, check } = parseCommandLine(argv, ALL_USAGE, ALL_OPTIONS);
  const extra = positionals.filter((p, i) => !(i === 0 && p === 'all'));
  check.check(extra.length === 0, `unexpected argument(s): ${extra.join(' ')}`);
  check.check(!(values.full && values.tiny), '--full and --tiny: give one or the other');
  const seed = check.number('seed', values.seed, 42, { integer: true, min: 0, max: 2 ** 32 - 1 });
  const redisUrlBad = values['redis-url'] === undefined ? undefined : redisUrlProblem(values['redis-url']);
  check.check(redisUrlBad === undefined, `--redis-url: ${redisUrlBad}`);
  check.check(values.out === undefined || values.out.trim() !== '', '--out: must name a directory');
  const outBad = values.out === undefined || values.out.trim() === '' ? undefined : outProblem(values.out);
  check.check(outBad === undefined, `--out: ${outBad}`);
  check.done();
  return {
    preset: values.full ? 'full' : values.tiny ? 'tiny' : 'quick',
    out: values.out,
    json: values.json ?? false,
    seed,
    redisUrl: values['redis-url'],
  };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (isAll(argv)) return allMain(argv, parseAllArgs(argv));
  const o = parseBenchArgs(argv);
  const note = (text: string) => {
    if (!o.json) process.stderr.write(`bench: ${text}\n`);
  };
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
  try {
    const problem = await redisPingProblem(admin, url, Boolean(o.redisUrl));
    if (problem !== undefined) {
      process.stderr.write(problem);
      return 1;
    }
    if (o.redisUrl)
      note(
        'using a shared Redis: a Switchboard serving it would discover the bench workspaces and route them too',
      );
    let m: Awaited<ReturnType<typeof machine>>;
    let run: Awaited<ReturnType<typeof runWorkload>>;
    try {
      m = await machine(admin);
      run = await runWorkload(admin, url, o, note);
    } catch (err) {
      // One line saying what failed and what to do, never a stack (also with --json: on stderr).
      // The workload's own error first; a clean-up that failed after it, on the next line.
      const failure = err instanceof CleanupFailed ? err.failure : err;
      process.stderr.write(`bench: ${o.workload} failed: ${failureReason(o.workload, failure)}\n`);
      if (err instanceof CleanupFailed) process.stderr.write(`bench: ${err.cleanupNote}\n`);
      return 1;
    }
    const { parameters, figures } = run;
    const at = new Date().toISOString();
    process.stdout.write(formatResult({ workload: o.workload, parameters, machine: m, figures, at }, o.json));
    return 0;
  } finally {
    admin.disconnect();
    await server?.stop();
  }
}

runCommand('bench', main);
