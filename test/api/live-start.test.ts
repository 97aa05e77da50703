/**
 * Where a live feed opened without `after` starts: after the last event in the stream when it
 * opened, even while the instance's tail has not read that far; and the feed names that position
 * in a heartbeat as it opens, so the typed client resumes from it when the path drops before any
 * event came. The tail reads the stream on a connection of its own, so it can be behind the
 * commands this instance has answered: its connection may still be connecting (a new tail on a
 * Redis Cluster under load), or Redis 7.0 may have answered its blocked XREAD with the outcome
 * stream alone, the events coming on the next read. Shown here with a TCP relay in front of Redis that holds the connections made while it is
 * told to: the new tail's connection waits, the commands (on connections made before) are answered.
 * The same relay in front of the instance drops the client's path and holds its next connection.
 * Single Redis only (vitest.config.ts): a cluster client learns the nodes' own addresses and would
 * go around a relay.
 */
import net from 'node:net';
import { pino } from 'pino';
import { type EventEnvelope, SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'live-start-a';
const WS_QUIET = 'live-start-b';
/** The default interval: a heartbeat that comes before it is the one a feed sends as it opens. */
const HEARTBEAT_MS = 10_000;

interface HoldingRelay {
  readonly port: number;
  /** Connections made from now on wait (what their client sends is kept) until `release`. */
  hold(): void;
  release(): void;
  /** Connections that waited at some time. */
  readonly held: number;
  /** Drops every connection open now (a path that fails). */
  cut(): void;
  close(): Promise<void>;
}

/** A TCP relay on loopback to `target` that can hold new connections before they reach it. */
async function holdingRelay(target: number): Promise<HoldingRelay> {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<net.Socket>();
  let holding = false;
  let held = 0;
  let waiting: (() => void)[] = [];
  const server = net.createServer((a) => {
    sockets.add(a);
    a.on('error', () => {});
    const pending: Buffer[] = [];
    const keep = (d: Buffer) => pending.push(d);
    a.on('data', keep);
    const connect = () => {
      const b = net.connect(target, '127.0.0.1');
      sockets.add(b);
      b.on('error', () => {});
      a.off('data', keep);
      for (const d of pending) b.write(d);
      a.on('data', (d) => b.write(d));
      b.on('data', (d) => a.write(d));
      a.on('close', () => b.destroy());
      b.on('close', () => a.destroy());
      pairs.add(a);
      a.on('close', () => pairs.delete(a));
    };
    if (holding) {
      held++;
      waiting.push(connect);
    } else connect();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      const go = waiting;
      waiting = [];
      for (const connect of go) connect();
    },
    get held() {
      return held;
    },
    cut: () => {
      for (const a of pairs) a.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a live feed opened without after', () => {
  let redis: TestRedis;
  let relay: HoldingRelay;
  let main: Running;

  beforeAll(async () => {
    redis = await startTestRedis();
    relay = await holdingRelay(redis.port);
    const url = new URL(redis.url);
    url.port = String(relay.port);
    main = await startSwitchboard(
      loadConfig({
        REDIS_URL: url.toString(),
        AUTH: 'off',
        PORT: '0',
        LOG_LEVEL: 'silent',
        COMMAND_TIMEOUT_MS: '10000',
        LIVE_HEARTBEAT_MS: String(HEARTBEAT_MS),
        WORKSPACES: `${WS},${WS_QUIET}`,
        DISCOVER_WORKSPACES: 'false',
      }),
      pino({ level: 'silent' }),
    );
    await projectorReady(main.redis, [WS, WS_QUIET]);
  });

  afterAll(async () => {
    relay?.release();
    await main?.stop();
    await relay?.close();
    await redis?.stop();
  });

  async function command(
    method: 'POST',
    path: string,
    payload?: Record<string, unknown>,
    ws: string = WS,
  ): Promise<void> {
    const res = await main.api!.inject({
      method,
      url: `/v1/workspaces/${ws}${path}`,
      ...(payload ? { payload } : {}),
    });
    if (res.statusCode !== 200 && res.statusCode !== 201)
      throw new Error(`${method} ${path}: ${res.statusCode} ${res.body}`);
  }

  async function lastPosition(ws: string): Promise<string> {
    return (await main.redis.xrevrange(workspaceKeys(ws).events, '+', '-', 'COUNT', 1))[0]![0];
  }

  async function positionsAfter(after: string, ws: string = WS): Promise<string[]> {
    return (await main.redis.xrange(workspaceKeys(ws).events, `(${after}`, '+')).map((e) => e[0]);
  }

  it('starts after the last event appended before it opened, though the tail has not read it', async () => {
    // This instance has no tail on the workspace yet: the one the first command starts must
    // connect, and waits at the relay while the commands are answered.
    relay.hold();
    await command('POST', '/agents', { id: 'ann', skills: ['x'] });
    await command('POST', '/agents/ann/state', { state: 'available' });
    const before = await lastPosition(WS);
    expect(relay.held).toBeGreaterThan(0);

    const socket = new WebSocket(`${main.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`);
    const messages: Record<string, unknown>[] = [];
    socket.on('message', (m) => messages.push(JSON.parse(String(m)) as Record<string, unknown>));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    try {
      // While the tail is held, the feed's heartbeat names where it starts: the last event before it opened.
      await waitFor('a heartbeat', () => messages.length > 0, { timeoutMs: 5_000, everyMs: 20 });
      expect.soft(messages[0]).toMatchObject({ heartbeat: { after: before } });

      // The tail reads the events from before the feed opened, and the feed passes them over.
      relay.release();
      await command('POST', '/contacts', { id: 'call-1', skills: ['x'] });
      const events = () => messages.filter((m) => 'position' in m);
      await waitFor('AssignmentMade', () => events().some((m) => m.type === 'AssignmentMade'), {
        timeoutMs: 15_000,
        everyMs: 20,
      });
      expect(events().map((m) => m.position)).toEqual(await positionsAfter(before));
    } finally {
      socket.terminate();
    }
  });

  it('names where it starts as it opens, so a client dropped before any event resumes with no gap', async () => {
    await command('POST', '/contacts', { id: 'early', skills: ['nobody'] }, WS_QUIET);
    // The client reaches the instance through a relay that can drop the path and hold the next one.
    const front = await holdingRelay(Number(new URL(main.url!).port));
    const reader = new SwitchboardClient({ url: `http://127.0.0.1:${front.port}`, workspace: WS_QUIET });
    const got: EventEnvelope[] = [];
    const sub = reader.subscribe({}, (e) => got.push(e));
    try {
      await sub.ready;
      // No event has come, and the interval's silence is far off: the position is the feed's first message.
      const start = await waitFor('the position the feed starts after', () => sub.position, {
        timeoutMs: 5_000,
        everyMs: 10,
      });
      expect(start).toBe(await lastPosition(WS_QUIET));

      // The path drops; while the client's next connection waits, contacts come.
      front.hold();
      front.cut();
      for (const id of ['c1', 'c2', 'c3'])
        await command('POST', '/contacts', { id, skills: ['nobody'] }, WS_QUIET);
      await waitFor('the client to try again', () => front.held === 1, { timeoutMs: 10_000, everyMs: 10 });
      front.release();
      await command('POST', '/contacts', { id: 'c4', skills: ['nobody'] }, WS_QUIET);
      await waitFor('c4', () => got.some((e) => e.data.id === 'c4'), {
        timeoutMs: 15_000,
        everyMs: 20,
      });
      expect(sub.reconnects).toBe(1);
      expect(got.map((e) => e.position)).toEqual(await positionsAfter(start, WS_QUIET));
    } finally {
      sub.close();
      await sub.ended;
      await front.close();
    }
  });
});
