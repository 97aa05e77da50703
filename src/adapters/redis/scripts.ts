import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/**
 * The one way to run Lua in Switchboard. A step is a file `<name>-<number of keys>.lua` (or
 * `<name>-any.lua` when the caller passes however many keys it declares) with shared fragments
 * pulled in by `--@include "name"` from lua/includes; whoever owns a step declares it next to its
 * file with `luaScript`, and this module only loads, includes and defines it. The command name
 * carries a hash of the full text, so two versions of Switchboard never run each other's scripts
 * and nobody bumps a version by hand.
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
}

/** Every step declared so far, for the tests that check what each declares. */
export const declaredScripts: LuaScript[] = [];

export function luaScript(name: string, file: URL): LuaScript {
  const m = /-(\d+|any)\.lua$/.exec(file.pathname);
  if (!m?.[1])
    throw new Error(
      `Lua file ${file.pathname} must be named <name>-<number of keys>.lua (or <name>-any.lua); rename it`,
    );
  const lua = loadLua(file);
  const hash = createHash('sha1').update(lua).digest('hex').slice(0, 12);
  const script: LuaScript = {
    file,
    keys: m[1] === 'any' ? 'any' : Number(m[1]),
    lua,
    command: `sb_${name}_${hash}`,
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
  redis.defineCommand(s.command, s.keys === 'any' ? { lua: s.lua } : { numberOfKeys: s.keys, lua: s.lua });
  // Auto-pipelining groups a command by its first argument, which for a step taking any number of
  // keys is that number: on a cluster it could share a pipeline with another node's commands
  // ("All keys in the pipeline should belong to the same slots allocation group"). Sent alone.
  const ignored = (redis.options as { autoPipeliningIgnoredCommands?: string[] })
    .autoPipeliningIgnoredCommands;
  if (s.keys === 'any' && ignored && !ignored.includes(s.command)) ignored.push(s.command);
  known.add(s.command);
}

/**
 * Defines every step declared so far on a new client, before its first command: an auto-pipeline
 * made earlier in a tick would not know a command defined later in that tick.
 */
export function defineDeclared(redis: RedisClient): void {
  for (const s of declaredScripts) define(redis, s);
}

/**
 * Runs a step (ioredis sends EVALSHA and falls back to EVAL), in the calling tick, so calls issued
 * in order reach Redis in order.
 */
export function runLua(
  redis: RedisClient,
  s: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  define(redis, s);
  if (s.keys !== 'any' && keys.length !== s.keys)
    return Promise.reject(new Error(`${s.file.pathname} takes ${s.keys} keys, got ${keys.length}`));
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[s.command];
  if (!fn) return Promise.reject(new Error(`script ${s.command} is not defined on this client`));
  return s.keys === 'any' ? fn.call(redis, keys.length, ...keys, ...args) : fn.call(redis, ...keys, ...args);
}
