import { createHash, randomUUID } from 'node:crypto';
import { stringify as stableStringify } from 'safe-stable-stringify';
import type { Command } from '../../domain/commands.ts';
import { IDEMPOTENCY_TTL_S } from '../../domain/values.ts';
import { globalKeys, workspaceKeys } from './keys.ts';
import { redisClockNow } from './redis-clock.ts';
import { luaScript, type RedisClient, runLua } from './scripts.ts';

const APPEND = luaScript('append', new URL('./lua/append-command-4.lua', import.meta.url), {
  slotGuard: true,
});

export interface AppendRequest {
  readonly workspace: string;
  readonly command: Command;
  readonly commandId?: string;
  readonly idempotencyKey?: string;
  /** What makes two requests "the same" for an Idempotency-Key: method, route and body. */
  readonly fingerprint?: string;
  /** The same request's fingerprint as earlier versions made it (asked only for a repeat). */
  readonly legacyFingerprint?: () => string;
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
  /**
   * For a repeat whose command was already applied: its outcome. For a command the projector
   * step that appended it also applied (`AppendSoon`): its own, from that step's reply.
   */
  readonly outcome?: CommandOutcome;
}

export interface CommandOutcome {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/**
 * The outcome recorded for an Idempotency-Key's command once applied (`idem:outcomes`, the answer
 * its repeats get), or null while it is not applied or the key is not known.
 */
export async function recordedOutcome(
  redis: RedisClient,
  workspace: string,
  idempotencyKey: string,
): Promise<CommandOutcome | null> {
  const text = await redis.hget(workspaceKeys(workspace).idempotencyOutcomes, idempotencyKey);
  return text ? (JSON.parse(text) as CommandOutcome) : null;
}

/**
 * The command of the entry at `position` in a workspace's command stream: undefined when the entry
 * is gone (applied and archived since), or its `command` field is not JSON of an object (an entry
 * something else wrote).
 */
export async function commandAt(
  redis: RedisClient,
  workspace: string,
  position: string,
): Promise<Record<string, unknown> | undefined> {
  const [entry] = (await redis.xrange(workspaceKeys(workspace).commands, position, position)) as [
    string,
    string[],
  ][];
  const fields = entry?.[1] ?? [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== 'command') continue;
    try {
      const command = JSON.parse(fields[i + 1]!) as unknown;
      return typeof command === 'object' && command !== null
        ? (command as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * What makes two requests "the same" for an Idempotency-Key, hashed: the parts as JSON with every
 * object's members in sorted order, so a retry whose client wrote its body's members in another
 * order (JSON objects are unordered, RFC 8259) is the same request. Arrays keep their order.
 */
export function fingerprintOf(...parts: readonly unknown[]): string {
  return hash(stableStringify(parts) ?? '');
}

/**
 * The fingerprint instances before 2026-12-04 recorded: the members in the order the body had
 * them. A key such an instance recorded (it lives `IDEMPOTENCY_TTL_S`) still matches its retry
 * sent to this one, during and after a rolling upgrade.
 */
export function legacyFingerprintOf(...parts: readonly unknown[]): string {
  return hash(JSON.stringify(parts));
}

const hash = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/**
 * A command as a projector step appends it (projectPending's `appends`; project-23.lua ARGV[9]):
 * its entry's field, value pairs, as append-command-4.lua writes them, and what that script is
 * given besides for an Idempotency-Key.
 */
export interface StepAppend {
  readonly entry: readonly string[];
  readonly commandId: string;
  /** '' for none. */
  readonly idempotencyKey: string;
  readonly fingerprint: string;
  readonly idempotencyTtlS: number;
}

/**
 * Appends a command some other way than on its own: the projector step that applies it appends it
 * (src/app/composition-root.ts). Resolves as append-command-4.lua answers: position, command id,
 * repeated (0|1), the first request's fingerprint, its outcome or ''.
 */
export type AppendSoon = (append: StepAppend) => Promise<unknown[]>;

/** The command's entry, fields in the order append-command-4.lua writes them. */
export function stepAppend(req: AppendRequest, commandId = req.commandId ?? randomUUID()): StepAppend {
  const { attributes, ...rest } = req.command as Command & { attributes?: unknown };
  const entry = ['type', req.command.type, 'commandId', commandId, 'command', JSON.stringify(rest)];
  if (req.idempotencyKey) entry.push('idempotencyKey', req.idempotencyKey);
  if (attributes !== undefined) entry.push('attributes', JSON.stringify(attributes));
  if (req.requestId) entry.push('requestId', req.requestId);
  if (req.keyId) entry.push('keyId', req.keyId);
  if (req.role) entry.push('role', req.role);
  return {
    entry,
    commandId,
    idempotencyKey: req.idempotencyKey ?? '',
    fingerprint: req.fingerprint ?? '',
    idempotencyTtlS: req.idempotencyTtlS ?? IDEMPOTENCY_TTL_S.default,
  };
}

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
    // GT: a dispatcher may have marked it until a pending timer's due time, later than now. By
    // Redis's clock, as the workers read it (redis-clock.ts), never this host's.
    marks.push(
      redisClockNow(redis).then((at) => redis.zadd(globalKeys.activeWorkspaces, 'GT', at, req.workspace)),
    );
  }
  // `soon`: the projector step that applies it appends it. Otherwise, without an Idempotency-Key
  // there is nothing to look up: one XADD, with the fields the append step writes (a Lua step
  // costs Redis several times what the XADD does).
  let appended: Promise<unknown[]>;
  if (soon) appended = soon(stepAppend(req, commandId));
  else if (idem === '') {
    const { entry } = stepAppend(req, commandId);
    appended = redis.xadd(keys.commands, '*', ...entry).then((position) => [position, commandId, 0, '', '']);
  } else {
    const { attributes, ...rest } = req.command as Command & { attributes?: unknown };
    appended = runLua(
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
        req.idempotencyTtlS ?? IDEMPOTENCY_TTL_S.default,
        req.requestId ?? '',
        attributes === undefined ? '' : JSON.stringify(attributes),
        req.keyId ?? '',
        req.role ?? '',
      ],
    ) as Promise<unknown[]>;
  }
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
    sameRequest:
      repeated !== 1 ||
      firstFingerprint === fingerprint ||
      (req.legacyFingerprint !== undefined && firstFingerprint === req.legacyFingerprint()),
    ...(outcome ? { outcome: JSON.parse(outcome) as CommandOutcome } : {}),
  };
}
