/**
 * `audit`: how fast the auditor replays a long log. A log of `events` events is made through the
 * real path (src/cli/bench/audit-log.ts: append step, projector and dispatcher Lua), then audited
 * twice: by the command as users run it (`npm run audit -- --json`, a process of its own: pages
 * read from Redis, replay, documents and routing index compared; its own figure, and the wall
 * time with the process start), and in this process over the streams already read into memory
 * (`auditEntries`: the replay alone, no reads, no documents).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { StreamEntry } from '../../adapters/redis/event-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import type { RedisClient } from '../../adapters/redis/scripts.ts';
import { type AuditSummary, auditEntries } from '../../audit/report.ts';
import { writeLog } from './audit-log.ts';
import type { Note } from './workspace.ts';

export interface AuditBenchOptions {
  readonly events: number;
  readonly agents: number;
  readonly seed: number;
}

export interface AuditFigures {
  readonly events: number;
  readonly commands: number;
  readonly assignments: number;
  readonly decisionsChecked: number;
  readonly violations: number;
  /** Making the log through the Lua steps (not the auditor). */
  readonly buildSeconds: number;
  /** The audit as `npm run audit` runs it: reading Redis in pages, replay, documents compared. */
  readonly auditSeconds: number;
  readonly eventsPerS: number;
  /** The same with the command's process start (Node, TypeScript loader, connection). */
  readonly commandWallSeconds: number;
  /** The replay alone over streams in memory (no reads, no documents). */
  readonly replaySeconds: number;
  readonly replayEventsPerS: number;
  readonly heapUsedMb: number;
}

async function readAll(redis: RedisClient, key: string): Promise<StreamEntry[]> {
  const out: StreamEntry[] = [];
  let from = '-';
  for (;;) {
    const page = (await redis.xrange(key, from, '+', 'COUNT', 10_000)) as StreamEntry[];
    for (const e of page) out.push(e);
    if (page.length < 10_000) return out;
    from = `(${page[page.length - 1]![0]}`;
  }
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** `npm run audit` as package.json runs it (its node options too), without the install check. */
function auditCommand(redisUrl: string, workspace: string): Promise<AuditSummary> {
  const script = (
    JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }
  ).scripts.audit!;
  const nodeArgs = script.slice(script.indexOf('node ') + 5).split(' ');
  const args = [...nodeArgs, '--workspace', workspace, '--redis-url', redisUrl, '--idle', '--json'];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      // Exit 1 is an audit with violations: its report is still printed.
      if (err && err.code !== 1) reject(new Error(`npm run audit failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as AuditSummary);
    });
  });
}

export async function auditWorkload(
  redis: RedisClient,
  redisUrl: string,
  workspace: string,
  o: AuditBenchOptions,
  note: Note,
): Promise<AuditFigures> {
  note(`making a log of ${o.events} events with ${o.agents} agents through the Lua steps`);
  const built = performance.now();
  let reported = 0;
  await writeLog(redis, workspace, {
    events: o.events,
    agents: o.agents,
    seed: o.seed,
    onRound: (events) => {
      if (events - reported >= o.events / 10) {
        reported = events;
        note(`  ${events} events`);
      }
    },
  });
  const buildSeconds = (performance.now() - built) / 1000;

  note('auditing it with npm run audit');
  const wall = performance.now();
  const report = await auditCommand(redisUrl, workspace);
  const commandWallSeconds = (performance.now() - wall) / 1000;
  if (report.violationCount > 0)
    note(
      `the audit found ${report.violationCount} violations: ${JSON.stringify(report.violations.slice(0, 3))}`,
    );

  note('replaying it again from memory');
  const k = workspaceKeys(workspace);
  const [commands, events, outcomes] = await Promise.all([
    readAll(redis, k.commands),
    readAll(redis, k.events),
    readAll(redis, k.outcomes),
  ]);
  const pure = auditEntries(workspace, { commands, events, outcomes });
  return {
    events: report.events,
    commands: report.commands,
    assignments: report.assignments,
    decisionsChecked: report.decisionsChecked,
    violations: report.violationCount + pure.violationCount,
    buildSeconds: Math.round(buildSeconds * 10) / 10,
    auditSeconds: Math.round(report.seconds * 100) / 100,
    eventsPerS: report.eventsPerS,
    commandWallSeconds: Math.round(commandWallSeconds * 100) / 100,
    replaySeconds: Math.round(pure.seconds * 100) / 100,
    replayEventsPerS: pure.eventsPerS,
    heapUsedMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
  };
}
