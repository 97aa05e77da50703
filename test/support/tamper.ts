/**
 * What the tamper suites share: the audit command run as a user runs it (`src/cli/audit.ts`,
 * spawned), and a forged AssignmentMade appended to a real log.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { AuditSummary } from '../../src/audit/report.ts';
import { cliEntry } from './main-build.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface AuditRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The summary of `--json` output, when there is one. */
  readonly summary: AuditSummary | undefined;
}

/** `npm run audit -- <args>` without REDIS_URL from the environment: its exit code and output. */
export function auditCli(args: readonly string[]): Promise<AuditRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...cliEntry('audit'), ...args],
      { cwd: ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, REDIS_URL: '' } },
      (err, stdout, stderr) => {
        let summary: AuditSummary | undefined;
        try {
          summary = stdout && args.includes('--json') ? (JSON.parse(stdout) as AuditSummary) : undefined;
        } catch {
          summary = undefined;
        }
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
          stdout,
          stderr,
          summary,
        });
      },
    );
  });
}

/**
 * Appends an AssignmentMade of `contactId` → `agentId` with the data a dispatcher writes (from the
 * contact's document), based on the projector's checkpoint; Redis's state is left as it was.
 * Returns its position.
 */
export async function forgeAssignment(
  redis: RedisClient,
  ws: string,
  contactId: string,
  agentId: string,
): Promise<string> {
  const k = workspaceKeys(ws);
  const contact = JSON.parse((await redis.hget(k.contacts, contactId))!) as Record<string, unknown>;
  const now = Date.now();
  const data = {
    contactId,
    agentId,
    skills: contact.skills,
    channel: contact.channel,
    priority: contact.priority,
    queuedAt: contact.queuedAt,
    assignedAt: new Date(now).toISOString(),
    waitedMs: now - Date.parse(String(contact.queuedAt)),
  };
  const basedOn = (await redis.hget(k.meta, 'applied'))!;
  const env = {
    type: 'AssignmentMade',
    workspace: ws,
    at: data.assignedAt,
    data,
    meta: { causationId: contact._cmd, basedOn },
  };
  return (await redis.xadd(k.events, '*', 'type', 'AssignmentMade', 'event', JSON.stringify(env)))!;
}
