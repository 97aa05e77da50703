import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Cluster, type Redis, ReplyError } from 'ioredis';
import { slotGuardOf } from './keys.ts';

/**
 * The one way to run Lua in Switchboard. A step is a file `<name>-<number of keys>.lua` (or
 * `<name>-any.lua` when the caller passes however many keys it declares) with shared fragments
 * pulled in by `--@include "name"` from lua/includes; whoever owns a step declares it next to its
 * file with `luaScript`, and this module only loads, includes and defines it. The command name
 * carries a hash of the full text, so two versions of Switchboard never run each other's scripts
 * and nobody bumps a version by hand.
 *
 * A step whose last line is `return step(KEYS, ARGV)` (its whole work in the function `step`, the
 * rest of the file only defining what `step` uses) also runs as a Redis Function: the library
 * (`FUNCTION LOAD`) defines its functions once, where a script (`EVALSHA`) defines them again on
 * every call, which for the projector's and the dispatcher's ~1,000 lines costs more than a step
 * with one command does. Such a file keeps every value of a call in `step` (or resets it there):
 * what the top level defines outlives the call. Each client loads the library once and runs the
 * step with `EVALSHA` until Redis has it, so no call waits and calls keep their order; where
 * Redis has no functions (before 7.0, or an ACL without `FUNCTION LOAD`) steps stay scripts.
 */
export type RedisClient = Redis | Cluster;

const includesDir = new URL('./lua/includes/', import.meta.url);

export function loadLua(file: URL): string {
  const seen = new Set<string>();
  const inline = (text: string): string =>
    text.replace(/^--@include "([a-z-]+)"$/gm, (_, name: string) => {
      if (seen.has(name)) return '';
      seen.add(name);
      return inline(readFileSync(new URL(`${name}.lua`, includesDir), 'utf8'));
    });
  return inline(readFileSync(file, 'utf8'));
}

export interface LuaScript {
  readonly file: URL;
  /** Keys the step declares, from its file name; 'any' when the caller says how many. */
  readonly keys: number | 'any';
  readonly lua: string;
  /** The client command it is defined as: `sb_<name>_<hash of the text>`. */
  readonly command: string;
  /**
   * The Redis Function library of a step written as one (`return step(KEYS, ARGV)` last), named
   * as the command, which is also its one function's name.
   */
  readonly library: string | undefined;
  /**
   * Whether the step also declares its workspace's slot guard (keys.ts, slotGuardOf): a step of
   * several keys that can empty one of them and touch it again, which a cluster moving the slot
   * would stop halfway. The others run as before while a slot moves (a one-key step is sent on to
   * the key's new node; a step that empties nothing is never stopped halfway).
   */
  readonly slotGuard: boolean;
}

/** The last line of a step that can run as a Redis Function. */
const STEP_CALL = /\nreturn step\(KEYS, ARGV\)\s*$/;

/** Every step declared so far, for the tests that check what each declares. */
export const declaredScripts: LuaScript[] = [];

/**
 * The Redis Function library of a step's text (includes inlined) under `command`, or undefined
 * when the step is not written as one. The bench's `twin` loads another version of a step this way.
 */
export function libraryOf(lua: string, command: string): string | undefined {
  return STEP_CALL.test(lua)
    ? `#!lua name=${command}\n${lua.replace(STEP_CALL, `\nredis.register_function('${command}', step)\n`)}`
    : undefined;
}

export function luaScript(name: string, file: URL, opts: { readonly slotGuard?: boolean } = {}): LuaScript {
  const m = /-(\d+|any)\.lua$/.exec(file.pathname);
  if (!m?.[1])
    throw new Error(
      `Lua file ${file.pathname} must be named <name>-<number of keys>.lua (or <name>-any.lua); rename it`,
    );
  const lua = loadLua(file);
  const hash = createHash('sha1').update(lua).digest('hex').slice(0, 12);
  const command = `sb_${name}_${hash}`;
  const script: LuaScript = {
    file,
    keys: m[1] === 'any' ? 'any' : Number(m[1]),
    lua,
    command,
    library: libraryOf(lua, command),
    slotGuard: opts.slotGuard === true && m[1] !== 'any',
  };
  declaredScripts.push(script);
  return script;
}

const defined = new WeakMap<object, Set<string>>();

function define(redis: RedisClient, s: LuaScript): void {
  let known = defined.get(redis);
  if (!known) {
    known = new Set();
    defined.set(redis, known);
  }
  if (known.has(s.command)) return;
  // The caller gives the number of keys: a guarded step declares one more, its workspace's slot
  // guard (keys.ts, slotGuardOf).
  redis.defineCommand(s.command, { lua: s.lua });
  known.add(s.command);
}

/** Defines every step declared so far on a new client, before its first command. */
export function defineDeclared(redis: RedisClient): void {
  for (const s of declaredScripts) define(redis, s);
}

/**
 * Runs a step, in the calling tick, so calls issued in order reach Redis in order: as FCALL once
 * its library is loaded on this client, else as a script (ioredis sends EVALSHA and falls back to
 * EVAL). The one exception to the order: a FCALL that finds no function is sent again as a
 * script when its error is back (it ran nothing; every step is safe to run late).
 */
export function runLua(
  redis: RedisClient,
  s: LuaScript,
  given: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  define(redis, s);
  if (s.keys !== 'any' && given.length !== s.keys)
    return Promise.reject(new Error(`${s.file.pathname} takes ${s.keys} keys, got ${given.length}`));
  // A guarded step of one workspace's keys also declares the workspace's slot guard (last, so
  // KEYS[1..n] stay as its file names them): refused whole while a cluster moves the slot.
  const guard = s.slotGuard ? slotGuardOf(given) : undefined;
  const keys = guard === undefined ? given : [...given, guard];
  if (s.library !== undefined && s.keys !== 'any' && functionLoaded(redis, s))
    return redis.fcall(s.command, keys.length, ...keys, ...args).catch((err: Error) => {
      // Not there (a Redis restarted without its data, a master added since): this call ran
      // nothing, so it runs as a script, and the library is loaded again for the next ones.
      if (!/Function not found/i.test(err.message)) throw err;
      forgetLibrary(redis, s);
      return runScript(redis, s, keys, args);
    });
  return runScript(redis, s, keys, args);
}

function runScript(
  redis: RedisClient,
  s: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[s.command];
  if (!fn) return Promise.reject(new Error(`script ${s.command} is not defined on this client`));
  return fn.call(redis, keys.length, ...keys, ...args);
}

/**
 * Per client: each library's state: loading (its promise), loaded, not to be tried again, or
 * refused and to be tried again once `retryAt` (ms since the epoch) has passed.
 */
type LibraryState = Promise<void> | 'loaded' | 'unavailable' | { readonly retryAt: number };

/**
 * How long a library Redis refused (an error it answered, not a lost connection) waits before it
 * is sent again: a server that refuses in words of its own (a managed Redis, a library it will not
 * take) would otherwise be sent the whole library with every step. Steps run as scripts meanwhile.
 */
export const LIBRARY_RETRY_MS = 60_000;
const libraries = new WeakMap<object, Map<string, LibraryState>>();

let functionsWanted = true;

/** Whether steps written as functions run as ones (LUA_FUNCTIONS); off, every step is a script. */
export function useLuaFunctions(on: boolean): void {
  functionsWanted = on;
}

/**
 * Whether `s` runs as a function on this client now; the first time, its library starts loading
 * (on every master of a cluster) and the step runs as a script meanwhile.
 */
function functionLoaded(redis: RedisClient, s: LuaScript): boolean {
  if (!functionsWanted) return false;
  let known = libraries.get(redis);
  if (!known) {
    known = new Map();
    libraries.set(redis, known);
  }
  let state = known.get(s.command);
  if (state === 'loaded') return true;
  if (typeof state === 'object' && 'retryAt' in state && Date.now() >= state.retryAt) state = undefined;
  if (state === undefined) {
    const loading = loadLibrary(redis, s).then(
      () => {
        if (known.get(s.command) === loading) known.set(s.command, 'loaded');
      },
      (err: Error) => {
        if (known.get(s.command) !== loading) return;
        // No FUNCTION command (Redis before 7.0) or not allowed to load (the ACL): scripts only.
        // Any other answer of Redis (refused in other words) is tried again after a pause; no
        // answer at all (a connection lost meanwhile) is tried again by the next call.
        if (/unknown command|NOPERM|no permissions/i.test(err.message)) known.set(s.command, 'unavailable');
        else if (err instanceof ReplyError) known.set(s.command, { retryAt: Date.now() + LIBRARY_RETRY_MS });
        else known.delete(s.command);
      },
    );
    known.set(s.command, loading);
  }
  return false;
}

function forgetLibrary(redis: RedisClient, s: LuaScript): void {
  const known = libraries.get(redis);
  if (known?.get(s.command) === 'loaded') known.delete(s.command);
}

/** Loads `s`'s library where its steps run: the one Redis, or every master of a cluster. */
async function loadLibrary(redis: RedisClient, s: LuaScript): Promise<void> {
  const nodes: Redis[] = redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
  if (nodes.length === 0) throw new Error('no master to load the library on yet');
  // REPLACE: several processes load the same library (the same text under the same name).
  await Promise.all(nodes.map((n) => n.call('FUNCTION', 'LOAD', 'REPLACE', s.library!)));
}
