import { createHash, randomUUID } from 'node:crypto';
import type { Command } from '../../domain/commands.ts';
import { globalKeys, workspaceKeys } from './keys.ts';
import { luaScript, type RedisClient, runLua } from './scripts.ts';

const APPEND = luaScript('append', new URL('./lua/append-command-4.lua', import.meta.url));

export interface AppendRequest {
  readonly workspace: string;
  readonly command: Command;
  readonly commandId?: string;
  readonly idempotencyKey?: string;
  /** What makes two requests "the same" for an Idempotency-Key: method, route and body. */
  readonly fingerprint?: string;
  readonly requestId?: string;
  /** Who sent it: the API key's id and role (the projector copies both into every fact's meta). */
  readonly keyId?: string;
  readonly role?: string;
  /** Idempotency records live this long (seconds). */
  readonly idempotencyTtlS?: number;
}

export interface Appended {
  readonly position: string;
  readonly commandId: string;
  /** True when the Idempotency-Key was seen before: nothing was appended. */
  readonly repeated: boolean;
  /** For a repeat: whether it matches the first request. */
  readonly sameRequest: boolean;
  /** For a repeat whose command was already applied: its outcome. */
  readonly outcome?: CommandOutcome;
}

export interface CommandOutcome {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export function fingerprintOf(...parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}

function plainAppend(
  redis: RedisClient,
  stream: string,
  req: AppendRequest,
  commandId: string,
  command: object,
  attributes: unknown,
  soon: AppendSoon | undefined,
): Promise<unknown[]> {
  const fields = entryFields(req, commandId, command, attributes);
  const appended = soon ? soon(fields) : redis.xadd(stream, '*', ...fields);
  return appended.then((position) => [position, commandId, 0, '', '']);
}

function entryFields(req: AppendRequest, commandId: string, command: object, attributes: unknown): string[] {
  const fields = ['type', req.command.type, 'commandId', commandId, 'command', JSON.stringify(command)];
  if (attributes !== undefined) fields.push('attributes', JSON.stringify(attributes));
  if (req.requestId) fields.push('requestId', req.requestId);
  if (req.keyId) fields.push('keyId', req.keyId);
  if (req.role) fields.push('role', req.role);
  return fields;
}

/**
 * A command's entry as an append without an Idempotency-Key writes it (field, value pairs), for a
 * projector step to append (projectPending's `appends`).
 */
export function commandEntry(req: Omit<AppendRequest, 'idempotencyKey' | 'fingerprint'>): string[] {
  const { attributes, ...rest } = req.command as Command & { attributes?: unknown };
  return entryFields(req, req.commandId ?? randomUUID(), rest, attributes);
}

/**
 * Appends a command's entry (field, value pairs) some other way than an XADD of its own: the
 * projector step that applies it appends it (src/app/composition-root.ts). Resolves with its position.
 */
export type AppendSoon = (entry: readonly string[]) => Promise<string>;

/** When this process last marked each workspace active: at most once a second each. */
const markedActive = new Map<string, number>();
const knownWorkspaces = new Set<string>();

/** Appends a command to its workspace's stream; with an Idempotency-Key, a repeat appends nothing. */
export async function appendCommand(
  redis: RedisClient,
  req: AppendRequest,
  soon?: AppendSoon,
): Promise<Appended> {
  const keys = workspaceKeys(req.workspace);
  const commandId = req.commandId ?? randomUUID();
  const { attributes, ...rest } = req.command as Command & { attributes?: unknown };
  const fingerprint = req.fingerprint ?? '';
  const idem = req.idempotencyKey ?? '';
  // Registry marks are sent without waiting, so concurrent appends from one client reach Redis
  // in call order (the script call below is issued in this same tick).
  const marks: Promise<unknown>[] = [];
  if (!knownWorkspaces.has(req.workspace)) {
    knownWorkspaces.add(req.workspace);
    marks.push(redis.sadd(globalKeys.workspaces, req.workspace));
  }
  const now = Date.now();
  if (now - (markedActive.get(req.workspace) ?? 0) >= 1000) {
    markedActive.set(req.workspace, now);
    marks.push(redis.zadd(globalKeys.activeWorkspaces, now, req.workspace));
  }
  // Without an Idempotency-Key there is nothing to look up: one XADD, with the same fields the
  // append step writes (a Lua step costs Redis several times what the XADD does), or `soon`.
  const appended =
    idem === ''
      ? plainAppend(redis, keys.commands, req, commandId, rest, attributes, soon)
      : runLua(
          redis,
          APPEND,
          [keys.commands, keys.idempotency, keys.idempotencyExpiry, keys.idempotencyOutcomes],
          [
            keys.prefix,
            req.command.type,
            commandId,
            JSON.stringify(rest),
            idem,
            fingerprint,
            req.idempotencyTtlS ?? 86_400,
            req.requestId ?? '',
            attributes === undefined ? '' : JSON.stringify(attributes),
            req.keyId ?? '',
            req.role ?? '',
          ],
        );
  // The marks are best effort (they only tell workers which workspaces to serve): a failing
  // one is tried again with the next command and never fails the request.
  for (const m of marks) {
    m.catch(() => {
      knownWorkspaces.delete(req.workspace);
      markedActive.delete(req.workspace);
    });
  }
  const reply = await appended;
  const [position, firstCommandId, repeated, firstFingerprint, outcome] = reply as [
    string,
    string,
    number,
    string,
    string,
  ];
  return {
    position,
    commandId: firstCommandId,
    repeated: repeated === 1,
    sameRequest: repeated !== 1 || firstFingerprint === fingerprint,
    ...(outcome ? { outcome: JSON.parse(outcome) as CommandOutcome } : {}),
  };
}
