import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/**
 * Lua steps as files (`<name>-<number of keys>.lua`), with shared fragments pulled in by
 * `--@include "name"` from lua/includes. They are registered with `defineCommand` under a
 * versioned name, so two versions of Switchboard never run each other's scripts.
 */
export const SCRIPT_VERSION = 3;

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

interface ScriptFile {
  readonly method: string;
  readonly file: URL;
  readonly keys: number;
}

function script(method: string, file: URL): ScriptFile {
  const m = /-(\d+)\.lua$/.exec(file.pathname);
  if (!m) throw new Error(`Lua file ${file.pathname} must be named <name>-<number of keys>.lua`);
  return { method: `sb${SCRIPT_VERSION}_${method}`, file, keys: Number(m[1]) };
}

export const SCRIPTS = {
  appendCommand: script('appendCommand', new URL('./lua/append-command-3.lua', import.meta.url)),
  project: script('project', new URL('../../projections/lua/project-17.lua', import.meta.url)),
  dispatch: script('dispatch', new URL('../../dispatcher/lua/dispatch-12.lua', import.meta.url)),
} as const;

export type ScriptName = keyof typeof SCRIPTS;
export type RedisClient = Redis | Cluster;

const defined = new WeakSet<object>();

/** Registers every script on a client once; ioredis then runs them by EVALSHA with a fallback to EVAL. */
export function defineScripts(redis: RedisClient): void {
  if (defined.has(redis)) return;
  for (const s of Object.values(SCRIPTS)) {
    redis.defineCommand(s.method, { numberOfKeys: s.keys, lua: loadLua(s.file) });
  }
  defined.add(redis);
}

/** Runs one registered script. */
export async function runScript(
  redis: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  defineScripts(redis);
  const s = SCRIPTS[name];
  if (keys.length !== s.keys) throw new Error(`${name} takes ${s.keys} keys, got ${keys.length}`);
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[s.method];
  if (!fn) throw new Error(`script ${s.method} is not defined on this client`);
  return fn.call(redis, ...keys, ...args);
}
