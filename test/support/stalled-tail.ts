/**
 * The harness of the suites that stall an API instance's live tail (SIGSTOP) while events are
 * appended and the archiver trims past it:
 *
 * - `stalledApiSuite`: the suite's Redis and one API process on it serving one workspace, its
 *   ARCHIVE_DIR a new temporary folder; after the suite the process is woken (SIGCONT), killed and
 *   the folder removed. `startArchivingApi` starts such a process on its own.
 * - `appendFields`: stored log fields (`logFields` of archive-log.ts) appended to an events stream.
 * - `streamPositions`: the positions a stream holds.
 * - `duringStall`: work done while the process is held still; `feedAcrossStall`, a live feed opened
 *   before such a stall.
 * - `openLiveFeed`: a live feed, open once its first heartbeat came, collecting the positions it
 *   is sent and how it closed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import WebSocket from 'ws';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { type WorkspaceKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from './processes.ts';
import { suiteRedis, type TestRedis } from './redis.ts';
import { sleep } from './wait.ts';

export interface StalledApiSuite {
  /** The suite's Redis (`suiteRedis`). */
  readonly suite: ReturnType<typeof suiteRedis>;
  /** The workspace the process serves: `<prefix>-<the time in base 36>`. */
  readonly ws: string;
  readonly k: WorkspaceKeys;
  /** The process's ARCHIVE_DIR (once the suite's beforeAll ran). */
  readonly dir: string;
  /** The API process (once the suite's beforeAll ran). */
  readonly api: SwitchboardProcess;
}

/**
 * An API process (`roles: 'api'`, named `api`) on `server` serving `ws` alone (no discovery),
 * archiving to `dir`; `env` adds to that environment.
 */
export function startArchivingApi(
  server: TestRedis,
  ws: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<SwitchboardProcess> {
  return startProcess({
    roles: 'api',
    redis: server,
    name: 'api',
    env: { WORKSPACES: ws, DISCOVER_WORKSPACES: 'false', ARCHIVE_DIR: dir, ...env },
  });
}

/**
 * The suite's Redis and, before its tests, one API process on it (`startArchivingApi`) archiving
 * to a new folder `<tmpdir>/sb-<prefix>-…`; after them the process is woken (SIGCONT), every process
 * killed and the folder removed. Call it in the body of a `describe`.
 */
export function stalledApiSuite(prefix: string, env: Record<string, string> = {}): StalledApiSuite {
  const suite = suiteRedis();
  const ws = `${prefix}-${Date.now().toString(36)}`;
  let dir: string | undefined;
  let api: SwitchboardProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), `sb-${prefix}-`));
    api = await startArchivingApi(suite.server, ws, dir, env);
  }, 60_000);

  afterAll(async () => {
    api?.kill('SIGCONT');
    await killAllProcesses();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  return {
    suite,
    ws,
    k: workspaceKeys(ws),
    get dir() {
      return dir!;
    },
    get api() {
      return api!;
    },
  };
}

/**
 * Appends `fields[from]` up to `fields[to - 1]` (taken round when past its end) to the stream
 * `key`, in transactions of 1000 at the most; the positions Redis gave them, in order.
 */
export async function appendFields(
  redis: RedisClient,
  key: string,
  fields: readonly StreamEntry[1][],
  from: number,
  to: number,
): Promise<string[]> {
  const positions: string[] = [];
  for (let start = from; start < to; start += 1000) {
    const m = redis.multi();
    for (let i = start; i < Math.min(to, start + 1000); i++) m.xadd(key, '*', ...fields[i % fields.length]!);
    for (const [err, id] of (await m.exec()) ?? []) {
      if (err) throw err;
      positions.push(String(id));
    }
  }
  return positions;
}

/** The positions the stream `key` holds, oldest first. */
export async function streamPositions(redis: RedisClient, key: string): Promise<string[]> {
  return ((await redis.xrange(key, '-', '+')) as StreamEntry[]).map((e) => e[0]);
}

/** Runs `work` while `api` is held still (SIGSTOP), and wakes it (SIGCONT) however `work` ends. */
export async function duringStall<T>(api: SwitchboardProcess, work: () => Promise<T>): Promise<T> {
  api.kill('SIGSTOP');
  try {
    return await work();
  } finally {
    api.kill('SIGCONT');
  }
}

/**
 * A live feed across a stall of `api`: the first 100 of `fields` appended to the events of `ws`, a
 * feed opened after the last of them (`beforeStall` given it), 200 ms for it to settle, then
 * `during` run while `api` is held still (`duringStall`), with an `append(from, to)` of `fields`
 * (`appendFields`). The feed, the position it opened after, and the stream's last once `api` goes on.
 */
export async function feedAcrossStall(
  redis: RedisClient,
  api: SwitchboardProcess,
  ws: string,
  fields: readonly StreamEntry[1][],
  during: (append: (from: number, to: number) => Promise<string[]>) => Promise<void>,
  beforeStall: (feed: LiveFeed) => void = () => {},
): Promise<{ feed: LiveFeed; after: string; last: string }> {
  const k = workspaceKeys(ws);
  const append = (from: number, to: number) => appendFields(redis, k.events, fields, from, to);
  await append(0, 100);
  const after = (await streamPositions(redis, k.events)).at(-1)!;
  const feed = await openLiveFeed(api.url!, ws, after);
  beforeStall(feed);
  await sleep(200);
  await duringStall(api, () => during(append));
  const last = (await streamPositions(redis, k.events)).at(-1)!;
  return { feed, after, last };
}

export interface LiveFeed {
  /** The feed's workspace. */
  readonly ws: string;
  readonly socket: WebSocket;
  /** Where it starts: its after=, or (from the end) the position its first heartbeat names. */
  readonly start: string;
  /** The positions of the events it was sent, in order (heartbeats left out). */
  readonly received: string[];
  /** The code of each close of the socket, by either side. */
  readonly closes: number[];
  /** The socket's close: its code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

/**
 * A live feed of `ws` at the instance `url` (http), after `after` (from the end when undefined);
 * resolves once its first heartbeat came, rejects on a socket error before.
 */
export async function openLiveFeed(url: string, ws: string, after?: string): Promise<LiveFeed> {
  const received: string[] = [];
  const closes: number[] = [];
  const socket = new WebSocket(
    `${url.replace('http', 'ws')}/v1/workspaces/${ws}/events/live${after ? `?after=${after}` : ''}`,
  );
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => {
      closes.push(code);
      resolve({ code, reason: String(reason) });
    }),
  );
  let start = after ?? '';
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('message', (data) => {
      const e = JSON.parse(String(data)) as { position?: string; heartbeat?: { after: string } };
      if ('heartbeat' in e) {
        if (start === '') start = e.heartbeat!.after;
        resolve();
      } else received.push(e.position!);
    });
  });
  return { ws, socket, start, received, closes, closed };
}
