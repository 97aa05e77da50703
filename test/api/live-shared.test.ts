/**
 * The live feed's shared frames: an event is framed once per instance and a batch's frames are
 * joined once per filter, yet every subscriber still gets exactly what its own filters and resume
 * position say, as text messages, in order, once. Real WebSocket clients on a Switchboard with
 * every role, on a real Redis.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventFrame, sharedSelection, textFrame } from '../../src/adapters/http/frames.ts';
import { LiveEvent } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'api-live-shared';
const log = pino({ level: 'silent' });
let redis: TestRedis;
let main: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  main = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
    }),
    log,
  );
  await projectorReady(main.redis, [WS]);
});

afterAll(async () => {
  await main?.stop();
  await redis?.stop();
});

interface Envelope {
  position: string;
  type: string;
  data: Record<string, unknown>;
}

class Sub {
  readonly events: Envelope[] = [];
  binary = 0;
  readonly open: Promise<void>;
  constructor(
    readonly query: string,
    readonly socket: WebSocket,
  ) {
    socket.on('message', (m, isBinary) => {
      if (isBinary) this.binary++;
      const e = JSON.parse(String(m)) as Envelope;
      if (!('heartbeat' in e)) this.events.push(e); // heartbeats are no events
    });
    this.open = new Promise((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
  }
  get last(): string | undefined {
    return this.events[this.events.length - 1]?.position;
  }
}

async function command(path: string, payload: Record<string, unknown>): Promise<void> {
  const res = await main.api!.inject({ method: 'POST', url: `/v1/workspaces/${WS}${path}`, payload });
  if (res.statusCode >= 300) throw new Error(`POST ${path}: ${res.statusCode} ${res.body}`);
}

async function streamEvents(after = '0-0'): Promise<Envelope[]> {
  const entries = await main.redis.xrange(workspaceKeys(WS).events, `(${after}`, '+');
  return entries.map((e) => new LiveEvent(e as [string, string[]]).envelope as unknown as Envelope);
}

function aboutAgent(e: Envelope): unknown {
  if (e.data.agentId !== undefined) return e.data.agentId;
  if (e.type === 'AgentRegistered' || e.type === 'AgentUpdated') return e.data.id;
  return undefined;
}

describe('shared live frames', () => {
  it('every subscriber of one instance gets what its own filters and position select, in batches shared by all', async () => {
    await command('/agents', { id: 'x1', skills: ['k'], capacity: 5 });
    await command('/agents', { id: 'x2', skills: ['k'], capacity: 5 });
    await command('/agents/x1/state', { state: 'available' });
    const start = (await streamEvents()).at(-1)!.position;
    const queries = [
      '',
      'type=AssignmentMade',
      'type=ContactQueued,AssignmentMade',
      'type=AssignmentMade,ContactQueued', // the same filter written otherwise: the same frames
      'agent=x1',
      'agent=x2&type=AgentStateChanged,AssignmentMade',
      `after=${start}`,
      `after=${start}&type=AssignmentMade`,
    ];
    const base = `${main.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`;
    const subs = queries.flatMap((q) =>
      [0, 1, 2].map((_) => new Sub(q, new WebSocket(q ? `${base}?${q}` : base))),
    );
    await Promise.all(subs.map((s) => s.open));
    await waitFor('every socket subscribed', async () => {
      const res = await main.api!.inject({ method: 'GET', url: '/status' });
      return (res.json() as { subscribers: number }).subscribers === subs.length;
    });
    const from = (await streamEvents()).at(-1)!.position;

    // Bursts of concurrent commands, so the tail reads several events per batch.
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          command('/contacts', {
            id: `c-${round}-${i}`,
            skills: ['k'],
            attributes: { n: 'é'.repeat(i * 20) },
          }),
        ),
      );
      await command('/agents/x2/state', { state: round % 2 === 0 ? 'available' : 'away' });
    }
    const all = await streamEvents(start);
    const last = all.at(-1)!.position;
    await waitFor('every subscriber to reach the end', () =>
      subs.every((s) => {
        const want = expected(s.query, all, from);
        return want.length === 0 || s.last === want.at(-1)!.position;
      }),
    );
    for (const s of subs) {
      const want = expected(s.query, all, from);
      expect(s.binary, s.query).toBe(0);
      expect(
        s.events.map((e) => e.position),
        s.query,
      ).toEqual(want.map((e) => e.position));
      expect(s.events, s.query).toEqual(want);
    }
    expect(subs[0]!.events.at(-1)!.position).toBe(last);
    for (const s of subs) s.socket.terminate();
  });

  it('frames an event once, and joins a batch once per filter', () => {
    const entry = (i: number, type: string): [string, string[]] => [
      `1-${i}`,
      ['type', type, 'event', JSON.stringify({ type, workspace: 'w', at: 'x', data: { i }, meta: {} })],
    ];
    const batch = [entry(1, 'A'), entry(2, 'B'), entry(3, 'A')].map((e) => new LiveEvent(e));
    expect(eventFrame(batch[0]!)).toBe(eventFrame(batch[0]!));
    const onlyA = (e: LiveEvent) => e.type === 'A';
    const a1 = sharedSelection(batch, 'A', onlyA);
    const a2 = sharedSelection(batch, 'A', onlyA);
    expect(a2).toBe(a1);
    expect(a1.first).toBe(0);
    expect(a1.events.map((e) => e.position)).toEqual(['1-1', '1-3']);
    expect(a1.frames).toEqual(Buffer.concat([eventFrame(batch[0]!), eventFrame(batch[2]!)]));
    const b = sharedSelection(batch, 'B', (e) => e.type === 'B');
    expect(b.first).toBe(1);
    expect(b.events.map((e) => e.position)).toEqual(['1-2']);
    expect(sharedSelection(batch, 'C', () => false).frames).toBeNull();
    // Another batch with the same filter is joined anew.
    const other = batch.slice(0, 1);
    expect(sharedSelection(other, 'A', onlyA).events.map((e) => e.position)).toEqual(['1-1']);
  });

  it('text frames carry each payload length form', () => {
    for (const n of [0, 125, 126, 65_535, 65_536, 70_000]) {
      const f = textFrame(Buffer.alloc(n, 0x61));
      expect(f[0]).toBe(0x81);
      const header = n < 126 ? 2 : n < 65_536 ? 4 : 10;
      expect(f.length).toBe(header + n);
      const len = n < 126 ? f[1] : n < 65_536 ? f.readUInt16BE(2) : Number(f.readBigUInt64BE(2));
      expect(f[1]).toBe(n < 126 ? n : n < 65_536 ? 126 : 127);
      expect(len).toBe(n);
    }
  });
});

/** What a subscriber with `query` must receive: after its position (or `from`, when it joined). */
function expected(query: string, all: readonly Envelope[], from: string): Envelope[] {
  const p = new URLSearchParams(query);
  const after = p.get('after');
  const types = p.get('type')?.split(',');
  const agent = p.get('agent');
  const cmp = (a: string, b: string) => {
    const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
    const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
    return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
  };
  return all.filter(
    (e) =>
      cmp(e.position, after ?? from) > 0 &&
      (!types || types.includes(e.type)) &&
      (!agent || aboutAgent(e) === agent),
  );
}
