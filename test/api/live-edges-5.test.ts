/**
 * The live feed's liveness ping against docs/API.md: "a history of any size reaches a client at the
 * pace it reads". A ping waits behind every byte unsent before it, so a client reading a long replay
 * over a slow link answered it late, and was dropped (1006, no close, no position) while it read on
 * steadily. Now a client that took bytes since the last ping is alive; one that takes nothing and
 * answers nothing is still dropped. One real instance (LIVE_PING_MS=1500), its own redis-server, the
 * history written straight to the event stream, real `ws` clients whose reading is throttled.
 */
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'live-edges-5';
const api = inProcessApi([WS], { env: { LIVE_PING_MS: '1500', LIVE_HEARTBEAT_MS: 'off', ROLES: 'api' } });
const EVENTS = 48_000;

/** About 20 MB of history: far more than the system's socket buffers hold, so a backlog waits. */
async function seed(): Promise<void> {
  const r = api.running.redis;
  const key = workspaceKeys(WS).events;
  for (let i = 0; i < EVENTS; i += 2000) {
    const p = r.pipeline();
    for (let j = i; j < i + 2000; j++) {
      const env = {
        type: 'AgentUpdated',
        workspace: WS,
        at: new Date().toISOString(),
        data: { id: `a${j}`, note: 'x'.repeat(300) },
        meta: {},
      };
      p.xadd(key, '*', 'type', 'AgentUpdated', 'event', JSON.stringify(env));
    }
    await p.exec();
  }
}

/**
 * Opens the feed from the start and reads at `bytesPerSecond` (0: reads nothing for `stallMs`, then
 * at full speed): the events received and the close code, once the socket closed or `forMs` passed
 * (then closed by the client, `code` undefined).
 */
function read(
  bytesPerSecond: number,
  forMs: number,
  stallMs = 0,
): Promise<{ events: number; code: number | undefined }> {
  const s = new WebSocket(
    `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?after=0-0`,
  );
  let events = 0;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.terminate();
      resolve({ events, code: undefined });
    }, forMs);
    s.on('error', () => undefined);
    s.on('open', () => {
      const raw = (s as unknown as { _socket: Socket })._socket;
      if (bytesPerSecond === 0) {
        raw.pause();
        setTimeout(() => raw.resume(), stallMs);
        return;
      }
      raw.on('data', (d: Buffer) => {
        raw.pause();
        setTimeout(() => raw.resume(), (d.length / bytesPerSecond) * 1000);
      });
    });
    s.on('message', () => {
      events++;
    });
    s.on('close', (code) => {
      clearTimeout(timer);
      resolve({ events, code });
    });
  });
}

describe('a live feed whose client reads a long replay slowly', () => {
  it('is not dropped while it reads on, though it answers each ping seconds late', async () => {
    await seed();
    // ~20 MB at 2 MB/s: each ping waits seconds behind the replay's backlog; over four intervals
    // of 1.5 s the client reads on (about 12 MB), its socket open.
    const got = await read(2_000_000, 6500);
    expect(got.code, `closed after ${got.events} events`).toBeUndefined();
    expect(got.events).toBeGreaterThan(EVENTS / 4);
  }, 20_000);

  it('is dropped when it takes nothing for an interval, backlog or not', async () => {
    // Stalled for 3.2 s (two intervals): dropped, and the close seen once it reads what had reached it.
    const got = await read(0, 10_000, 3200);
    expect(got.code).toBe(1006);
    expect(got.events).toBeLessThan(EVENTS);
  }, 20_000);
});
