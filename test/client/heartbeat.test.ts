/**
 * The live feed's heartbeat (docs/API.md, "Heartbeat"): a feed sends `{"heartbeat": {after, at,
 * everyMs}}` as it opens and after each LIVE_HEARTBEAT_MS it sent nothing, a message no consumer
 * can take for an event; `heartbeat=0` turns it off. The typed client takes a socket silent for
 * twice the interval for a dead path: a TCP relay between the client and Switchboard that stops
 * forwarding (no close, no reset: what a VIP that moved to another HAProxy looks like to a client)
 * is noticed within that bound, and the subscription resumes through a fresh connection with no
 * gap and no duplicate. Closing a subscription on such a path drops its socket after a short
 * grace rather than waiting out the closing handshake.
 */
import net from 'node:net';
import { pino } from 'pino';
import { comparePositions, type EventEnvelope, SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = { raw: 'heartbeat-a', dead: 'heartbeat-b' } as const;
const EVERY_MS = 1000;

let redis: TestRedis;
let main: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  main = await startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'off',
      PORT: '0',
      LOG_LEVEL: 'silent',
      LIVE_HEARTBEAT_MS: String(EVERY_MS),
      WORKSPACES: Object.values(WS).join(','),
      DISCOVER_WORKSPACES: 'false',
    }),
    pino({ level: 'silent' }),
  );
  await projectorReady(main.redis, Object.values(WS));
}, 30_000);

afterAll(async () => {
  await main?.stop();
  await redis?.stop();
});

/** Every message of a raw feed, with the time it arrived. */
async function rawFeed(ws: string, query = '') {
  const socket = new WebSocket(
    `${main.url!.replace(/^http/, 'ws')}/v1/workspaces/${ws}/events/live${query ? `?${query}` : ''}`,
  );
  const messages: { at: number; body: Record<string, unknown> }[] = [];
  socket.on('message', (m) => messages.push({ at: Date.now(), body: JSON.parse(String(m)) }));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, messages, openedAt: Date.now() };
}

interface Relay {
  readonly port: number;
  /** Stops forwarding on every connection open now, in both directions, closing none. */
  freeze(): void;
  /** When the last bytes went to a client before the freeze (Date.now()), or 0. */
  lastToClientAt(): number;
  close(): Promise<void>;
}

/** A TCP relay on loopback to `target`; connections made after a freeze forward as usual. */
async function relay(target: number): Promise<Relay> {
  const pairs: { a: net.Socket; b: net.Socket; frozen: boolean }[] = [];
  let lastToClient = 0;
  const server = net.createServer((a) => {
    const b = net.connect(target, '127.0.0.1');
    const pair = { a, b, frozen: false };
    pairs.push(pair);
    // A frozen path drops what it is given, like a route to a host that is gone.
    a.on('data', (d) => {
      if (!pair.frozen) b.write(d);
    });
    b.on('data', (d) => {
      if (pair.frozen) return;
      lastToClient = Date.now();
      a.write(d);
    });
    const end = (other: net.Socket) => () => {
      if (!pair.frozen) other.destroy();
    };
    a.on('close', end(b));
    b.on('close', end(a));
    a.on('error', () => {});
    b.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze() {
      for (const p of pairs) p.frozen = true;
    },
    lastToClientAt: () => lastToClient,
    async close() {
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the heartbeat on a raw feed', () => {
  it('comes as the feed opens and after each silence of LIVE_HEARTBEAT_MS, names the last position, and is no event', async () => {
    const client = new SwitchboardClient({ url: main.url!, workspace: WS.raw });
    const { socket, messages, openedAt } = await rawFeed(WS.raw);
    const quiet = await rawFeed(WS.raw, 'heartbeat=0');
    try {
      await waitFor('two heartbeats', () => messages.length >= 2, { timeoutMs: 5_000, everyMs: 20 });
      const first = messages[0]!.body as { heartbeat: { after: string; at: string; everyMs: number } };
      expect(Object.keys(first)).toEqual(['heartbeat']);
      expect(first.heartbeat.everyMs).toBe(EVERY_MS);
      expect(first.heartbeat.after).toMatch(/^\d+-\d+$/);
      expect(Number.isNaN(Date.parse(first.heartbeat.at))).toBe(false);
      // The first as the feed opened (by the server's clock), not after a silence.
      expect(Date.parse(first.heartbeat.at) - openedAt).toBeLessThan(EVERY_MS / 2);
      // Spaced by the interval (timers are never early; allow them to be late), by the server's
      // clock: their arrival here may be delayed unevenly on a loaded machine.
      const second = messages[1]!.body as { heartbeat: { at: string } };
      const gap = Date.parse(second.heartbeat.at) - Date.parse(first.heartbeat.at);
      expect(gap).toBeGreaterThanOrEqual(EVERY_MS - 5);
      expect(gap).toBeLessThan(EVERY_MS * 2);

      // An event, then the next heartbeat names its position; none comes while events flow.
      const r = await client.registerAgent({ id: 'hb-agent', skills: ['x'] });
      expect(r.applied).toBe(true);
      await waitFor('the event', () => messages.some((m) => m.body.type === 'AgentRegistered'), {
        everyMs: 20,
      });
      const at = messages.findIndex((m) => m.body.type === 'AgentRegistered');
      const event = messages[at]!;
      await waitFor('a heartbeat after the event', () => messages.length > at + 1, {
        timeoutMs: 5_000,
        everyMs: 20,
      });
      const next = messages[at + 1]!;
      expect(next.body).toMatchObject({ heartbeat: { after: event.body.position, everyMs: EVERY_MS } });
      expect(next.at - event.at).toBeGreaterThanOrEqual(EVERY_MS - 50);
      // Nothing on the feed that asked for none.
      expect(quiet.messages.map((m) => m.body.type)).toEqual(['AgentRegistered']);
    } finally {
      socket.terminate();
      quiet.socket.terminate();
    }
  });

  it('heartbeat= other than 0 or 1 is refused before the upgrade', async () => {
    const res = await fetch(`${main.url}/v1/workspaces/${WS.raw}/events/live?heartbeat=2`);
    expect(res.status).toBe(400);
  });
});

describe('the typed client on a path that dies without a close', () => {
  it('notices within two intervals and resumes with no gap and no duplicate', async () => {
    const path = await relay(Number(new URL(main.url!).port));
    const writer = new SwitchboardClient({ url: main.url!, workspace: WS.dead });
    const reader = new SwitchboardClient({ url: `http://127.0.0.1:${path.port}`, workspace: WS.dead });
    const got: EventEnvelope[] = [];
    const closes: { reason: string; at: number }[] = [];
    const sub = reader.subscribe(
      {
        after: '0-0',
        // The client starts from the default (10 s) and takes the server's interval from its first heartbeat.
        onClose: (c) => closes.push({ reason: c.reason, at: Date.now() }),
      },
      (e) => got.push(e),
    );
    let n = 0;
    const post = async (k: number) => {
      for (let i = 0; i < k; i++) await writer.queueContact({ id: `hb-${n++}`, skills: ['nobody'] });
    };
    const contacts = () => got.filter((e) => e.type === 'ContactQueued').length;
    try {
      await sub.ready;
      await post(5);
      await waitFor('5 contacts seen', () => contacts() >= 5, { everyMs: 20 });
      // A heartbeat has named the interval: wait past one.
      await sleep(EVERY_MS * 1.5);

      const frozenAt = Date.now();
      path.freeze();
      // Events keep coming while the old path is dead.
      await post(5);
      const noticed = await waitFor('the dead path noticed', () => closes.find((c) => c.at >= frozenAt), {
        timeoutMs: 5_000,
        everyMs: 10,
      });
      const detectedMs = noticed.at - frozenAt;
      expect(noticed.reason).toMatch(/taken for dead/);
      // Twice the interval after the last message heard (at most one interval before the freeze),
      // measured from the relay's last bytes to the client: not before, and not much after (a
      // loaded machine runs the client's timer a little late).
      const sinceLastHeard = noticed.at - path.lastToClientAt();
      expect(sinceLastHeard).toBeGreaterThanOrEqual(2 * EVERY_MS - 20);
      expect(sinceLastHeard).toBeLessThanOrEqual(2 * EVERY_MS + 500);
      expect(detectedMs).toBeLessThanOrEqual(3 * EVERY_MS + 500);
      await post(5);
      await waitFor('15 contacts seen after resuming', () => contacts() >= 15, {
        timeoutMs: 5_000,
        everyMs: 20,
      });
      expect(sub.reconnects).toBeGreaterThanOrEqual(1);

      // Exactly the log: every event once, in order.
      const history: EventEnvelope[] = [];
      for await (const e of writer.allEvents({ limit: 1000 })) history.push(e);
      const upTo = got[got.length - 1]!.position;
      expect(got.map((e) => e.position)).toEqual(
        history.map((e) => e.position).filter((p) => comparePositions(p, upTo) <= 0),
      );
      console.log(`dead path noticed ${detectedMs} ms after the freeze (heartbeat every ${EVERY_MS} ms)`);
    } finally {
      sub.close();
      await sub.ended;
      await path.close();
    }
  }, 20_000);

  it('close() on a path that went dead lets the socket go within a second or so, not after a 30 s closing handshake', async () => {
    // A server that never answers the close frame (stopped, or on a dead path) held the socket,
    // and a Node process that was done with the feed, for `ws`'s 30 s closing timeout.
    const path = await relay(Number(new URL(main.url!).port));
    const reader = new SwitchboardClient({ url: `http://127.0.0.1:${path.port}`, workspace: WS.dead });
    const closed: number[] = [];
    const sub = reader.subscribe({ onClose: () => closed.push(Date.now()) }, () => {});
    try {
      await sub.ready;
      path.freeze();
      const closingAt = Date.now();
      sub.close();
      await sub.ended;
      await waitFor('the socket closed', () => closed.length > 0, { timeoutMs: 5_000, everyMs: 20 });
      expect(closed[0]! - closingAt).toBeLessThan(3_000);
    } finally {
      await path.close();
    }
  }, 15_000);

  it('close() gives up a ticket request the server has not answered: nothing is left holding the process', async () => {
    // A server that accepts connections and answers nothing (stopped): the ticket request before a
    // connection went on waiting for its 15 s timeout after close(), holding a Node process that
    // was done with the feed.
    const held = new Set<net.Socket>();
    const server = net.createServer((s) => {
      held.add(s);
      s.on('close', () => held.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const requests: { url: string; settled?: number }[] = [];
    const sub = new SwitchboardClient({
      url,
      workspace: WS.dead,
      key: 'sb_0123456789abcdef_x',
      fetch: (u, init) => {
        const r: { url: string; settled?: number } = { url: String(u) };
        requests.push(r);
        const answer = fetch(u, init);
        const settle = () => {
          r.settled = Date.now();
        };
        answer.then(settle, settle);
        return answer;
      },
    }).subscribe({ auth: 'ticket', retryFirst: true }, () => {});
    try {
      await waitFor('the ticket request sent', () => held.size === 1, { everyMs: 10 });
      const closedAt = Date.now();
      sub.close();
      await sub.ended;
      await waitFor('the ticket request given up', () => requests[0]?.settled !== undefined, {
        timeoutMs: 3_000,
        everyMs: 10,
      });
      expect(requests.map((r) => r.url)).toEqual([`${url}/v1/workspaces/${WS.dead}/ws-tickets`]);
      expect(requests[0]!.settled! - closedAt).toBeLessThan(1_000);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
