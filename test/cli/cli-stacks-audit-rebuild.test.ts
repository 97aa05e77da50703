/**
 * `audit` and `rebuild` whose Redis goes away in the middle of their work (redis-server killed
 * with SIGKILL, as a crash or an OOM kill does, once the tool is reading the log or copying it
 * into its shadow) end as `keys` does (cli-stacks-edges.test.ts): exit 3, their documented "could
 * not run", and one plain line naming what to check, never ioredis's stack trace nor its "Please
 * report this". Their command timeout is 60 s; a server killed fails them within a second or two
 * (the client's reconnections refused, its `maxRetriesPerRequest` spent), and that is asserted too.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { shadowOf } from '../../src/cli/rebuild/rebuild.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import type { RedisServerHandle } from '../../src/topology/redis-server.ts';
import { loginUrl } from '../../src/topology/redis-users.ts';
import { type CliTool, cliEntry } from '../support/main-build.ts';
import { startLocalRedisServer } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Enough commands that the tool is still reading (or copying) them when its Redis is killed. */
const COMMANDS = 6000;

interface Server {
  readonly handle: RedisServerHandle;
  readonly url: string;
  readonly redis: RedisClient;
}

/** A redis-server of this case's own (it is killed), with the Switchboard ACL user. */
async function ownServer(): Promise<Server> {
  const { server: handle, credentials } = await startLocalRedisServer();
  const url = loginUrl(credentials.app, handle.host, handle.port);
  return { handle, url, redis: connectRedis({ url }) };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.redis.disconnect();
    await s.handle.stop();
  }
});

/** Agent a registered, then `changes` changes of its state, all projected. */
async function agentLog(redis: RedisClient, ws: string, changes: number): Promise<void> {
  await ensureGroup(redis, ws);
  await appendCommand(redis, {
    workspace: ws,
    command: { type: 'RegisterAgent', agentId: 'a', skills: ['A'], capacity: 1 },
  });
  await Promise.all(
    Array.from({ length: changes }, (_, i) => {
      const command: Command = {
        type: 'ChangeAgentState',
        agentId: 'a',
        state: i % 2 ? 'away' : 'available',
      };
      return appendCommand(redis, { workspace: ws, command });
    }),
  );
  await projectPending(redis, ws);
}

/** Calls of `command` the server has answered so far. */
const calls = async (redis: RedisClient, command: string): Promise<number> =>
  Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await redis.info('commandstats'))?.[1] ?? 0);

/**
 * `tool` run as a user runs it against `server`, whose redis-server is killed (SIGKILL) once
 * `under` says the tool's work is under way. Its exit code, its stderr, and how long it took to
 * exit after the kill.
 */
async function killedUnder(
  tool: CliTool,
  server: Server,
  args: readonly string[],
  what: string,
  under: () => Promise<boolean>,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; afterKillMs: number }> {
  const child = spawn(process.execPath, [...cliEntry(tool), ...args, '--redis-url', server.url], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    }),
  );
  try {
    await waitFor(
      what,
      async () => {
        if (!running) throw new Error(`${tool} exited before ${what}: ${stderr}`);
        return under();
      },
      { timeoutMs: 8_000, everyMs: 10 },
    );
    const killed = performance.now();
    server.handle.kill('SIGKILL');
    // A hang (the 60 s command timeout, or a retry without end) is cut short and fails below.
    const bound = setTimeout(() => child.kill('SIGKILL'), 8_000);
    const { code, signal } = await exited;
    clearTimeout(bound);
    return { code, signal, stderr, afterKillMs: performance.now() - killed };
  } finally {
    if (running) child.kill('SIGKILL');
  }
}

/** The one line a tool prints for a Redis lost mid-run: what happened and what to check. */
function expectPlainLostRedis(stderr: string, prefix: string): void {
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr).not.toContain('Please report this');
  expect(stderr.split('\n')).toHaveLength(2); // one line, and its newline
  expect(stderr).toMatch(
    new RegExp(
      `^${prefix} lost the connection to Redis \\([^\\n]+\\): check that Redis is still running and reachable, then run again\\n$`,
    ),
  );
}

describe('audit and rebuild whose Redis is killed mid-run', () => {
  it('audit, killed while it reads the log: exit 3, one line naming what to check, no stack', async () => {
    const server = await ownServer();
    servers.push(server);
    const ws = 'stacks-audit';
    await agentLog(server.redis, ws, COMMANDS);
    const before = await calls(server.redis, 'xrange');
    const run = await killedUnder(
      'audit',
      server,
      // Small pages: the log is read in many round trips, so the kill lands among them.
      ['--workspace', ws, '--page-size', '20'],
      'the audit to read the log',
      async () => (await calls(server.redis, 'xrange')) > before + 2,
    );
    expect({ code: run.code, signal: run.signal }, run.stderr).toEqual({ code: 3, signal: null });
    expectPlainLostRedis(run.stderr, 'audit: the audit could not run:');
    expect(run.afterKillMs).toBeLessThan(5_000);
  }, 20_000);

  it('rebuild, killed while it copies the log into its shadow: exit 3, one line naming what to check, no stack', async () => {
    const server = await ownServer();
    servers.push(server);
    const ws = 'stacks-rebuild';
    await agentLog(server.redis, ws, COMMANDS);
    const shadow = workspaceKeys(shadowOf(ws));
    const run = await killedUnder(
      'rebuild',
      server,
      ['--workspace', ws],
      'the copy into the shadow',
      async () => (await server.redis.xlen(shadow.commands)) > 0,
    );
    expect({ code: run.code, signal: run.signal }, run.stderr).toEqual({ code: 3, signal: null });
    expectPlainLostRedis(run.stderr, 'rebuild: the rebuild could not run:');
    expect(run.afterKillMs).toBeLessThan(5_000);
  }, 20_000);
});
