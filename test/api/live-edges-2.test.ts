/**
 * More edges of the live feed, against docs/API.md ("Events: audit and live"): heartbeats (their
 * content and timing), resuming with after= on another instance of the same Redis, the query.
 * Two real instances in process on one real Redis, real `ws` clients.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

const WS = 'live-edges-2';
const EVERY = 300;
const log = pino({ level: 'silent' });
let redis: TestRedis;
let a: Running;
let b: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  const base = {
    AUTH: 'off',
    ...redis.env,
    PORT: '0',
    LOG_LEVEL: 'silent',
    WORKSPACES: WS,
    DISCOVER_WORKSPACES: 'false',
    LIVE_HEARTBEAT_MS: String(EVERY),
  };
  a = await startSwitchboard(loadConfig(base), log);
  b = await startSwitchboard(loadConfig({ ...base, ROLES: 'api' }), log);
  await projectorReady(a.redis, [WS]);
});

afterAll(async () => {
  await b?.stop();
  await a?.stop();
  await redis?.stop();
});

type Message = Record<string, unknown> & { heartbeat?: { after: string; at: string; everyMs: number } };

interface Feed {
  readonly socket: WebSocket;
  readonly messages: { at: number; m: Message }[];
  readonly closed: Promise<{ code: number; reason: string }>;
}

function open(on: Running, query: string): Promise<Feed> {
  const socket = new WebSocket(`${on.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?${query}`);
  const messages: { at: number; m: Message }[] = [];
  socket.on('message', (m) => messages.push({ at: Date.now(), m: JSON.parse(String(m)) as Message }));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ socket, messages, closed }));
    socket.once('error', reject);
  });
}

async function command(path: string, payload: Record<string, unknown>): Promise<void> {
  const res = await a.api!.inject({ method: 'POST', url: `/v1/workspaces/${WS}${path}`, payload });
  if (res.statusCode >= 300) throw new Error(`POST ${path}: ${res.statusCode} ${res.body}`);
}

async function positionsAfter(after: string): Promise<{ position: string; type: string }[]> {
  return (await a.redis.xrange(workspaceKeys(WS).events, `(${after}`, '+')).map((e) => ({
    position: e[0],
    type: e[1][e[1].indexOf('type') + 1]!,
  }));
}

/** The upgrade's answer when refused: status and problem; 'open' when it opened. */
function refusal(
  on: Running,
  query: string,
): Promise<{ status: number; problem: Record<string, unknown> } | 'open'> {
  const socket = new WebSocket(`${on.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?${query}`);
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      socket.close();
      resolve('open');
    });
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += String(c);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode!, problem: JSON.parse(text) as Record<string, unknown> }),
      );
    });
    socket.once('error', reject);
  });
}

/** The agent an event is about, as docs/API.md says agent= reads it. */
function about(e: { type: string; data: Record<string, unknown> }): unknown {
  const d = e.data;
  return d.agentId ?? d.fromAgentId ?? (/^Agent(Registered|Updated)$/.test(e.type) ? d.id : undefined);
}

describe('the live feed, held to docs/API.md', () => {
  it('heartbeats: one as it opens naming where it starts, then one per silence of everyMs, with the same after', async () => {
    await command('/agents', { id: 'p1', skills: ['x'] });
    const end = (await positionsAfter('0-0')).at(-1)!.position;
    const f = await open(a, '');
    // From the socket's opening, not from before the handshake: on a loaded machine the upgrade
    // alone took 432 ms, and the first beat is the one sent as the feed opens, not after everyMs.
    const opened = Date.now();
    await sleep(EVERY * 3 + 150);
    f.socket.close();
    const beats = f.messages.filter((x) => x.m.heartbeat);
    expect(beats.length).toBe(f.messages.length); // nothing else came
    expect(beats.length).toBeGreaterThanOrEqual(3);
    for (const { m } of beats) {
      expect(Object.keys(m)).toEqual(['heartbeat']); // no type, no position
      expect(m.heartbeat).toEqual({ after: end, at: expect.any(String), everyMs: EVERY });
      expect(Number.isNaN(Date.parse(m.heartbeat!.at))).toBe(false);
    }
    expect(beats[0]!.at - opened).toBeLessThan(EVERY);
    // The gaps by the server's own times (`at`, when each was sent): the client's receive times
    // carry the machine's scheduling besides (a beat received late makes the next gap look short).
    for (let i = 1; i < beats.length; i++) {
      const gap = Date.parse(beats[i]!.m.heartbeat!.at) - Date.parse(beats[i - 1]!.m.heartbeat!.at);
      expect(gap).toBeGreaterThanOrEqual(EVERY - 5);
      expect(gap).toBeLessThan(EVERY * 3);
    }
  });

  it('heartbeat=1 is the default, any other value a 400 naming heartbeat; after, type and agent once each', async () => {
    expect(await refusal(b, 'heartbeat=1')).toBe('open');
    for (const q of [
      'heartbeat=true',
      'heartbeat=',
      'after=0-0&after=0-0',
      'type=',
      'agent=',
      'agent=a&agent=b',
      'foo=1',
    ]) {
      const r = await refusal(b, q);
      expect(r, q).toMatchObject({ status: 400, problem: { type: '/problems/invalid-request' } });
      const named = q.split('=')[0];
      expect(
        (r as unknown as { problem: { errors: { path: string }[] } }).problem.errors.map((e) => e.path),
        q,
      ).toEqual([named]);
    }
  });

  it('hopping between two instances under load, resuming from the last event or heartbeat: every event once, in order', async () => {
    await command('/agents', { id: 'p1', skills: ['x'] }).catch(() => undefined);
    const from = (await positionsAfter('0-0')).at(-1)!.position;
    for (const filter of ['', 'type=ContactQueued', 'agent=p1']) {
      let after = from;
      const got: string[] = [];
      let stop = false;
      const load = (async () => {
        for (let i = 0; !stop; i++) {
          await command('/contacts', { id: `l-${filter.length}-${i}`, skills: ['nobody'] });
          if (i % 7 === 0) await command('/agents/p1/state', { state: i % 14 === 0 ? 'available' : 'away' });
        }
      })();
      for (let hop = 0; hop < 6; hop++) {
        const f = await open(hop % 2 ? b : a, `after=${after}${filter ? `&${filter}` : ''}`);
        await sleep(50 + Math.random() * 300);
        f.socket.terminate();
        for (const { m } of f.messages) {
          if (m.heartbeat) after = m.heartbeat.after;
          else {
            got.push(m.position as string);
            after = m.position as string;
          }
        }
      }
      stop = true;
      await load;
      const all = await a.redis.xrange(workspaceKeys(WS).events, `(${from}`, `${after}`);
      const want = all
        .map((e) => ({
          position: e[0],
          ...(JSON.parse(e[1][e[1].indexOf('event') + 1]!) as {
            type: string;
            data: Record<string, unknown>;
          }),
        }))
        .filter((e) =>
          filter === 'type=ContactQueued'
            ? e.type === 'ContactQueued'
            : filter === 'agent=p1'
              ? about(e) === 'p1'
              : true,
        )
        .map((e) => e.position);
      expect(got.length, filter).toBeGreaterThan(0);
      expect(got, filter).toEqual(want);
    }
  });
});
