/**
 * `npm run audit -- --workspace <ws> [options]`: audits a workspace's log in Redis (src/audit):
 * replays its command stream through the domain model and checks that every command was applied
 * once, in order, with the recorded outcome and facts; that every AssignmentMade is rule 1's
 * decision for the state it was based on and possible at all; and that the documents, the
 * routing index and the lifecycle timers in Redis are the replayed state's. Prints a summary and the first violations.
 *
 * Exit codes: 0 no violation, 1 violations found, 2 bad arguments (or no such workspace),
 * 3 the audit could not run (Redis unreachable or refusing the read, or an error while reading), or
 * could not compare the documents and index it was asked to (without --no-state) and found no violation.
 */
import { Presets, SingleBar } from 'cli-progress';
import { isRight } from 'fp-ts/lib/Either.js';
import type { RedisTarget } from '../adapters/redis/client.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import { DiskArchive } from '../archive/store.ts';
import { auditWorkspace } from '../audit/read.ts';
import { type AuditReport, summaryOf } from '../audit/report.ts';
import { decimalInteger } from '../domain/decimal.ts';
import { comparePositions, IDEMPOTENCY_TTL_S, Position } from '../domain/values.ts';
import { plainFailure } from './plain-failure.ts';
import {
  archiveDirOf,
  archiveNotThere,
  archiveSourceOf,
  failureOf,
  type ParsedTarget,
  parseRedisTarget,
  reachRedis,
  workspaceOption,
} from './redis-target.ts';
import { OptionChecker, parseOrUsage, UsageError } from './sim/options.ts';

const SHOWN = 20;

const USAGE = `Usage: npm run audit -- --workspace <ws> [options]

Replays the workspace's command stream (sb:{ws}:commands) through the domain model and checks
the event stream (sb:{ws}:events), the outcome stream, every routing decision (rule 1 at its
meta.basedOn) and, at the end, the documents, routing index and lifecycle timers against the replay.

  --workspace <ws>         the workspace to audit (required)
  --redis-url <url>        the Redis to read (default $REDIS_URL, else the private Redis npm start runs
                           for <$DATA_DIR or ./data>)
  --cluster-nodes <list>   host:port,... seeds of a Redis Cluster instead (default $REDIS_CLUSTER_NODES)
  --after <position>       report only violations after this stream position. The replay still
                           starts at the beginning of the log (every check needs the state the
                           whole history built); violations at or before it are only counted.
                           The end-of-log checks (documents, index, --idle) are always reported.
                           One past the end of the log is refused (exit 2), naming its last position.
  --archive-dir <dir>      where the archiver keeps segments (default $ARCHIVE_DIR, else
                           $DATA_DIR/archive, else ./data/archive): the archived prefix of the
                           streams is read from there first, and its hash chain checked. One
                           that does not exist, or holds no folder of the workspace, is an
                           empty archive: for a workspace whose streams were archived and
                           trimmed, that is exit 2
  --idle                   the dispatcher is idle: also check that no queued contact has an
                           eligible available agent at the end
  --no-state               do not compare the documents, the routing index and the timers, nor
                           the live interval projection's tallies
  --idempotency-ttl-s <s>  how long the server remembers an Idempotency-Key: its IDEMPOTENCY_TTL_S
                           (default $IDEMPOTENCY_TTL_S, else ${IDEMPOTENCY_TTL_S.default}; ${IDEMPOTENCY_TTL_S.min} to ${IDEMPOTENCY_TTL_S.max}). A command
                           appended within this long of the last one with its key is an
                           idempotency violation; one appended later is a new request (the
                           server's record had expired)
  --page-size <n>          stream entries per read (default 5000)
  --json                   print one JSON object (the summary and the first ${SHOWN} violations)
  --help                   this text

Exit codes: 0 no violation (and, without --no-state, the documents, index and timers compared);
1 violations; 2 bad arguments (an --archive-dir that does not exist, or holds no folder of the
workspace, for an archived workspace included); 3 the audit could not run, or could not compare the documents (the
workspace kept changing while they were read) and found no violation.
`;

interface CliOptions {
  readonly workspace: string;
  readonly target: RedisTarget;
  readonly label: string;
  readonly urlName?: ParsedTarget['urlName'];
  readonly after?: string;
  readonly idle: boolean;
  readonly state: boolean;
  readonly pageSize: number;
  /** How long the server remembers an Idempotency-Key (its IDEMPOTENCY_TTL_S), in seconds. */
  readonly idempotencyTtlS: number;
  readonly json: boolean;
  readonly archiveDir: string;
  /** Where archiveDir came from, for messages: the flag or the variable. */
  readonly archiveSource: string;
}

function parseAuditArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  const { values, positionals } = parseOrUsage({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      workspace: { type: 'string' },
      'redis-url': { type: 'string' },
      'cluster-nodes': { type: 'string' },
      after: { type: 'string' },
      idle: { type: 'boolean', default: false },
      'no-state': { type: 'boolean', default: false },
      'page-size': { type: 'string' },
      'idempotency-ttl-s': { type: 'string' },
      'archive-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const check = new OptionChecker();
  check.check(positionals.length === 0, `unexpected argument(s): ${positionals.join(' ')}`);
  const workspace = workspaceOption(values.workspace, check, 'audit');
  const { target, label, urlName } = parseRedisTarget(values, env, check);
  // Read as the API reads a position: leading zeros dropped ("007-01" is "7-1"), since positions
  // are compared digit by digit, and each part within Redis's 64 bits.
  const decoded = values.after === undefined ? undefined : Position.decode(values.after);
  const after = decoded !== undefined && isRight(decoded) ? decoded.right : undefined;
  check.check(
    decoded === undefined || after !== undefined,
    `--after: must be a stream position such as 1732200000000-0, each part an integer of at most 18446744073709551615 (got "${values.after}")`,
  );
  const pageSize = check.number('page-size', values['page-size'], 5000, {
    integer: true,
    min: 1,
    max: 100_000,
  });
  const idempotencyTtlS = idempotencyTtlOf(values['idempotency-ttl-s'], env, check);
  const archiveDir = archiveDirOf(values['archive-dir'], env, check);
  check.done();
  return {
    workspace,
    target,
    label,
    ...(urlName !== undefined ? { urlName } : {}),
    ...(after !== undefined ? { after } : {}),
    idle: values.idle ?? false,
    state: !values['no-state'],
    pageSize,
    idempotencyTtlS,
    json: values.json ?? false,
    archiveDir,
    archiveSource: archiveSourceOf(values['archive-dir'], env),
  };
}

/**
 * How long the server remembers an Idempotency-Key: --idempotency-ttl-s, else IDEMPOTENCY_TTL_S
 * read as the server reads it (blank is unset, spaces around it dropped), else the server's default.
 */
function idempotencyTtlOf(value: string | undefined, env: NodeJS.ProcessEnv, check: OptionChecker): number {
  const def = IDEMPOTENCY_TTL_S.default;
  if (value !== undefined)
    return check.number('idempotency-ttl-s', value, def, {
      integer: true,
      min: IDEMPOTENCY_TTL_S.min,
      max: IDEMPOTENCY_TTL_S.max,
    });
  const variable = env.IDEMPOTENCY_TTL_S?.trim();
  if (!variable) return def;
  const n = decimalInteger(variable);
  const ok = n !== undefined && n >= IDEMPOTENCY_TTL_S.min && n <= IDEMPOTENCY_TTL_S.max;
  check.check(
    ok,
    `IDEMPOTENCY_TTL_S (the default of --idempotency-ttl-s): must be an integer from ${IDEMPOTENCY_TTL_S.min} to ${IDEMPOTENCY_TTL_S.max}, in decimal digits (got "${variable}")`,
  );
  return ok ? n : def;
}

const n = (x: number) => x.toLocaleString('en-US');

/**
 * The last position of the workspace's log: the later of its command and event streams' last
 * generated ids (kept by Redis when the archiver trims every entry); undefined when neither is there.
 */
async function logEnd(redis: RedisClient, workspace: string): Promise<string | undefined> {
  const k = workspaceKeys(workspace);
  let end: string | undefined;
  for (const key of [k.commands, k.events]) {
    const info = (await redis.xinfo('STREAM', key).catch((err: Error) => {
      if (/no such key/i.test(err.message)) return undefined;
      throw err;
    })) as unknown[] | undefined;
    const at = info?.indexOf('last-generated-id') ?? -1;
    const id = at >= 0 ? String(info![at + 1]) : undefined;
    if (id !== undefined && (end === undefined || comparePositions(id, end) > 0)) end = id;
  }
  return end;
}

/** The commands by API key (`<keyId> <role>`), the five busiest; `-`: sent by no key (timers). */
function whoDidWhat(byKey: Readonly<Record<string, number>>): string {
  const all = Object.entries(byKey);
  if (all.length === 0) return 'no command';
  const shown = all.slice(0, 5).map(([who, c]) => `${who === '-' ? 'no key' : who} ${n(c)}`);
  return `${shown.join(', ')}${all.length > 5 ? `, and ${all.length - 5} more keys` : ''}`;
}

/** The timer commands replayed and how late the clock appended them. */
function timerLine(t: AuditReport['timers']): string {
  if (t.fired === 0) return 'none fired';
  return `${n(t.fired)} fired; appended after their due time by ${n(t.lagP50Ms!)} ms (median), ${n(t.lagP99Ms!)} ms (p99), at most ${n(t.lagMaxMs!)} ms (${t.latest})`;
}

function formatReport(r: AuditReport, o: CliOptions): string {
  const lines = [
    `Audit of workspace "${r.workspace}" (${o.label})`,
    `  commands    ${n(r.commands)} replayed, up to the checkpoint ${r.checkpoint ?? '(none)'}; ${n(r.pendingCommands)} pending after it`,
    `  events      ${n(r.events)}: ${n(r.facts)} facts, ${n(r.rejections)} rejections, ${n(r.assignments)} assignments`,
    `  decisions   ${n(r.decisionsChecked)} re-checked against rule 1, ${n(r.decisionsUnverifiable)} could not be`,
    `  who         ${whoDidWhat(r.commandsByKey)}`,
    `  timers      ${timerLine(r.timers)}`,
    `  state       documents, routing index, counters and timers ${r.state}`,
    `  intervals   live interval tallies ${r.intervals}`,
    `  violations  ${n(r.violationCount)}${o.after ? ` after ${o.after} (${n(r.violationsBeforeAfter)} at or before it, not reported)` : ''}`,
    `  speed       ${n(r.eventsPerS)} events/s (${r.seconds.toFixed(2)} s)`,
  ];
  const byKind = Object.entries(r.violationsByKind).map(([k, c]) => `${k} ${n(c)}`);
  if (byKind.length > 0) lines.push(`  by kind     ${byKind.join(', ')}`);
  const shown = r.violations.slice(0, SHOWN);
  if (shown.length > 0) {
    lines.push(
      '',
      `The first ${shown.length} violation${shown.length > 1 ? 's' : ''} (position, stream, kind):`,
    );
    for (const v of shown)
      lines.push(`  ${v.position}  ${v.stream.padEnd(8)}  ${v.kind.padEnd(12)}  ${v.message}`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  let o: CliOptions;
  try {
    o = parseAuditArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`audit: ${err.problems.join('\naudit: ')}\nRun with --help for the options.\n`);
      return 2;
    }
    throw err;
  }
  // Pages of thousands of entries may take longer than a request of the API.
  const redis = await reachRedis('audit', o, 60_000, o.workspace);
  if (typeof redis === 'number') return redis;
  let bar: SingleBar | undefined;
  try {
    const notThere = await archiveNotThere(redis, o.workspace, o.archiveDir, o.archiveSource);
    if (notThere !== undefined) {
      process.stderr.write(`audit: ${notThere}\nRun with --help for the options.\n`);
      return 2;
    }
    // A position past the end of the log (a digit too many, another Redis's) hides every
    // violation: "0 after P" and exit 0, whatever the log holds. Refused, naming the end.
    if (o.after !== undefined) {
      const end = await logEnd(redis, o.workspace);
      if (end !== undefined && comparePositions(o.after, end) > 0) {
        process.stderr.write(
          `audit: --after: ${o.after} is past the end of the log of workspace "${o.workspace}" (its last position is ${end}): nothing after it could be reported; give a position of the log (a violation's, or the checkpoint an earlier audit printed), or leave --after out\nRun with --help for the options.\n`,
        );
        return 2;
      }
    }
    if (!o.json && process.stderr.isTTY === true) {
      bar = new SingleBar(
        {
          stream: process.stderr,
          hideCursor: true,
          format: 'audit [{bar}] {value}/{total} events | {rate} events/s | {phase}',
        },
        Presets.shades_classic,
      );
    }
    const started = performance.now();
    let startedBar = false;
    const report = await auditWorkspace(redis, o.workspace, {
      ...(o.after !== undefined ? { after: o.after } : {}),
      idle: o.idle,
      compareState: o.state,
      pageSize: o.pageSize,
      idempotencyTtlMs: o.idempotencyTtlS * 1000,
      archive: new DiskArchive(o.archiveDir),
      onProgress: (p) => {
        if (!bar) return;
        const rate = n(Math.round(p.events / Math.max(0.001, (performance.now() - started) / 1000)));
        const phase = p.phase === 'events' ? 'replaying' : 'comparing documents and index';
        if (!startedBar) bar.start(Math.max(p.totalEvents, p.events), p.events, { rate, phase });
        startedBar = true;
        bar.setTotal(Math.max(p.totalEvents, p.events));
        bar.update(p.events, { rate, phase });
      },
    });
    bar?.stop();
    process.stdout.write(o.json ? `${JSON.stringify(summaryOf(report, SHOWN))}\n` : formatReport(report, o));
    if (report.violationCount > 0) return 1;
    // The end-of-log check was asked for (the default) and not made: no violation found is not a
    // workspace found sound, so the audit did not run whole.
    if (o.state && report.state !== 'compared') {
      process.stderr.write(
        `audit: the documents, routing index and timers were ${report.state}; the log itself has no violation. Run the audit again (when the workspace is quieter), or pass --no-state to audit the log alone.\n`,
      );
      return 3;
    }
    return 0;
  } catch (err) {
    bar?.stop();
    process.stderr.write(`audit: the audit could not run: ${failureOf(err)}\n`);
    return 3;
  } finally {
    redis.disconnect();
  }
}

main().then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    process.stderr.write(`audit: the audit could not run: ${plainFailure(err)}\n`);
    process.exit(3);
  },
);
