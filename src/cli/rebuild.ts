/**
 * `npm run rebuild -- --workspace <ws> [options]`: re-projects the workspace's whole command log
 * with the production Lua steps into a shadow keyspace (src/cli/rebuild/rebuild.ts), replaying
 * each routing decision where it was made, and compares the documents, the routing index's sorted
 * sets, the counters, the settings and the lifecycle timers with the live state.
 *
 * Exit codes: 0 the same, 1 differences, 2 bad arguments (or no such workspace, or an archive
 * directory that does not exist, or holds no folder of the workspace, for a workspace whose
 * streams were archived), 3 the rebuild
 * could not run (Redis unreachable or refusing the read, an error while reading, or a workspace
 * that kept changing), 130 interrupted (SIGINT or SIGTERM: it stops, removes its shadow unless
 * --keep-shadow and hands it back, so the next rebuild runs at once; a second signal exits at once).
 */
import { DiskArchive } from '../archive/store.ts';
import { RebuildBusyError, type RebuildReport, rebuildWorkspace, shadowOf } from './rebuild/rebuild.ts';
import {
  archiveDirOf,
  archiveNotThere,
  archiveSourceOf,
  failureOf,
  parseRedisTarget,
  reachRedis,
  workspaceOption,
} from './redis-target.ts';
import { OptionChecker, parseOrUsage, runCommand } from './sim/options.ts';

const SHOWN = 20;

const USAGE = `Usage: npm run rebuild -- --workspace <ws> [options]

Reads the workspace's log across the archive and the streams, copies its commands into a shadow
keyspace (sb:{<ws>.rebuild}:*) with the same positions, applies them with the projector's Lua step,
replays each AssignmentMade with one decision of the dispatcher's Lua step at the checkpoint it was
based on (it must be the same assignment), then compares the documents, sorted sets, counters,
settings and lifecycle timers with the live ones (a timer the live clock fired is accounted for by its command).
The shadow is removed afterwards.

  --workspace <ws>         the workspace to rebuild (required)
  --redis-url <url>        the Redis to read (default $REDIS_URL, else the private Redis npm start runs
                           for <$DATA_DIR or ./data>)
  --cluster-nodes <list>   host:port,... seeds of a Redis Cluster instead (default $REDIS_CLUSTER_NODES)
  --archive-dir <dir>      where the archiver keeps segments, read before the streams (default
                           $ARCHIVE_DIR, else <$DATA_DIR or ./data>/archive). One that does not
                           exist, or holds no folder of the workspace, is an empty archive: for a
                           workspace whose streams were archived and trimmed, that is exit 2
  --keep-shadow            keep the shadow's keys to look at them
  --json                   print one JSON object (the report and the first ${SHOWN} differences)
  --help                   this text

Exit codes: 0 the same, 1 differences, 2 bad arguments (an --archive-dir that does not exist, or
holds no folder of the workspace, for an archived workspace included), 3 the rebuild could not run, 130
interrupted (Ctrl-C: the shadow is removed first, unless --keep-shadow; a second Ctrl-C does not wait).
`;

function format(r: RebuildReport, label: string): string {
  const lines = [
    `Rebuild of workspace "${r.workspace}" (${label}) in ${r.seconds.toFixed(2)} s`,
    `  log          ${r.commands} commands applied, ${r.assignments} decisions replayed`,
    `  state        ${r.compared ? 'compared' : 'not compared: the workspace kept changing while it was read'}`,
    `  differences  ${r.differenceCount}`,
  ];
  if (r.differences.length > 0) lines.push('', 'The first differences (kind, key, member: live | rebuilt):');
  for (const d of r.differences.slice(0, SHOWN))
    lines.push(
      `  ${d.kind.padEnd(8)}  ${d.key.padEnd(16)}  ${d.member}: ${d.live ?? '(none)'} | ${d.rebuilt ?? '(none)'}`,
    );
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  const { values, positionals } = parseOrUsage({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: true,
    options: {
      workspace: { type: 'string' },
      'redis-url': { type: 'string' },
      'cluster-nodes': { type: 'string' },
      'archive-dir': { type: 'string' },
      'keep-shadow': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const check = new OptionChecker();
  check.check(positionals.length === 0, `unexpected argument(s): ${positionals.join(' ')}`);
  const workspace = workspaceOption(values.workspace, check, 'rebuild');
  const parsed = parseRedisTarget(values, process.env, check);
  const archiveDir = archiveDirOf(values['archive-dir'], process.env, check);
  check.done();

  const redis = await reachRedis('rebuild', parsed, 60_000, workspace);
  if (typeof redis === 'number') return redis;
  // Without its archived prefix the log rebuilds to another state: every document "differs".
  let notThere: string | undefined;
  try {
    notThere = await archiveNotThere(
      redis,
      workspace,
      archiveDir,
      archiveSourceOf(values['archive-dir'], process.env),
    );
  } catch (err) {
    redis.disconnect();
    process.stderr.write(`rebuild: the rebuild could not run: ${failureOf(err)}\n`);
    return 3;
  }
  if (notThere !== undefined) {
    redis.disconnect();
    process.stderr.write(`rebuild: ${notThere}\nRun with --help for the options.\n`);
    return 2;
  }
  // An interrupt stops the rebuild between two batches or two reads of its comparison, and its
  // shadow (a copy of the log) is removed and handed back before the exit: killed outright, it was
  // left in Redis, held, and the next rebuild was refused as if another were running. A second
  // interrupt exits at once.
  const interrupt = new AbortController();
  const onSignal = () => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(
      `rebuild: interrupted; ${values['keep-shadow'] ? 'keeping' : 'removing'} the shadow (interrupt again to exit at once)\n`,
    );
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await rebuildWorkspace(redis, workspace, {
      keepShadow: values['keep-shadow'] ?? false,
      archive: new DiskArchive(archiveDir),
      signal: interrupt.signal,
    });
    process.stdout.write(
      values.json
        ? `${JSON.stringify({ ...report, differences: report.differences.slice(0, SHOWN) })}\n`
        : format(report, parsed.label),
    );
    // A hole in the archive: the differences after it come from the log read short, not from the
    // live state; said with what to do, as the API's archive-unreadable problem says it.
    const breaks = report.differences.filter((d) => d.kind === 'archive');
    if (breaks.length > 0) {
      const where = breaks.map((b) => `${b.key} at ${b.member}: ${b.live}`).join('; ');
      process.stderr.write(
        `rebuild: the log of workspace "${workspace}" could not be read whole, as written, from the archive in ${archiveDir} (${where}): the differences after it come from that break, not from the live state. --archive-dir must be the archive the archiver writes to; restore the missing or damaged segment from a copy (npm run audit -- --workspace ${workspace} --archive-dir ${JSON.stringify(archiveDir)} lists every break), then run the rebuild again.\n`,
      );
    }
    if (report.differenceCount > 0) return 1;
    if (report.compared) return 0;
    // No difference found is not a workspace found sound: said on stderr, as the audit does.
    process.stderr.write(
      'rebuild: the live state could not be compared: the workspace kept changing while it was read; run the rebuild again when the workspace is quieter.\n',
    );
    return 3;
  } catch (err) {
    // The interrupt itself (the shadow dropped meanwhile); a failure while dropping it is named below.
    if (interrupt.signal.aborted && err === interrupt.signal.reason) {
      process.stderr.write(
        `rebuild: interrupted: nothing compared; ${values['keep-shadow'] ? `the shadow kept (sb:{${shadowOf(workspace)}}:*)` : 'the shadow removed'}\n`,
      );
      return 130;
    }
    const why = err instanceof RebuildBusyError ? err.message : failureOf(err);
    process.stderr.write(`rebuild: the rebuild could not run: ${why}\n`);
    return 3;
  } finally {
    redis.disconnect();
  }
}

runCommand('rebuild', main, 3);
