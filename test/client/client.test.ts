/**
 * The typed client (`switchboard/client`) against a Switchboard started in this process, with API
 * keys on: every command and query round trip, a problem+json surfacing as a typed error, a 503
 * (Redis paused for real) retried with the same Idempotency-Key and applied once, failover base
 * URLs taken in turn with the wait onRetry sets, and the live subscription resuming after its
 * sockets are killed and after its API instance is stopped and started again, with no gap and no
 * duplicate. Also /docs (Swagger UI) and the workspace metrics; a method for every operation of
 * the OpenAPI document (named by its operationId), each called; GET /stats/intervals typed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import {
  comparePositions,
  type EventEnvelope,
  type StatsIntervals,
  SwitchboardClient,
  SwitchboardError,
} from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { freezeRedis } from '../support/freeze.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = {
  main: 'client-a',
  offers: 'client-b',
  retry: 'client-c',
  live: 'client-d',
  metrics: 'client-e',
  intervals: 'client-f',
} as const;
const POSITION = /^\d+-\d+$/;
/** Prometheus' checker (Debian's prometheus package, installed by scripts/ensure.sh). */
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

const log = pino({ level: 'silent' });
let redis: TestRedis;
let main: Running;
let adminKey: string;
const keys: Record<string, string> = {};

function env(more: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...redis.env,
    AUTH: 'on',
    PORT: '0',
    LOG_LEVEL: 'silent',
    COMMAND_TIMEOUT_MS: '2000',
    LB_DRAIN_MS: '0',
    ...more,
  };
}

/** The SwitchboardError a call fails with (the test fails if it succeeds). */
const failure = (p: Promise<unknown>): Promise<SwitchboardError> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e as SwitchboardError,
  );

const client = (workspace: string, more: Partial<ConstructorParameters<typeof SwitchboardClient>[0]> = {}) =>
  new SwitchboardClient({ url: main.url!, workspace, key: keys[workspace], ...more });

beforeAll(async () => {
  redis = await startTestRedis();
  main = await startSwitchboard(
    loadConfig(env({ WORKSPACES: Object.values(WS).join(','), DISCOVER_WORKSPACES: 'false' })),
    log,
  );
  await projectorReady(main.redis, Object.values(WS));
  for (const ws of Object.values(WS))
    keys[ws] = (await createApiKey(main.redis, { workspace: ws, role: 'admin' })).key;
  adminKey = keys[WS.main]!;
}, 30_000);

afterAll(async () => {
  await main?.stop();
  await redis?.stop();
});

describe('commands and queries', () => {
  it('every command and query round trips with its document types', async () => {
    const c = client(WS.main);
    expect(await c.health()).toEqual({ status: 'ok' });
    expect((await c.status()).auth).toBe('on');

    const reg = await c.registerAgent({
      id: 'ann',
      name: 'Ann',
      skills: ['billing', { name: 'spanish', level: 3 }],
    });
    expect(reg).toMatchObject({ applied: true, status: 201, replayed: false });
    if (!reg.applied) throw new Error('not applied in time');
    expect(reg.position).toMatch(POSITION);
    expect(reg.value).toMatchObject({
      id: 'ann',
      state: 'offline',
      skills: ['billing', { name: 'spanish', level: 3 }],
    });
    expect(reg.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);

    const upd = await c.updateAgent('ann', { name: 'Ann B.' });
    expect(upd.applied && upd.value.name).toBe('Ann B.');
    const av = await c.setAgentState('ann', 'available');
    expect(av.applied && av.value.state).toBe('available');
    // minPosition: a read that sees the write it follows.
    expect((await c.getAgent('ann', { minPosition: av.position })).presence).toBe('available');
    expect((await c.listAgents({ state: 'available', skill: 'billing' })).map((a) => a.id)).toEqual(['ann']);

    const settings = await c.putSettings({ wrapUpMs: 0, channels: ['chat', 'voice'] });
    expect(settings.applied && settings.value.channels).toEqual(['chat', 'voice']);
    expect(await c.settings()).toMatchObject({ offerTimeoutMs: 0, channels: ['chat', 'voice'] });

    const q = await c.queueContact({ id: 'c1', skills: ['billing'], attributes: { tier: 'gold' } });
    expect(q.status).toBe(201);
    const assigned = await waitFor('c1 assigned', async () => {
      const doc = await c.getContact('c1');
      return doc.state === 'assigned' && doc;
    });
    expect(assigned).toMatchObject({ agentId: 'ann', attributes: { tier: 'gold' }, channel: 'voice' });

    const tr = await c.transferContact('c1', { skills: ['nobody-has-it'], priority: 5 });
    expect(tr.applied && tr.value).toMatchObject({ state: 'queued', priority: 5 });
    const queued = await c.getContact('c1', { minPosition: tr.position });
    expect(queued.queuePosition).toBe(0);
    await c.abandonContact('c1');
    expect((await c.getContact('c1')).state).toBe('abandoned');

    await c.queueContact({ id: 'c2', skills: ['billing'] });
    await waitFor('c2 assigned', async () => (await c.getContact('c2')).state === 'assigned');
    const done = await c.completeContact('c2');
    expect(done.applied && done.value.state).toBe('completed');

    const stats = await c.stats({ minPosition: done.position });
    expect(stats).toMatchObject({ assignments: 2, completed: 1, abandoned: 1, transferred: 1 });
    expect(stats.agentsByState.available).toBe(1);
    // Each queue as the server sends it, typed whole: its longest wait and its agents by state.
    const billing = stats.queues.find((q) => q.skills === 'billing');
    expect(billing).toMatchObject({ queued: 0, longestWaitMs: 0, assignments: 2 });
    expect(billing!.agents.available).toBe(1);
    expect((await c.stats({ serviceLevelMs: 60_000 })).window).toMatchObject({
      assignments: 2,
      serviceLevelMs: 60_000,
    });

    const page = await c.events({ types: ['AssignmentMade'], limit: 1 });
    expect(page.events).toHaveLength(1);
    expect(page.events[0]!.type).toBe('AssignmentMade');
    const all: EventEnvelope[] = [];
    for await (const e of c.allEvents({ limit: 3 })) all.push(e);
    expect(all.map((e) => e.type)).toContain('ContactCompleted');
    expect(new Set(all.map((e) => e.position)).size).toBe(all.length);

    const at = all.find((e) => e.type === 'AgentRegistered')!.position;
    const state = await c.stateAt(at);
    expect(state.agents.map((a) => a.id)).toEqual(['ann']);
    expect(state.agents[0]!.state).toBe('offline');

    await c.setAgentState('ann', 'offline');
    const removed = await c.removeAgent('ann');
    expect(removed.applied && removed.value).toMatchObject({ id: 'ann', removed: true });

    const made = await c.createKey({ role: 'agent', agentId: 'ann', name: 'desk' });
    expect(made.key).toMatch(/^sb_/);
    expect((await c.listKeys()).map((k) => k.keyId)).toContain(made.keyId);
    expect(await c.getKey(made.keyId)).toMatchObject({ keyId: made.keyId, role: 'agent', agentId: 'ann' });
    expect((await c.revokeKey(made.keyId)).revokedAt).toBeDefined();
    expect((await c.getKey(made.keyId)).revokedAt).toBeDefined();
    expect(await c.whoami()).toMatchObject({ workspace: WS.main, role: 'admin' });
    const ticket = await c.wsTicket();
    expect(ticket.ticket.length).toBeGreaterThan(10);
  });

  it('offers: accept and reject, an agent key acting for its own agent', async () => {
    const c = client(WS.offers);
    await c.putSettings({ offerTimeoutMs: 60_000 });
    await c.registerAgent({ id: 'bo', skills: ['s'] });
    await c.registerAgent({ id: 'cy', skills: ['s'] });
    const boKey = (await c.createKey({ role: 'agent', agentId: 'bo' })).key;
    const bo = c.with({ key: boKey });
    await bo.setAgentState('bo', 'available');
    await c.queueContact({ id: 'o1', skills: ['s'] });
    await waitFor('o1 offered to bo', async () => (await c.getContact('o1')).state === 'offered');
    const rejected = await bo.rejectOffer('o1', 'bo');
    expect(rejected.applied && rejected.value).toMatchObject({ state: 'queued', excludedAgents: ['bo'] });
    await c.setAgentState('cy', 'available');
    await waitFor('o1 offered to cy', async () => (await c.getContact('o1')).agentId === 'cy');
    const accepted = await c.acceptOffer('o1', 'cy');
    expect(accepted.applied && accepted.value).toMatchObject({ state: 'assigned', agentId: 'cy' });
    // The agent key may not answer for another agent: a 403 problem, typed.
    const refused = await failure(bo.acceptOffer('o1', 'cy'));
    expect(refused).toBeInstanceOf(SwitchboardError);
    expect(refused).toMatchObject({ status: 403, type: '/problems/forbidden' });
  });

  it('a problem+json answer is thrown typed: status, type, title, detail, errors', async () => {
    const c = client(WS.main);
    const missing = await failure(c.getAgent('nobody'));
    expect(missing).toBeInstanceOf(SwitchboardError);
    expect(missing).toMatchObject({
      status: 404,
      type: '/problems/agent-not-found',
      title: 'Agent not found',
      slug: 'agent-not-found',
      attempts: 1,
    });
    expect(missing.detail).toMatch(/nobody/);

    const bad = await failure(c.registerAgent({ id: 'bad id!', skills: [] } as never));
    expect(bad).toMatchObject({ status: 400, type: '/problems/invalid-request' });
    expect(bad.errors.map((e) => e.path).sort()).toEqual(['id', 'skills']);

    await c.registerAgent({ id: 'dup', skills: ['x'] });
    const dup = await failure(c.registerAgent({ id: 'dup', skills: ['x'] }));
    expect(dup).toMatchObject({ status: 409, type: '/problems/agent-exists' });

    const anonymous = await failure(c.with({ key: undefined }).stats());
    expect(anonymous).toMatchObject({ status: 401, type: '/problems/unauthorized' });
    const wrongWs = await failure(c.with({ workspace: WS.offers, key: adminKey }).stats());
    expect(wrongWs).toMatchObject({ status: 403, type: '/problems/forbidden' });

    // No answer at all: a typed "network" failure after the retries.
    const port = await freePort();
    const nowhere = new SwitchboardClient({ url: `http://127.0.0.1:${port}`, retries: 1, backoffMs: 10 });
    const net = await failure(nowhere.health());
    expect(net).toMatchObject({ status: 'network', type: 'network', attempts: 2 });
    // onRetry stopping the retries: the failure counts the tries made.
    const stopped = await failure(nowhere.with({ retries: 5, onRetry: (i) => i.attempt < 2 }).health());
    expect(stopped).toMatchObject({ status: 'network', attempts: 2 });
  });

  it('a 503 is retried after Retry-After with the same Idempotency-Key: the command applies once', async () => {
    // An instance that acknowledges a command only once a replica holds it: this Redis has none,
    // so it appends the command and answers 503 not-replicated ("retry with the same key").
    const replicated = await startSwitchboard(
      loadConfig(env({ ROLES: 'api', DURABILITY: 'replicated', REPLICA_WAIT_MS: '50' })),
      log,
    );
    try {
      const c = client(WS.retry);
      const retries: { status: unknown; delayMs: number }[] = [];
      const onRetry = (i: { status: unknown; delayMs: number }) => void retries.push(i);

      // Every try to that instance: 503 each time, the same command id each time (one command appended).
      const stuck = c.with({ url: replicated.url!, retries: 2, onRetry });
      const refused = await failure(stuck.queueContact({ skills: ['retry'], attributes: { n: 1 } }));
      expect(refused).toMatchObject({ status: 503, type: '/problems/not-replicated', attempts: 3 });
      expect(retries.map((r) => r.status)).toEqual([503, 503]);
      expect(retries.every((r) => r.delayMs >= 1000)).toBe(true); // Retry-After: 1

      // As behind a load balancer: the first try meets that instance, the retry another one.
      let calls = 0;
      const balanced = c.with({
        onRetry,
        fetch: (url, init) =>
          fetch(calls++ === 0 ? String(url).replace(main.url!, replicated.url!) : url, init),
      });
      const queued = await balanced.queueContact({ id: 'once', skills: ['retry'] });
      expect(calls).toBe(2);
      expect(queued).toMatchObject({ applied: true, status: 201, replayed: true });

      const events = (await c.events({ types: ['ContactQueued'] })).events;
      expect(events).toHaveLength(2); // one per logical call, whatever the tries
      expect(events[0]!.meta.commandId).toBe(refused.problem?.commandId);
      expect(events[1]!.meta.idempotencyKey).toBe(queued.idempotencyKey);
      expect(events[1]!.data.id).toBe('once');
    } finally {
      await replicated.stop();
    }
  }, 20_000);

  it('failover URLs take turns, the key kept; a number from onRetry replaces the wait (Retry-After included)', async () => {
    // The first base URL answers 503 not-replicated with Retry-After: 1; the failover URL applies.
    const replicated = await startSwitchboard(
      loadConfig(env({ ROLES: 'api', DURABILITY: 'replicated', REPLICA_WAIT_MS: '50' })),
      log,
    );
    try {
      const tries: { url: string; key: string | null; at: number }[] = [];
      const retries: { url: string; status: unknown; delayMs: number; body?: unknown; at: number }[] = [];
      const c = client(WS.retry, {
        url: replicated.url!,
        failover: [`${main.url!}/`],
        fetch: (url, init) => {
          const key = new Headers(init?.headers).get('idempotency-key');
          tries.push({ url: String(url), key, at: Date.now() });
          return fetch(url, init);
        },
        onRetry: (i) => {
          retries.push({ ...i, at: Date.now() });
          return 0;
        },
      });
      const queued = await c.queueContact({ id: 'failover', skills: ['retry'] });
      expect(queued).toMatchObject({ applied: true, status: 201, replayed: true });
      expect(tries.map((t) => new URL(t.url).origin)).toEqual([replicated.url, main.url]);
      expect(new Set(tries.map((t) => t.key))).toEqual(new Set([queued.idempotencyKey]));
      expect(retries).toMatchObject([
        { url: replicated.url, status: 503, attempt: 1, body: { type: '/problems/not-replicated' } },
      ]);
      expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(1000); // what the client would have waited
      // It waited what onRetry said (0 ms), not Retry-After's second.
      expect(tries[1]!.at - retries[0]!.at).toBeLessThan(500);

      // More tries than URLs: they wrap around (url, failover, url), each failed one told to onRetry.
      const stuck = client(WS.retry, {
        url: replicated.url!,
        failover: [replicated.url!.replace('127.0.0.1', 'localhost')],
        retries: 2,
        onRetry: (i) => void retries.push({ ...i, at: Date.now() }),
      });
      retries.length = 0;
      const refused = await failure(stuck.queueContact({ skills: ['retry'] }));
      expect(refused).toMatchObject({ status: 503, attempts: 3 });
      expect(retries.map((r) => new URL(r.url).hostname)).toEqual(['127.0.0.1', 'localhost']);
      expect(retries.every((r) => r.status === 503 && r.body !== undefined)).toBe(true);
      expect(retries[1]!.at - retries[0]!.at).toBeGreaterThanOrEqual(950); // no number: Retry-After waited
    } finally {
      await replicated.stop();
    }
  }, 20_000);
});

/** The operations that are pages and their files, for browsers: no client method. */
const PAGE_OPERATIONS = [
  'wallboardPage',
  'agentDesktopPage',
  'pagesCommonScript',
  'wallboardScript',
  'agentDesktopScript',
  'pagesStyleSheet',
  'uplotScript',
  'uplotStyleSheet',
  'swaggerUiPage',
  'swaggerUiInitScript',
  'swaggerUiScript',
  'swaggerUiStyleSheet',
  'swaggerUiIcon',
];

describe('every operation', () => {
  it("has a method named by its operationId (pages and their files aside), each answering with the document's types", async () => {
    const c = client(WS.intervals);
    const doc = await c.openapiDocument();
    expect(doc.openapi).toMatch(/^3\.1/);
    const ops: { id: string; path: string; content: string[] }[] = [];
    for (const [path, item] of Object.entries(doc.paths))
      for (const op of Object.values(item)) {
        const o = op as { operationId?: string; responses?: Record<string, { content?: object }> };
        if (o.operationId)
          ops.push({ id: o.operationId, path, content: Object.keys(o.responses?.['200']?.content ?? {}) });
      }
    expect(ops.length).toBeGreaterThan(30);
    const methods = ops.filter((o) => !PAGE_OPERATIONS.includes(o.id));
    const missing = methods.filter(
      (o) => typeof (SwitchboardClient.prototype as unknown as Record<string, unknown>)[o.id] !== 'function',
    );
    expect(missing.map((o) => o.id)).toEqual([]);
    // The pages left out are what they say: there, outside /v1, served as HTML, script, style or icon.
    const pages = ops.filter((o) => PAGE_OPERATIONS.includes(o.id));
    expect(pages.map((o) => o.id).sort()).toEqual([...PAGE_OPERATIONS].sort());
    for (const p of pages) {
      expect(p.path.startsWith('/v1/')).toBe(false);
      expect(p.content.length).toBeGreaterThan(0);
      for (const type of p.content) expect(type).toMatch(/html|javascript|css|image\/png/);
    }

    // The methods under their operationIds (the older names are the same calls).
    const reg = await c.registerAgent({ id: 'op-agent', skills: ['op'] });
    if (!reg.applied) throw new Error('not applied in time');
    const got: EventEnvelope[] = [];
    const sub = c.subscribeLive({ after: '0-0', types: ['AgentRegistered'] }, (e) => got.push(e));
    try {
      await sub.ready;
      await waitFor('the registration on the live feed', () => got.length >= 1);
      expect(got[0]).toMatchObject({ type: 'AgentRegistered', data: { id: 'op-agent' } });
    } finally {
      sub.close();
    }
    expect(await c.getSettings()).toEqual(await c.settings());
    expect((await c.getStats({ minPosition: reg.position })).agentsByState.offline).toBe(1);
    const page = await c.listEvents({ types: ['AgentRegistered'] });
    expect(page.events.map((e) => e.data.id)).toEqual(['op-agent']);
    const state = await c.getStateAt(page.events[0]!.position);
    expect(state.agents.map((a) => a.id)).toEqual(['op-agent']);
    expect((await c.createWsTicket()).expiresAt).toMatch(/^\d{4}-/);
    expect((await c.createWsTicket({ after: page.events[0]!.position })).expiresAt).toMatch(/^\d{4}-/);
    const ahead = await c
      .createWsTicket({ after: '99999999999999-0' })
      .catch((e: unknown) => e as SwitchboardError);
    expect(ahead).toMatchObject({ status: 409, type: '/problems/position-ahead' });
    expect((ahead as SwitchboardError).problem?.lastPosition).toMatch(/^\d+-\d+$/);
    const metrics = await c.metrics();
    expect(metrics).toMatch(/^# HELP /m);
    expect(metrics).toContain(`switchboard_workspace_up{workspace="${WS.intervals}"} 1`);
  });

  it('getStatsIntervals: the 15-minute intervals of the log, typed, with its query parameters', async () => {
    const c = client(WS.intervals);
    const from = new Date(Date.now() - 60_000);
    await c.putSettings({ channels: ['voice'] });
    await c.registerAgent({ id: 'iv-agent', skills: ['iv'], capacity: 5 });
    await c.setAgentState('iv-agent', 'available');
    await c.queueContact({ id: 'iv-1', skills: ['iv'] });
    await c.queueContact({ id: 'iv-2', skills: ['iv'] });
    await c.queueContact({ id: 'iv-3', skills: ['nobody'] });
    await waitFor('iv-1 and iv-2 assigned', async () => {
      const docs = await Promise.all(['iv-1', 'iv-2'].map((id) => c.getContact(id)));
      return docs.every((d) => d.state === 'assigned');
    });
    await c.completeContact('iv-1');
    const last = await c.abandonContact('iv-3');
    await c.getContact('iv-3', { minPosition: last.position });
    const to = new Date(Date.now() + 60_000);
    const sum = (r: StatsIntervals, k: 'queued' | 'assigned' | 'completed' | 'abandoned' | 'expired') =>
      r.intervals.reduce((n, i) => n + i[k], 0);
    const expected = { queued: 3, assigned: 2, completed: 1, abandoned: 1, expired: 0 };
    const totals = (r: StatsIntervals) =>
      Object.fromEntries(Object.keys(expected).map((k) => [k, sum(r, k as keyof typeof expected)]));

    // From the log, asked for by name, and with a threshold of its own (Date and string times alike).
    const log = await c.getStatsIntervals({
      from,
      to: to.toISOString(),
      serviceLevelMs: 60_000,
      source: 'log',
    });
    expect(log.source).toBe('log');
    expect(Date.parse(log.from)).toBeLessThanOrEqual(from.getTime());
    expect(Date.parse(log.from) % (15 * 60_000)).toBe(0);
    expect(log.to).toBe(to.toISOString());
    expect(log.intervals.length).toBeGreaterThanOrEqual(1);
    // Each 15 minutes, but the last when the range ends inside it: that one ends at `to`.
    for (const i of log.intervals.slice(0, -1))
      expect(Date.parse(i.to) - Date.parse(i.from)).toBe(15 * 60_000);
    expect(log.intervals.at(-1)!.to).toBe(
      new Date(Math.min(Date.parse(log.intervals.at(-1)!.from) + 15 * 60_000, to.getTime())).toISOString(),
    );
    expect(totals(log)).toEqual(expected);
    const withDecisions = log.intervals.filter((i) => i.assigned > 0);
    for (const i of withDecisions) {
      expect(i.serviceLevel).toBe(1); // both assigned at once: well within 60 s
      expect(i.meanWaitMs).toBeGreaterThanOrEqual(0);
    }
    const queues = Object.assign({}, ...log.intervals.map((i) => i.queues)) as Record<string, unknown>;
    expect(Object.keys(queues).sort()).toEqual(['voice ["iv"]', 'voice ["nobody"]']);

    // The default, on a range reaching past now: the live projection once it has caught up (the log
    // until then), the same figures, with the last event they include.
    const live = await waitFor(
      'the live projection to give the same figures',
      async () => {
        const r = await c.getStatsIntervals({ from: from.toISOString(), to });
        return r.source === 'live' && JSON.stringify(totals(r)) === JSON.stringify(expected) && r;
      },
      { timeoutMs: 15_000 },
    );
    expect(live.position).toMatch(POSITION);
    const abandoned = (await c.listEvents({ types: ['ContactAbandoned'] })).events.at(-1)!;
    expect(comparePositions(live.position!, abandoned.position)).toBeGreaterThanOrEqual(0);

    // A range the API refuses: a typed 400 naming the field.
    const bad = await failure(c.getStatsIntervals({ from: to, to: from }));
    expect(bad).toMatchObject({ status: 400, type: '/problems/invalid-request' });
    expect(bad.errors.map((e) => e.path)).toEqual(['to']);
    const unknownSource = await failure(c.getStatsIntervals({ from, to, source: 'cache' as 'log' }));
    expect(unknownSource).toMatchObject({ status: 400 });
    expect(unknownSource.errors.map((e) => e.path)).toEqual(['source']);
  });
});

describe('the live subscription', () => {
  it('resumes by itself after its sockets are killed and after its instance restarts: no gap, no duplicate', async () => {
    const port = await freePort();
    const apiEnv = env({ ROLES: 'api', PORT: String(port) });
    let api = await startSwitchboard(loadConfig(apiEnv), log);
    const writer = client(WS.live);
    const reader = new SwitchboardClient({ url: api.url!, workspace: WS.live, key: keys[WS.live] });
    const first = await writer.registerAgent({ id: 'live-agent', skills: ['live'] });
    const got: EventEnvelope[] = [];
    const opens: number[] = [];
    const sub = reader.subscribe({ after: '0-0', onOpen: (o) => opens.push(o.reconnects) }, (e) =>
      got.push(e),
    );
    try {
      await sub.ready;
      let n = 0;
      const post = async (k: number) => {
        for (let i = 0; i < k; i++) await writer.queueContact({ id: `lc-${n++}`, skills: ['nobody'] });
      };
      await post(10);
      await waitFor('10 contacts seen', () => got.filter((e) => e.type === 'ContactQueued').length >= 10);

      // 1. The server kills every socket (no close frame, no position advertised).
      for (const s of api.api!.websocketServer.clients) s.terminate();
      await post(10);
      await waitFor(
        '20 contacts seen after the sockets died',
        () => got.filter((e) => e.type === 'ContactQueued').length >= 20,
      );
      expect(sub.reconnects).toBeGreaterThanOrEqual(1);

      // 2. The instance stops (1001 with after=<position>) and, a moment later, starts again on its port.
      await api.stop();
      await post(10); // while no instance serves the subscriber
      await sleep(300);
      api = await startSwitchboard(loadConfig(apiEnv), log);
      await post(10);
      await waitFor(
        '40 contacts seen after the restart',
        () => got.filter((e) => e.type === 'ContactQueued').length >= 40,
        {
          timeoutMs: 15_000,
        },
      );
      expect(sub.reconnects).toBeGreaterThanOrEqual(2);
      expect(opens.length).toBeGreaterThanOrEqual(3);

      // Exactly the log: every event once, in order, from the first.
      const history: EventEnvelope[] = [];
      for await (const e of writer.allEvents({ limit: 1000 })) history.push(e);
      const upTo = got[got.length - 1]!.position;
      expect(got.map((e) => e.position)).toEqual(
        history.map((e) => e.position).filter((p) => comparePositions(p, upTo) <= 0),
      );
      expect(got[0]!.type).toBe('AgentRegistered');
      expect(first.applied).toBe(true);
      expect(sub.position).toBe(upTo);
    } finally {
      sub.close();
      await sub.ended;
      await api.stop();
    }
  }, 30_000);

  it('opens with a one-time ticket for an agent key, filtered to its agent', async () => {
    const c = client(WS.live);
    await c.registerAgent({ id: 'dee', skills: ['d'] });
    await c.registerAgent({ id: 'eve', skills: ['d'] });
    const deeKey = (await c.createKey({ role: 'agent', agentId: 'dee' })).key;
    const got: EventEnvelope[] = [];
    const sub = c
      .with({ key: deeKey })
      .subscribe({ auth: 'ticket', types: ['AgentStateChanged'] }, (e) => got.push(e));
    try {
      await sub.ready;
      await c.setAgentState('eve', 'available');
      await c.setAgentState('dee', 'available');
      await waitFor('dee went available', () => got.length >= 1);
      await sleep(200);
      expect(got.map((e) => e.data.agentId)).toEqual(['dee']);
    } finally {
      sub.close();
    }
    // A key that is no good: the first connection fails and the subscription ends.
    const bad = c.with({ key: 'sb_0000000000000000_nope' }).subscribe({}, () => {});
    await expect(bad.ready).rejects.toMatchObject({ status: 401 });
    await bad.ended;
  });
});

describe('/docs and /metrics', () => {
  it('/docs serves Swagger UI from this server for /openapi.json, with no key', async () => {
    const page = await fetch(`${main.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    const html = await page.text();
    expect(html).toContain('swagger-ui-bundle.js');
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere
    const init = await (await fetch(`${main.url}/docs/init.js`)).text();
    expect(init).toContain("url: '/openapi.json'");
    const bundle = await fetch(`${main.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    expect((await fetch(`${main.url}/docs/swagger-ui.css`)).status).toBe(200);
    const missing = await fetch(`${main.url}/docs/..%2Fpackage.json`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it("/metrics has each workspace's queue depth, longest wait, agents by state and counters", async () => {
    const ws = WS.metrics;
    const c = client(ws);
    await c.putSettings({ channels: ['chat', 'voice'] });
    await c.registerAgent({ id: 'm-agent', skills: ['metrics-x'] });
    await c.registerAgent({ id: 'm-idle', skills: ['metrics-y'] });
    await c.setAgentState('m-agent', 'available');
    await c.queueContact({ id: 'mx', skills: ['metrics-x'] }); // assigned at once
    await c.queueContact({ id: 'm0', skills: ['metrics-a'] });
    await c.abandonContact('m0');
    await c.queueContact({ id: 'm1', skills: ['metrics-a'] });
    await c.queueContact({ id: 'm2', skills: ['metrics-a'] });
    await c.queueContact({ id: 'm3', skills: ['metrics-b'], channel: 'chat' });
    await waitFor('mx assigned', async () => (await c.getContact('mx')).state === 'assigned');
    const text = await (await fetch(`${main.url}/metrics`)).text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    const w = `workspace="${ws}"`;
    expect(value(`switchboard_workspace_up{${w}}`)).toBe(1);
    expect(value(`switchboard_workspace_queued_contacts{${w}}`)).toBe(3);
    expect(value(`switchboard_queue_depth{${w},channel="voice",skills="metrics-a"}`)).toBe(2);
    expect(value(`switchboard_queue_depth{${w},channel="chat",skills="metrics-b"}`)).toBe(1);
    expect(value(`switchboard_queue_skill_sets{${w}}`)).toBe(2);
    expect(value(`switchboard_longest_wait_seconds{${w}}`)).toBeGreaterThan(0);
    expect(value(`switchboard_agents{${w},state="busy"}`)).toBe(1);
    expect(value(`switchboard_agents{${w},state="offline"}`)).toBe(1);
    expect(value(`switchboard_workspace_contacts_queued_total{${w}}`)).toBe(5);
    expect(value(`switchboard_workspace_assignments_total{${w}}`)).toBe(1);
    expect(value(`switchboard_workspace_contacts_abandoned_total{${w}}`)).toBe(1);
    expect(value(`switchboard_workspace_contacts_expired_total{${w}}`)).toBe(0);
    expect(value(`switchboard_service_level_ratio{${w}}`)).toBe(1);
    expect(value(`switchboard_projector_lag_seconds{${w}}`)).toBeLessThan(5);
    expect(text).toMatch(/# TYPE switchboard_workspace_assignments_total counter/);
    expect(text).toMatch(/# TYPE switchboard_queue_depth gauge/);
  });

  it('promtool check metrics finds nothing to report in /metrics', async () => {
    if (!PROMTOOL)
      throw new Error(
        'promtool is not installed, so the metrics lint cannot run: install it with `bash scripts/ensure.sh` as root (npm test does) or `apt-get install prometheus`.',
      );
    const text = await (await fetch(`${main.url}/metrics`)).text();
    const r = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('a scrape while Redis does not answer ends within its budget, the workspaces reported as not up', async () => {
    const admin = redis.adminClient();
    // Redis answers nothing until the checks are done (8 s at most).
    const frozen = await freezeRedis(admin, { atMostMs: 8000 });
    try {
      // Once the instance sees Redis unreachable (its watch: a PING unanswered for 1 s).
      await waitFor('/health 503', async () => (await fetch(`${main.url}/health`)).status === 503, {
        everyMs: 50,
      });
      const t0 = Date.now();
      const res = await fetch(`${main.url}/metrics`);
      const took = Date.now() - t0;
      const text = await res.text();
      expect(res.status).toBe(200);
      // The budget is 1 s; Redis answers nothing until the checks are done, so an answer well
      // within 2.5 s did not wait for it.
      expect(took).toBeLessThan(2_500);
      expect(text).toContain(`switchboard_workspace_up{workspace="${WS.main}"} 0`);
      expect(text).not.toContain(`switchboard_queue_depth{workspace="${WS.main}"`);
      expect(text).toContain('switchboard_http_request_duration_seconds');
    } finally {
      await frozen.thaw();
      admin.disconnect();
    }
    await waitFor('the workspaces up again', async () =>
      (await (await fetch(`${main.url}/metrics`)).text()).includes(
        `switchboard_workspace_up{workspace="${WS.main}"} 1`,
      ),
    );
  });
});
