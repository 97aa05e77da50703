/**
 * Switchboard in-process with API keys on (AUTH=on), and keys of each role made straight in Redis
 * (src/adapters/redis/api-keys.ts), for the suites of test/security.
 */
import { pino } from 'pino';
import { type ApiKeyRole, createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { runCli } from '../cli/run-cli.ts';
import type { TestRedis } from '../support/redis.ts';

export const silent = pino({ level: 'silent' });

/** Switchboard with keys on; `more` is extra environment (ROLES: 'api' for a second API instance). */
export function startSecured(redis: TestRedis, more: Record<string, string> = {}): Promise<Running> {
  return startSwitchboard(
    loadConfig({ ...redis.env, AUTH: 'on', PORT: '0', LOG_LEVEL: 'silent', ...more }),
    silent,
  );
}

export async function keyOf(
  redis: RedisClient,
  workspace: string,
  role: ApiKeyRole,
  agentId?: string,
): Promise<{ key: string; keyId: string }> {
  const { key, info } = await createApiKey(redis, {
    workspace,
    role,
    ...(agentId !== undefined ? { agentId } : {}),
  });
  return { key, keyId: info.keyId };
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** The number of entries of the workspace's command and event streams: a refusal changes neither. */
export async function streamLengths(redis: RedisClient, workspace: string): Promise<[number, number]> {
  const k = workspaceKeys(workspace);
  return [await redis.xlen(k.commands), await redis.xlen(k.events)];
}

/** `npm run keys -- <args>` with the test Redis in the environment, as REDIS_URL or REDIS_CLUSTER_NODES. */
export function keysCli(redis: TestRedis) {
  return (...args: string[]) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...redis.env };
    delete env.VITEST;
    return runCli('keys', args, env);
  };
}
