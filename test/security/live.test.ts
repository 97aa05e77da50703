/**
 * The live feed with keys: authenticated before the upgrade (a header, or a one-time ticket from
 * POST /ws-tickets), refusals are the handshake's problem+json, and an agent key's feed never
 * carries another agent's event, checked under load (10 agents, 300 contacts routed and completed,
 * presence changes) on three sockets of the agent's: by header, by ticket, and replaying from 0-0;
 * and events that name two agents (offers withdrawn, transfers from one to the other, a removal)
 * or none (settings) reach only the feeds they are about.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { issueWsTicket, revokeApiKey } from '../../src/adapters/redis/api-keys.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'sec-live';
const OTHER = 'sec-live-other';
let redis: TestRedis;
let sb: Running;
let admin: string;

interface Envelope {
  position: string;
  type: string;
  data: Record<string, unknown>;
}

/** The agent an event is about, as the live feed's agent= filter reads it. */
function about(e: Envelope): unknown {
  const d = e.data;
  return (
    d.agentId ??
    d.fromAgentId ??
    (e.type.startsWith('Agent') && e.type !== 'AgentStateChanged' ? d.id : undefined)
  );
}

interface Opened {
  readonly socket: WebSocket;
  readonly events: Envelope[];
}

/** Opens the live feed; rejects with the handshake's status and problem when it is refused. */
function open(query: string, headers: Record<string, string> = {}, ws = WS): Promise<Opened> {
  const url = `${sb.url!.replace('http', 'ws')}/v1/workspaces/${ws}/events/live${query}`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    const events: Envelope[] = [];
    socket.on('message', (m) => {
      const e = JSON.parse(m.toString()) as Envelope;
      if (!('heartbeat' in e)) events.push(e); // heartbeats are no events
    });
    socket.once('open', () => resolve({ socket, events }));
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (b: Buffer) => {
        text += b.toString();
      });
      res.on('end', () =>
        reject(
          Object.assign(new Error(`refused ${res.statusCode}`), {
            status: res.statusCode,
            contentType: res.headers['content-type'],
            wwwAuthenticate: res.headers['www-authenticate'],
            problem: JSON.parse(text) as { type: string },
          }),
        ),
      );
    });
    socket.once('error', (err) => reject(err));
  });
}

async function refused(query: string, headers: Record<string, string> = {}, ws = WS) {
  const err = await open(query, headers, ws).then(
    (o) => {
      o.socket.close();
      throw new Error(`the upgrade ${query} was accepted`);
    },
    (e: { status?: number; contentType?: string; problem?: { type: string }; wwwAuthenticate?: string }) => e,
  );
  expect(err.contentType).toMatch(/^application\/problem\+json/);
  return err;
}

async function ticketFor(key: string, ws = WS): Promise<string> {
  const r = await sb.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${ws}/ws-tickets`,
    headers: bearer(key),
  });
  expect(r.statusCode, r.body).toBe(201);
  const body = r.json() as { ticket: string; expiresAt: string };
  expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(25_000);
  return body.ticket;
}

async function send(method: 'POST' | 'PUT' | 'DELETE', path: string, payload?: unknown, key = admin) {
  const r = await sb.api!.inject({
    method,
    url: `/v1/workspaces/${WS}${path}`,
    headers: { ...bearer(key), ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
  });
  expect(r.statusCode, `${path}: ${r.body}`).toBeLessThan(300);
  return r.json() as Record<string, unknown>;
}

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, { WORKSPACES: `${WS},${OTHER}`, DISCOVER_WORKSPACES: 'false' });
  await projectorReady(sb.redis, [WS, OTHER]);
  admin = (await keyOf(sb.redis, WS, 'admin')).key;
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe('the live feed with keys', () => {
  it('is refused before the upgrade: no key, a bad key, a key of another workspace, another agent', async () => {
    const agent = (await keyOf(sb.redis, WS, 'agent', 'ag3')).key;
    const none = await refused('');
    expect(none.status).toBe(401);
    expect(none.problem?.type).toBe('/problems/unauthorized');
    expect(none.wwwAuthenticate).toMatch(/^Bearer/);
    expect((await refused('', bearer(`sb_${'1'.repeat(16)}_${'x'.repeat(43)}`))).status).toBe(401);
    const elsewhere = await refused('', bearer(admin), OTHER);
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.problem?.type).toBe('/problems/forbidden');
    const another = await refused('?agent=ag4', bearer(agent));
    expect(another.status).toBe(403);
    // agent= given twice is a bad query, for an agent key as for any: 400 naming the field.
    for (const key of [agent, admin]) {
      const twice = await refused('?agent=ag3&agent=ag3', bearer(key));
      expect(twice.status).toBe(400);
      expect(twice.problem?.type).toBe('/problems/invalid-request');
      expect(JSON.stringify(twice.problem)).toContain('agent');
    }
    // Its own agent named, or none: open.
    const own = await open('?agent=ag3', bearer(agent));
    own.socket.close();
  });

  it('a ticket opens the feed once, for 30 s at most, in its workspace only, while its key is valid', async () => {
    const supervisor = await keyOf(sb.redis, WS, 'supervisor');
    const ticket = await ticketFor(supervisor.key);
    // A plain GET (no upgrade: a link preview, a proxy that drops Upgrade) is told to upgrade and
    // does not use the ticket up: only the upgrade consumes it.
    const plain = await sb.api!.inject({ url: `/v1/workspaces/${WS}/events/live?ticket=${ticket}` });
    expect(plain.statusCode, plain.body).toBe(426);
    expect(plain.json()).toMatchObject({ type: '/problems/upgrade-required' });
    const first = await open(`?ticket=${ticket}`);
    first.socket.close();
    const again = await refused(`?ticket=${ticket}`);
    expect(again.status).toBe(401);
    expect(again.problem?.type).toBe('/problems/unauthorized');
    // Issued for the other workspace: not valid here.
    const otherAdmin = (await keyOf(sb.redis, OTHER, 'admin')).key;
    expect((await refused(`?ticket=${await ticketFor(otherAdmin, OTHER)}`)).status).toBe(401);
    // Expired.
    const short = await issueWsTicket(
      sb.redis,
      { keyId: supervisor.keyId, workspace: WS, role: 'supervisor' },
      150,
    );
    await sleep(300);
    expect((await refused(`?ticket=${short.ticket}`)).status).toBe(401);
    // Its key revoked after it was issued (the lookup cache is at most 500 ms old).
    const late = await ticketFor(supervisor.key);
    await revokeApiKey(sb.redis, WS, supervisor.keyId);
    await sleep(600);
    expect((await refused(`?ticket=${late}`)).status).toBe(401);
    // Not a ticket at all, and a ticket on a route that takes none.
    expect((await refused('?ticket=nonsense')).status).toBe(401);
    const events = await sb.api!.inject({ url: `/v1/workspaces/${WS}/events?ticket=${ticket}` });
    expect(events.statusCode).toBe(401);
  });

  it('a ticket is spent by the upgrade that presents it, whatever its answer: a refusal too', async () => {
    const supervisor = (await keyOf(sb.redis, WS, 'supervisor')).key;
    // Refused after the key was checked: a bad query (400), a position past the last event (409).
    for (const [query, status] of [
      ['type=NoSuchType', 400],
      ['after=99999999999999-0', 409],
    ] as const) {
      const ticket = await ticketFor(supervisor);
      expect((await refused(`?${query}&ticket=${ticket}`)).status).toBe(status);
      // The URL that reached a log opens nothing: a retry takes a new ticket.
      expect((await refused(`?ticket=${ticket}`)).status).toBe(401);
      const fresh = await open(`?ticket=${await ticketFor(supervisor)}`);
      fresh.socket.close();
    }
  });

  it('an open feed of a key revoked meanwhile is closed with 1008 within about a second', async () => {
    const victim = await keyOf(sb.redis, WS, 'supervisor');
    // One feed opened with the key in the header, one with a ticket the key bought.
    const feeds = [await open('', bearer(victim.key)), await open(`?ticket=${await ticketFor(victim.key)}`)];
    const closed = feeds.map(
      (feed) =>
        new Promise<{ code: number; reason: string; at: number }>((resolve) =>
          feed.socket.once('close', (code, reason) =>
            resolve({ code, reason: reason.toString(), at: performance.now() }),
          ),
        ),
    );
    await sleep(100);
    const from = performance.now();
    await revokeApiKey(sb.redis, WS, victim.keyId);
    for (const c of await Promise.all(closed)) {
      expect(c.code).toBe(1008);
      expect(c.reason).toMatch(/revoked/);
      expect(c.at - from).toBeLessThan(1500);
    }
  });

  it('the feeds of one key are checked as one, twice a second, and all closed when it is revoked', async () => {
    const shared = await keyOf(sb.redis, WS, 'supervisor');
    const api = sb.api!;
    const check = api.apiKeyActive!;
    const asked: string[] = [];
    api.apiKeyActive = (keyId) => {
      asked.push(keyId);
      return check(keyId);
    };
    try {
      const feeds = await Promise.all(Array.from({ length: 20 }, () => open('', bearer(shared.key))));
      const closed = feeds.map(
        (f) => new Promise<number>((resolve) => f.socket.once('close', (code) => resolve(code))),
      );
      asked.length = 0;
      await sleep(1_600);
      // A timer per feed asked 20 times a round; one for all asks once a round (3 rounds here).
      const rounds = asked.filter((k) => k === shared.keyId).length;
      expect(rounds).toBeGreaterThanOrEqual(2);
      expect(rounds).toBeLessThanOrEqual(4);
      const from = performance.now();
      await revokeApiKey(sb.redis, WS, shared.keyId);
      expect(await Promise.all(closed)).toEqual(feeds.map(() => 1008));
      expect(performance.now() - from).toBeLessThan(1500);
    } finally {
      api.apiKeyActive = check;
    }
  });

  it("an agent key's feed never carries another agent's event, under load", async () => {
    const agents = Array.from({ length: 10 }, (_, i) => `ag${i}`);
    const me = 'ag3';
    const key = (await keyOf(sb.redis, WS, 'agent', me)).key;
    const byHeader = await open('', bearer(key));
    const byTicket = await open(`?ticket=${await ticketFor(key)}`);
    const supervisor = await open('', bearer((await keyOf(sb.redis, WS, 'supervisor')).key));

    for (const id of agents) await send('POST', '/agents', { id, skills: ['x'], capacity: 5 });
    for (const id of agents) await send('POST', `/agents/${id}/state`, { state: 'available' });
    const contacts = Array.from({ length: 300 }, (_, i) => `k${i}`);
    let completed = 0;
    for (let i = 0; i < contacts.length; i += 30) {
      const batch = contacts.slice(i, i + 30);
      await Promise.all(batch.map((id) => send('POST', '/contacts', { id, skills: ['x'] })));
      // Each batch routed, then completed: agents take work again.
      await waitFor(`batch ${i} assigned`, async () => {
        const docs = await Promise.all(
          batch.map(async (id) =>
            (
              await sb.api!.inject({ url: `/v1/workspaces/${WS}/contacts/${id}`, headers: bearer(admin) })
            ).json(),
          ),
        );
        return docs.every((d: { state?: string }) => d.state === 'assigned');
      });
      await Promise.all(batch.map((id) => send('POST', `/contacts/${id}/complete`)));
      completed += batch.length;
      // Presence changes of everyone, some of them the agent's own.
      const flip = agents[(i / 30) % agents.length]!;
      await send('POST', `/agents/${flip}/state`, { state: 'away' });
      await send('POST', `/agents/${flip}/state`, { state: 'available' });
    }
    expect(completed).toBe(300);
    // The agent's own desk: its own state, through its own key.
    await send('POST', `/agents/${me}/state`, { state: 'away' }, key);

    // Everything up to the last event reached the sockets.
    const last = await sb.api!.inject({
      url: `/v1/workspaces/${WS}/events?limit=1000&type=AgentStateChanged`,
      headers: bearer(admin),
    });
    const lastOwn = (last.json() as { events: Envelope[] }).events
      .filter((e) => e.data.agentId === me)
      .at(-1)!;
    for (const s of [byHeader, byTicket])
      await waitFor('the own last event', () => s.events.some((e) => e.position === lastOwn.position), {
        timeoutMs: 10_000,
      });
    const replay = await open('?after=0-0', bearer(key));
    await waitFor('the replay', () => replay.events.some((e) => e.position === lastOwn.position), {
      timeoutMs: 10_000,
    });
    await waitFor(
      'the supervisor feed',
      () => supervisor.events.some((e) => e.position === lastOwn.position),
      { timeoutMs: 10_000 },
    );

    const everyOne = supervisor.events;
    const others = everyOne.filter((e) => about(e) !== me && about(e) !== undefined);
    expect(others.length, 'the load touched other agents').toBeGreaterThan(500);
    const mine = everyOne.filter((e) => about(e) === me).map((e) => e.position);
    expect(mine.length).toBeGreaterThan(20);
    for (const [name, s] of [
      ['by header', byHeader],
      ['by ticket', byTicket],
      ['replay', replay],
    ] as const) {
      const foreign = s.events.filter((e) => about(e) !== me);
      expect(
        foreign.map((e) => `${e.position} ${e.type} ${JSON.stringify(e.data)}`),
        name,
      ).toEqual([]);
      // And nothing of its own was left out.
      const got = new Set(s.events.map((e) => e.position));
      expect(
        mine.filter((p) => !got.has(p)),
        name,
      ).toEqual([]);
    }
    for (const s of [byHeader, byTicket, replay, supervisor]) s.socket.close();
  });
  it("an agent key's feed: events naming two agents (offers withdrawn, transfers, a removal) and workspace events", async () => {
    const me = 'mx';
    const other = 'my';
    const key = (await keyOf(sb.redis, WS, 'agent', me)).key;
    const otherKey = (await keyOf(sb.redis, WS, 'agent', other)).key;
    const byHeader = await open('', bearer(key));
    const byTicket = await open(`?ticket=${await ticketFor(key)}`);
    const supervisor = await open('', bearer((await keyOf(sb.redis, WS, 'supervisor')).key));
    const contact = async (id: string) =>
      (
        await sb.api!.inject({ url: `/v1/workspaces/${WS}/contacts/${id}`, headers: bearer(admin) })
      ).json() as { agentId?: string; state?: string };
    const asKey = (k: string, method: 'GET' | 'POST', path: string, payload?: unknown) =>
      sb.api!.inject({
        method,
        url: `/v1/workspaces/${WS}${path}`,
        headers: { ...bearer(k), ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
      });

    // Offers: skills only one of the two has (the agents of the test above have neither).
    await send('PUT', '/settings', { offerTimeoutMs: 60_000 });
    await send('POST', '/agents', { id: me, skills: ['m-own', 'm-to'], capacity: 3 });
    await send('POST', '/agents', { id: other, skills: ['m-other'], capacity: 3 });
    for (const id of [me, other]) await send('POST', `/agents/${id}/state`, { state: 'available' });
    // An offer of each withdrawn as its contact leaves (ContactAbandoned with the agent's id).
    await send('POST', '/contacts', { id: 'm1', skills: ['m-own'] });
    await send('POST', '/contacts', { id: 'm2', skills: ['m-other'] });
    await waitFor(
      'm1, m2 offered',
      async () => (await contact('m1')).agentId === me && (await contact('m2')).agentId === other,
    );
    await send('POST', '/contacts/m1/abandon');
    await send('POST', '/contacts/m2/abandon');
    // The other agent's contact transferred to a skill only `me` has (ContactTransferred names the other).
    await send('POST', '/contacts', { id: 'm3', skills: ['m-other'] });
    await waitFor('m3 offered', async () => (await contact('m3')).agentId === other);
    expect((await asKey(otherKey, 'POST', '/contacts/m3/accept', { agentId: other })).statusCode).toBe(200);
    expect((await asKey(key, 'GET', '/contacts/m3')).statusCode).toBe(403);
    await send('POST', '/contacts/m3/transfer', { skills: ['m-to'] });
    await waitFor('m3 offered to me', async () => (await contact('m3')).agentId === me);
    // Now it is mine: the other agent reads and completes it no more.
    expect((await asKey(otherKey, 'GET', '/contacts/m3')).statusCode).toBe(403);
    expect((await asKey(otherKey, 'POST', '/contacts/m3/complete')).statusCode).toBe(403);
    expect((await asKey(key, 'POST', '/contacts/m3/accept', { agentId: me })).statusCode).toBe(200);
    // And back to the other agent (ContactTransferred names me), whose offer is withdrawn as it is removed.
    await send('POST', '/contacts/m3/transfer', { skills: ['m-other'] });
    await waitFor('m3 offered to the other', async () => (await contact('m3')).agentId === other);
    expect((await asKey(key, 'GET', '/contacts/m3')).statusCode).toBe(403);
    await send('DELETE', `/agents/${other}`);
    await send('PUT', '/settings', { offerTimeoutMs: 0 });
    await send('POST', `/agents/${me}/state`, { state: 'away' }, key);

    const lastOwn = (
      (
        await sb.api!.inject({
          url: `/v1/workspaces/${WS}/events?limit=1000&type=AgentStateChanged`,
          headers: bearer(admin),
        })
      ).json() as { events: Envelope[] }
    ).events
      .filter((e) => e.data.agentId === me)
      .at(-1)!;
    const replay = await open('?after=0-0', bearer(key));
    for (const s of [byHeader, byTicket, replay, supervisor])
      await waitFor('the own last event', () => s.events.some((e) => e.position === lastOwn.position), {
        timeoutMs: 10_000,
      });
    const everyOne = supervisor.events;
    const types = (es: Envelope[]) => es.map((e) => `${e.type} ${JSON.stringify(e.data)}`);
    // The load had what this is about: both agents' offers withdrawn, transfers from each, the removal.
    for (const [type, field, agent] of [
      ['ContactAbandoned', 'agentId', me],
      ['ContactAbandoned', 'agentId', other],
      ['ContactTransferred', 'fromAgentId', me],
      ['ContactTransferred', 'fromAgentId', other],
      ['AssignmentRejected', 'agentId', other],
      ['AgentRemoved', 'agentId', other],
      ['SettingsChanged', undefined, undefined],
    ] as const)
      expect(
        everyOne.some((e) => e.type === type && (field === undefined || e.data[field] === agent)),
        `${type} ${agent ?? ''}`,
      ).toBe(true);
    const mine = everyOne.filter((e) => about(e) === me);
    for (const [name, s] of [
      ['by header', byHeader],
      ['by ticket', byTicket],
      ['replay', replay],
    ] as const)
      expect(types(s.events), name).toEqual(types(mine));
    for (const s of [byHeader, byTicket, replay, supervisor]) s.socket.close();
  });
});
