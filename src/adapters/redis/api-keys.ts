import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ID_RULE, isId, isNameText, NAME_TEXT_RULE } from '../../domain/values.ts';
import { API_KEY_INDEX, workspaceKeys } from './keys.ts';
import { luaScript, type RedisClient, runLua } from './scripts.ts';

/**
 * API keys: one per caller, bound to a workspace and a role (docs/SECURITY.md, "API keys and
 * roles"). A key is `sb_<keyId>_<secret>`: the key id is public (it goes into every event's meta),
 * the secret is 32 random bytes, shown once when the key is made and stored only as its SHA-256
 * (a high-entropy secret needs no slow hash: nobody can guess one from its digest). Records live in
 * the workspace's hash `sb:{ws}:keys`, under its hash tag; `sb:api-keys` maps each key id to its
 * workspace, so a key used in another workspace is refused as such (403), not as unknown (401).
 */
export const API_KEY_ROLES = ['admin', 'integration', 'supervisor', 'auditor', 'agent'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

/** What a key's record says, as listed (never the secret nor its digest). */
export interface ApiKeyInfo {
  readonly keyId: string;
  readonly workspace: string;
  readonly role: ApiKeyRole;
  /** For the `agent` role: the agent the key acts for. */
  readonly agentId?: string;
  readonly name?: string;
  readonly createdAt: string;
  /** Set once the key is revoked: it authenticates nothing from then on. */
  readonly revokedAt?: string;
}

interface ApiKeyRecord extends ApiKeyInfo {
  /** base64url of SHA-256 of the secret. */
  readonly hash: string;
}

export interface NewApiKey {
  readonly workspace: string;
  readonly role: ApiKeyRole;
  readonly agentId?: string;
  readonly name?: string;
}

export class ApiKeyInputError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path} ${message}`);
  }
}

const WORKSPACE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const KEY_PATTERN = /^sb_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** A stored digest: SHA-256 in base64url, 43 characters (`digest`). */
const HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/;
export const MAX_KEY_NAME = 200;

/**
 * A key's name is one line (src/domain/values.ts, `isNameText`): no control characters (C0, DEL,
 * C1: line breaks, tabs, terminal escapes), line or paragraph separators, nor bidirectional
 * controls (U+202E and its kin, which make a listed name read otherwise than it is).
 */
export const KEY_NAME_RULE = NAME_TEXT_RULE;

/** Whether a key's name is free of control characters, line breaks and bidi controls (its length is checked apart). */
export function isKeyNameText(name: string): boolean {
  return isNameText(name);
}

/** What is wrong with a key's name (as `name ...` goes on), or undefined: the rule every way a key is made shares. */
export function keyNameProblem(name: unknown): string | undefined {
  // Characters as the API's names count them (code points): a character outside the BMP is
  // two UTF-16 units, and the name the route accepted must not be refused here.
  if (typeof name !== 'string' || name.length === 0 || [...name].length > MAX_KEY_NAME)
    return `must be a string of 1..${MAX_KEY_NAME} characters`;
  return isNameText(name) ? undefined : NAME_TEXT_RULE;
}

const digest = (secret: string): string => createHash('sha256').update(secret).digest('base64url');

/** Checks a new key's fields; throws an ApiKeyInputError naming the first bad one. */
export function checkNewApiKey(k: NewApiKey): void {
  if (typeof k.workspace !== 'string' || !WORKSPACE_PATTERN.test(k.workspace))
    throw new ApiKeyInputError('workspace', 'must be 1..64 characters of [A-Za-z0-9_-]');
  if (!(API_KEY_ROLES as readonly string[]).includes(k.role))
    throw new ApiKeyInputError('role', `must be one of ${API_KEY_ROLES.join(', ')}`);
  if (k.role === 'agent') {
    if (!isId(k.agentId))
      throw new ApiKeyInputError('agentId', `must be the agent id (${ID_RULE}) for role agent`);
  } else if (k.agentId !== undefined) {
    throw new ApiKeyInputError('agentId', 'is only for role agent');
  }
  const nameProblem = k.name === undefined ? undefined : keyNameProblem(k.name);
  if (nameProblem !== undefined) throw new ApiKeyInputError('name', nameProblem);
}

/**
 * Makes a key and stores its record; the returned `key` is the only time the secret exists
 * outside the caller's hands: show it once.
 */
export async function createApiKey(
  redis: RedisClient,
  input: NewApiKey,
): Promise<{ readonly key: string; readonly info: ApiKeyInfo }> {
  checkNewApiKey(input);
  const keyId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const info: ApiKeyInfo = {
    keyId,
    workspace: input.workspace,
    role: input.role,
    ...(input.role === 'agent' ? { agentId: input.agentId! } : {}),
    ...(input.name !== undefined ? { name: input.name } : {}),
    createdAt: new Date().toISOString(),
  };
  const record: ApiKeyRecord = { ...info, hash: digest(secret) };
  // The record first: an index entry always names a workspace that holds the record. The two are
  // in different slots of a cluster, so no MULTI holds both: when the index entry is refused, the
  // record is taken back, or it would be listed as a key that never authenticates.
  const records = workspaceKeys(input.workspace).apiKeys;
  await redis.hset(records, keyId, JSON.stringify(record));
  try {
    await redis.hset(API_KEY_INDEX, keyId, input.workspace);
  } catch (err) {
    await redis.hdel(records, keyId).catch(() => {});
    throw err;
  }
  return { key: `sb_${keyId}_${secret}`, info };
}

const infoOf = ({ hash: _hash, ...info }: ApiKeyRecord): ApiKeyInfo => info;

/**
 * The workspace's keys (revoked ones too), oldest first; never a secret or a digest. A record that
 * is no key's (damaged, or written by hand: `recordProblem`) is left out, as it is by every reader
 * of one key: `npm run keys -- list` names it (`readApiKeys`).
 */
export async function listApiKeys(redis: RedisClient, workspace: string): Promise<ApiKeyInfo[]> {
  return (await readApiKeys(redis, workspace)).keys;
}

/** A stored key record, or undefined when it is none (`recordProblem`): read as no such key. */
function soundRecord(text: string | null): ApiKeyRecord | undefined {
  return text === null || recordProblem(text) !== undefined ? undefined : (JSON.parse(text) as ApiKeyRecord);
}

/** A record of the workspace's keys hash that is not a key's record (damaged, or written by hand). */
export interface DamagedApiKey {
  readonly keyId: string;
  /** What is wrong with it, as "its record ..." goes on. */
  readonly problem: string;
}

/** What is wrong with a stored key record, or undefined when it reads as one. */
function recordProblem(text: string): string | undefined {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (err) {
    return `is not JSON (${(err as Error).message})`;
  }
  const r = record as Partial<Record<keyof ApiKeyRecord, unknown>> | null;
  const sound =
    typeof r === 'object' &&
    r !== null &&
    !Array.isArray(r) &&
    typeof r.keyId === 'string' &&
    typeof r.workspace === 'string' &&
    typeof r.hash === 'string' &&
    typeof r.createdAt === 'string' &&
    (API_KEY_ROLES as readonly unknown[]).includes(r.role);
  if (!sound) return "is not a key's record (no keyId, workspace, role, hash and createdAt)";
  // A digest of another length (a hand-written "hash":"é") made the comparison of a request
  // presenting the key throw (timingSafeEqual's buffers of different lengths): a 500, not a 401.
  return HASH_PATTERN.test(r.hash as string)
    ? undefined
    : "is not a key's record (its hash is not a SHA-256 in base64url, 43 characters of [A-Za-z0-9_-])";
}

/**
 * The workspace's keys as `listApiKeys` lists them, and apart from them the records that cannot be
 * read as keys (by their key id), instead of failing on the first: for `npm run keys -- list`.
 */
export async function readApiKeys(
  redis: RedisClient,
  workspace: string,
): Promise<{ readonly keys: ApiKeyInfo[]; readonly damaged: DamagedApiKey[] }> {
  const all = await redis.hgetall(workspaceKeys(workspace).apiKeys);
  const keys: ApiKeyInfo[] = [];
  const damaged: DamagedApiKey[] = [];
  for (const [keyId, text] of Object.entries(all)) {
    const problem = recordProblem(text);
    if (problem === undefined) keys.push(infoOf(JSON.parse(text) as ApiKeyRecord));
    else damaged.push({ keyId, problem });
  }
  keys.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId));
  damaged.sort((a, b) => a.keyId.localeCompare(b.keyId));
  return { keys, damaged };
}

/** One key of the workspace as `listApiKeys` shows it (never a secret); undefined when it has no such key. */
export async function getApiKey(
  redis: RedisClient,
  workspace: string,
  keyId: string,
): Promise<ApiKeyInfo | undefined> {
  const record = soundRecord(await redis.hget(workspaceKeys(workspace).apiKeys, keyId));
  return record && infoOf(record);
}

const REVOKE = luaScript('revokeKey', new URL('./lua/revoke-key-1.lua', import.meta.url));

/**
 * Revokes a key of the workspace: its record stays (the audit log names its id) with `revokedAt`.
 * Undefined when the workspace has no such key. Revoking twice keeps the first time: the record is
 * written only if it is still the one read (revoke-key-1.lua), so of two revocations at the same
 * moment (two instances, the CLI) one writes, and the others answer the time it wrote.
 */
export async function revokeApiKey(
  redis: RedisClient,
  workspace: string,
  keyId: string,
): Promise<ApiKeyInfo | undefined> {
  const hash = workspaceKeys(workspace).apiKeys;
  let text = await redis.hget(hash, keyId);
  for (;;) {
    const record = soundRecord(text);
    if (!record || text === null) return undefined;
    if (record.revokedAt) return infoOf(record);
    const revoked = JSON.stringify({ ...record, revokedAt: new Date().toISOString() });
    const stored = (await runLua(redis, REVOKE, [hash], [keyId, text, revoked])) as string | null;
    if (stored === revoked) return infoOf(JSON.parse(revoked) as ApiKeyRecord);
    // Changed since it was read (revoked meanwhile, as a rule): the stored record decides.
    text = stored;
  }
}

/** The key id and secret of a presented key, or undefined when it is not shaped like one. */
export function parseApiKey(key: string): { keyId: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(key);
  return m ? { keyId: m[1]!, secret: m[2]! } : undefined;
}

/** Who a key is (for a request in `workspace`), or why it is refused. */
export type KeyCheck =
  | { readonly ok: true; readonly key: ApiKeyInfo }
  /** 401: not a key, unknown, wrong secret or revoked; `advice`: what to do, when not to send a key. */
  | { readonly ok: false; readonly status: 401; readonly reason: string; readonly advice?: string }
  /** 403: a valid key of another workspace. */
  | { readonly ok: false; readonly status: 403; readonly reason: string };

/**
 * Checks presented keys against Redis. Lookups are cached per key id for at most `cacheMs`
 * (default 500 ms), so a revocation takes effect on every instance within that long (plus one
 * Redis round trip); 0 disables the cache. The secret is compared in constant time.
 */
export class ApiKeyVerifier {
  private readonly cache = new Map<string, { at: number; record: Promise<ApiKeyRecord | null> }>();

  constructor(
    private readonly redis: RedisClient,
    private readonly cacheMs = 500,
    private readonly maxCached = 10_000,
  ) {}

  private record(keyId: string): Promise<ApiKeyRecord | null> {
    // An entry's age by the monotonic clock: by Date.now(), a host clock stepped back a minute kept
    // every cached key (a revoked one too) for that minute (test/routing/clocks-edges-2.test.ts).
    const now = performance.now();
    const hit = this.cache.get(keyId);
    if (hit && now - hit.at < this.cacheMs) return hit.record;
    const record = this.fetch(keyId);
    if (this.cacheMs > 0) {
      if (this.cache.size >= this.maxCached) this.cache.clear();
      const entry = { at: now, record };
      this.cache.set(keyId, entry);
      // A failed read is not remembered, nor an id that names no key: made-up ids (a flood of
      // them) would fill the cache and empty it of the real keys each time it is full.
      const forget = () => {
        if (this.cache.get(keyId) === entry) this.cache.delete(keyId);
      };
      record.then((r) => r === null && forget(), forget);
    }
    return record;
  }

  private async fetch(keyId: string): Promise<ApiKeyRecord | null> {
    const workspace = await this.redis.hget(API_KEY_INDEX, keyId);
    if (workspace === null) return null;
    // A damaged record is no key: a request presenting it is refused as with an unknown key.
    return soundRecord(await this.redis.hget(workspaceKeys(workspace).apiKeys, keyId)) ?? null;
  }

  async check(presented: string, workspace: string): Promise<KeyCheck> {
    const parsed = parseApiKey(presented);
    if (!parsed)
      return {
        ok: false,
        status: 401,
        reason: 'The bearer token is not a Switchboard API key (sb_<id>_<secret>).',
      };
    const record = await this.record(parsed.keyId);
    const given = Buffer.from(digest(parsed.secret));
    // A sound record's hash is 43 ASCII characters (`recordProblem`), as long as `given`.
    if (!record || !timingSafeEqual(given, Buffer.from(record.hash)))
      return {
        ok: false,
        status: 401,
        reason: 'The API key is not known.',
        advice:
          'Check it against the key as it was made (sb_<id>_<secret>, shown once), or ask an admin of the workspace for a new key.',
      };
    // The holder sent the key: what helps is another one, and who makes it.
    if (record.revokedAt)
      return {
        ok: false,
        status: 401,
        reason: `The API key was revoked at ${record.revokedAt}.`,
        advice: `It opens nothing any more: use a new key, which an admin of the workspace makes (POST /v1/workspaces/${record.workspace}/keys, or npm run keys -- create).`,
      };
    if (record.workspace !== workspace)
      return {
        ok: false,
        status: 403,
        reason: `The API key belongs to another workspace; it can do nothing in workspace "${workspace}": use a key of workspace "${workspace}".`,
      };
    return { ok: true, key: infoOf(record) };
  }

  /** The key's current record by id (cached as `check`): for a WebSocket ticket's key. */
  async active(keyId: string): Promise<ApiKeyInfo | undefined> {
    const record = await this.record(keyId);
    return record && !record.revokedAt ? infoOf(record) : undefined;
  }
}

/** Who a WebSocket ticket was issued to: the key's id, role and agent, in one workspace. */
export interface TicketHolder {
  readonly keyId: string;
  readonly workspace: string;
  readonly role: ApiKeyRole;
  readonly agentId?: string;
}

export const WS_TICKET_TTL_MS = 30_000;
const TICKET_PATTERN = /^wst_[A-Za-z0-9_-]{43}$/;

/**
 * A one-time ticket for the live feed, for clients that cannot set a header on a WebSocket
 * (browsers): stored as its SHA-256 with an expiry, consumed atomically (GETDEL) by the upgrade.
 */
export async function issueWsTicket(
  redis: RedisClient,
  holder: TicketHolder,
  ttlMs = WS_TICKET_TTL_MS,
): Promise<{ readonly ticket: string; readonly expiresAt: string }> {
  const ticket = `wst_${randomBytes(32).toString('base64url')}`;
  const value: TicketHolder = {
    keyId: holder.keyId,
    workspace: holder.workspace,
    role: holder.role,
    ...(holder.agentId !== undefined ? { agentId: holder.agentId } : {}),
  };
  await redis.set(
    `${workspaceKeys(holder.workspace).wsTicketPrefix}${digest(ticket)}`,
    JSON.stringify(value),
    'PX',
    ttlMs,
  );
  return { ticket, expiresAt: new Date(Date.now() + ttlMs).toISOString() };
}

/** The ticket's holder, once: a second use, an expired or an unknown ticket gives undefined. */
export async function consumeWsTicket(
  redis: RedisClient,
  workspace: string,
  ticket: string,
): Promise<TicketHolder | undefined> {
  if (!TICKET_PATTERN.test(ticket)) return undefined;
  const text = await redis.getdel(`${workspaceKeys(workspace).wsTicketPrefix}${digest(ticket)}`);
  if (text === null) return undefined;
  const holder = JSON.parse(text) as TicketHolder;
  return holder.workspace === workspace ? holder : undefined;
}
