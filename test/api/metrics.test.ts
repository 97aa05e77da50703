/**
 * /metrics as operators use it (docs/METRICS.md), on real instances against one Redis: two API
 * instances (one with the projector, one API only) and a dispatcher-only process serving its
 * /metrics on METRICS_PORT. It checks the wait-time histogram (each decision counted once, the same
 * on both API instances scraped at once and on an instance started afterwards), the dispatcher's
 * step durations where the dispatcher runs, by workspace, queue depth and longest wait, each
 * queue's longest wait, service level, mean wait and agents by state against a known state,
 * assignments, abandons and expirations as counters, the projector's lag in commands and seconds,
 * the WebSocket subscribers by workspace, the 202 answers (outcome not known in time) by workspace,
 * the answers without an outcome (400, 422, 503) counted as commands too,
 * the bound on the process counts' workspace label, and `promtool check metrics` on the text of all
 * three processes (promtool missing is a failure: scripts/ensure.sh installs it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createMetrics, OTHER_WORKSPACES, setSubscribers } from '../../src/adapters/http/metrics.ts';
import { MAX_SKILL_SET_SERIES } from '../../src/adapters/http/workspace-metrics.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'metrics-a';
/** A workspace no projector serves: its commands stay unapplied and answer 202. */
const UNSERVED = 'metrics-unserved';
/** Every process also serves the default workspace: no work there, its steps find nothing. */
const IDLE = 'default';
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

const log = pino({ level: 'silent' });
let redis: TestRedis;
/** API and projector. */
let a: Running;
/** API only: reports the recently active workspaces. */
let b: Running;
/** Dispatcher only, /metrics on METRICS_PORT. */
let d: Running;

const env = (more: Record<string, string>) =>
  loadConfig({
    AUTH: 'off',
    ...redis.env,
    PORT: '0',
    LOG_LEVEL: 'silent',
    COMMAND_TIMEOUT_MS: '500',
    WORKSPACES: WS,
    DISCOVER_WORKSPACES: 'false',
    ...more,
  });

/** The typed client of an instance, for `ws`; no retries, so each answer asserted is the first. */
const client = (url: string, ws = WS) => new SwitchboardClient({ url, workspace: ws, retries: 0 });

/** A POST under the workspace on instance `a` that must succeed. */
async function ok(path: string, body: unknown): Promise<void> {
  await client(a.url!).request('POST', `/v1/workspaces/${WS}${path}`, body === undefined ? {} : { body });
}

async function contact(id: string): Promise<Record<string, unknown>> {
  return (await client(a.url!).getContact(id)) as unknown as Record<string, unknown>;
}

/** A series with its labels in name order (`a{y="1",x="2"}` → `a{x="2",y="1"}`): as written or as asked. */
function canonical(series: string): string {
  const open = series.indexOf('{');
  if (open < 0) return series;
  const labels = [...series.slice(open + 1, -1).matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
    .map((m) => `${m[1]}="${m[2]}"`)
    .sort();
  return `${series.slice(0, open)}{${labels.join(',')}}`;
}

/** One scrape, as series → value (labels in any order). */
async function scrape(url: string): Promise<{
  text: string;
  value(series: string): number | undefined;
  series(name: string): string[];
}> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const at = line.lastIndexOf(' ');
    values.set(canonical(line.slice(0, at)), Number(line.slice(at + 1)));
  }
  return {
    text,
    value: (series) => values.get(canonical(series)),
    series: (name) => [...values.keys()].filter((k) => k === name || k.startsWith(`${name}{`)),
  };
}

const w = `workspace="${WS}"`;
const bucket = (le: string) => `switchboard_wait_seconds_bucket{${w},le="${le}"}`;

beforeAll(async () => {
  redis = await startTestRedis();
  // The projector's instance has time to spare for its outcomes (a loaded machine answering 202 there
  // would count a 202 where the test says there is none); the API-only one answers 202 soon.
  a = await startSwitchboard(env({ ROLES: 'api,projector', COMMAND_TIMEOUT_MS: '5000' }), log);
  b = await startSwitchboard(env({ ROLES: 'api' }), log);
  d = await startSwitchboard(env({ ROLES: 'dispatcher', METRICS_PORT: '0' }), log);
  await projectorReady(a.redis, [WS]);
}, 30_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), d?.stop()]);
  await redis?.stop();
});

describe('the wait-time histogram', () => {
  it('counts each decision once, in its bucket, the same on every instance and after a new one starts', async () => {
    // The first scrape starts the count at the events' end.
    await ok('/agents', { id: 'early', skills: ['hist'] });
    expect((await scrape(a.url!)).value(`switchboard_wait_seconds_count{${w}}`)).toBe(0);
    // c1 waits 1.5 s or more (no agent), c2 is assigned at once.
    await ok('/contacts', { id: 'c1', skills: ['hist'] });
    await sleep(1_500);
    await ok('/agents/early/state', { state: 'available' });
    await waitFor('c1 assigned', async () => (await contact('c1')).state === 'assigned');
    await ok('/agents', { id: 'second', skills: ['hist'] });
    await ok('/agents/second/state', { state: 'available' });
    await ok('/contacts', { id: 'c2', skills: ['hist'] });
    await waitFor('c2 assigned', async () => (await contact('c2')).state === 'assigned');
    // What each decision's event says it waited: the buckets must hold exactly these.
    const events = (await client(a.url!).listEvents({ types: ['AssignmentMade'] })) as unknown as {
      events: { data: { contactId: string; waitedMs: number } }[];
    };
    const waited = new Map(events.events.map((e) => [e.data.contactId, e.data.waitedMs]));
    expect(waited.get('c1')).toBeGreaterThanOrEqual(1_400);
    expect(waited.get('c2')).toBeLessThan(1_000);
    const le = [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];
    const expected = (bound: number) => [...waited.values()].filter((ms) => ms / 1000 <= bound).length;
    // Both API instances scraped at once, twice: each decision is folded by one of them only.
    const all = await Promise.all([a.url!, b.url!, a.url!, b.url!].map((u) => scrape(u)));
    for (const s of all) {
      expect(s.value(`switchboard_wait_seconds_count{${w}}`)).toBe(2);
      for (const bound of le) expect(s.value(bucket(String(bound))), `le=${bound}`).toBe(expected(bound));
      expect(s.value(bucket('+Inf'))).toBe(2);
      expect(s.value(`switchboard_wait_seconds_sum{${w}}`)).toBeCloseTo(
        (waited.get('c1')! + waited.get('c2')!) / 1000,
        6,
      );
    }
    expect(expected(1)).toBe(1); // c2 at once, c1 after its wait
    expect(all[0]!.text).toMatch(/# TYPE switchboard_wait_seconds histogram/);
    // An instance started now reads the same counts (they are in Redis, not in a process).
    const late = await startSwitchboard(env({ ROLES: 'api' }), log);
    try {
      const s = await scrape(late.url!);
      expect(s.value(`switchboard_wait_seconds_count{${w}}`)).toBe(2);
      for (const bound of le) expect(s.value(bucket(String(bound))), `le=${bound}`).toBe(expected(bound));
    } finally {
      await late.stop();
    }
    // The histogram counts what switchboard_workspace_assignments_total counts.
    expect(all[0]!.value(`switchboard_workspace_assignments_total{${w}}`)).toBe(2);
  });
});

describe('the dispatcher on METRICS_PORT', () => {
  it('serves its step durations by workspace and assignments where it runs, and a 404 problem elsewhere', async () => {
    expect(d.url).toBeUndefined();
    expect(d.metricsUrl).toBeDefined();
    const steps = (ws: string) => `switchboard_dispatcher_step_duration_seconds_count{workspace="${ws}"}`;
    const before = await scrape(d.metricsUrl!);
    // Each workspace the dispatcher serves has its own series (the idle one's steps found nothing),
    // and there is no series without the label.
    expect(before.value(steps(WS))).toBeGreaterThan(0);
    expect(before.value(steps(IDLE))).toBeGreaterThan(0);
    expect(before.series('switchboard_dispatcher_step_duration_seconds_count').sort()).toEqual(
      [steps(WS), steps(IDLE)].sort(),
    );
    expect(before.value(`switchboard_dispatcher_step_duration_seconds_sum{${w}}`)).toBeGreaterThan(0);
    expect(before.value(`switchboard_dispatcher_step_duration_seconds_bucket{${w},le="+Inf"}`)).toBe(
      before.value(steps(WS)),
    );
    // A decision in WS is a step of WS.
    await ok('/agents', { id: 'stepper', skills: ['step'] });
    await ok('/agents/stepper/state', { state: 'available' });
    await ok('/contacts', { id: 'step-1', skills: ['step'] });
    await waitFor('step-1 assigned', async () => (await contact('step-1')).state === 'assigned');
    const s = await scrape(d.metricsUrl!);
    expect(s.value(steps(WS))).toBeGreaterThan(before.value(steps(WS))!);
    expect(s.value('switchboard_dispatcher_assignments_total')).toBeGreaterThanOrEqual(3);
    expect(s.value(`switchboard_workspace_up{${w}}`)).toBe(1);
    expect(s.text).toMatch(/# TYPE switchboard_dispatcher_step_duration_seconds histogram/);
    // The API instance without a dispatcher observes no step.
    expect((await scrape(a.url!)).series('switchboard_dispatcher_step_duration_seconds_count')).toEqual([]);
    const other = await fetch(`${d.metricsUrl}/health`);
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
    expect(((await other.json()) as { type: string }).type).toBe('/problems/no-route');
  });
});

describe('a standby dispatcher on METRICS_PORT', () => {
  it('reports no workspace while it serves none (docs/METRICS.md), not the recently active ones', async () => {
    // A second dispatcher for the same workspaces: the first holds their leases, so it serves none
    // (its next round, which could take one the first lets go, is 10 s after its first).
    const standby = await startSwitchboard(
      env({ ROLES: 'dispatcher', METRICS_PORT: '0', LEASE_TTL_MS: '30000' }),
      log,
    );
    try {
      await ok('/agents', { id: 'standby-probe', skills: ['probe'] }); // WS active in the last hour
      const s = await scrape(standby.metricsUrl!);
      expect(s.series('switchboard_workspace_up')).toEqual([]);
      expect(s.series('switchboard_workspace_queued_contacts')).toEqual([]);
      // The API-only instance reports the active ones, WS among them.
      expect((await scrape(b.url!)).value(`switchboard_workspace_up{${w}}`)).toBe(1);
    } finally {
      await standby.stop();
    }
  });
});

describe('queues, counters, lag, subscribers and 202s', () => {
  it('queue depth and longest wait; abandons and expirations as counters', async () => {
    await ok('/contacts', { id: 'q1', skills: ['nobody'] });
    await ok('/contacts', { id: 'q2', skills: ['nobody'] });
    await ok('/contacts/q2/abandon', undefined);
    await ok('/contacts', { id: 'q3', skills: ['nobody-else'], maxWaitMs: 200 });
    await waitFor('q3 expired', async () => (await contact('q3')).state === 'expired');
    await sleep(300);
    const s = await scrape(a.url!);
    expect(s.value(`switchboard_queue_depth{${w},channel="voice",skills="nobody"}`)).toBe(1);
    expect(s.value(`switchboard_workspace_queued_contacts{${w}}`)).toBe(1);
    expect(s.value(`switchboard_longest_wait_seconds{${w}}`)).toBeGreaterThanOrEqual(0.3);
    expect(s.value(`switchboard_workspace_contacts_abandoned_total{${w}}`)).toBe(1);
    expect(s.value(`switchboard_workspace_contacts_expired_total{${w}}`)).toBe(1);
    expect(s.value(`switchboard_agents{${w},state="busy"}`)).toBe(3);
    for (const name of [
      'switchboard_workspace_contacts_abandoned_total',
      'switchboard_workspace_contacts_expired_total',
      'switchboard_workspace_assignments_total',
      'switchboard_commands_total',
    ])
      expect(s.text).toContain(`# TYPE ${name} counter`);
    for (const name of [
      'switchboard_queue_depth',
      'switchboard_longest_wait_seconds',
      'switchboard_projector_lag_commands',
      'switchboard_websocket_subscribers',
    ])
      expect(s.text).toContain(`# TYPE ${name} gauge`);
  });

  it('a command no projector applies: a 202 counted, and the lag in commands and seconds', async () => {
    const res = await client(b.url!, UNSERVED).send('POST', `/v1/workspaces/${UNSERVED}/contacts`, {
      body: { id: 'u1', skills: ['x'] },
    });
    expect(res.status).toBe(202);
    await sleep(300);
    // The API-only instance reports the recently active workspaces, this one among them.
    const s = await scrape(b.url!);
    expect(
      s.value(`switchboard_commands_total{workspace="${UNSERVED}",type="QueueContact",status="202"}`),
    ).toBe(1);
    expect(s.series('switchboard_commands_total').filter((x) => x.includes('status="202"'))).toEqual([
      canonical(`switchboard_commands_total{workspace="${UNSERVED}",type="QueueContact",status="202"}`),
    ]);
    expect(s.value(`switchboard_projector_lag_commands{workspace="${UNSERVED}"}`)).toBe(1);
    expect(s.value(`switchboard_projector_lag_seconds{workspace="${UNSERVED}"}`)).toBeGreaterThanOrEqual(0.3);
    expect(s.value(`switchboard_projector_lag_commands{${w}}`)).toBe(0);
    expect(s.value(`switchboard_projector_lag_seconds{${w}}`)).toBe(0);
    // The instance with the projector answered its commands with outcomes, counted in their workspace: no 202.
    const sa = await scrape(a.url!);
    expect(sa.text).not.toContain('status="202"');
    expect(sa.value(`switchboard_commands_total{${w},type="QueueContact",status="201"}`)).toBeGreaterThan(0);
  });

  it('every answer to a command is counted: a reused Idempotency-Key (422), a bad one (400), Redis away (503)', async () => {
    const typed = (status: number) =>
      `switchboard_commands_total{${w},type="RegisterAgent",status="${status}"}`;
    const before = await scrape(a.url!);
    const post = (id: string, headers: Record<string, string>) =>
      fetch(`${a.url}/v1/workspaces/${WS}/agents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ id, skills: ['x'] }),
      });
    expect((await post('counted-1', { 'idempotency-key': 'counted-key' })).status).toBe(201);
    expect((await post('counted-2', { 'idempotency-key': 'counted-key' })).status).toBe(422);
    expect((await post('counted-3', { 'idempotency-key': '' })).status).toBe(400);
    const after = await scrape(a.url!);
    for (const status of [201, 422, 400])
      expect((after.value(typed(status)) ?? 0) - (before.value(typed(status)) ?? 0), String(status)).toBe(1);

    // An instance whose Redis is gone answers 503 redis-unavailable, and counts it. (On the single
    // target: the counting is the same code on both, and a cluster of its own would cost the run a
    // cluster from the pool.)
    if (redis.target !== 'single') return;
    const gone = await startTestRedis();
    const e = await startSwitchboard(
      loadConfig({
        AUTH: 'off',
        ...gone.env,
        PORT: '0',
        LOG_LEVEL: 'silent',
        ROLES: 'api',
        WORKSPACES: WS,
        DISCOVER_WORKSPACES: 'false',
      }),
      log,
    );
    try {
      await gone.stop();
      const res = await fetch(`${e.url}/v1/workspaces/${WS}/contacts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'counted-c', skills: ['x'] }),
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { type: string }).type).toMatch(/redis-unavailable$/);
      const s = await scrape(e.url!);
      expect(s.value(`switchboard_commands_total{${w},type="QueueContact",status="503"}`)).toBe(1);
    } finally {
      await e.stop();
    }
  });

  it('WebSocket subscribers of this instance by workspace, up and down', async () => {
    const live = (ws: string) => `${a.url!.replace(/^http/, 'ws')}/v1/workspaces/${ws}/events/live`;
    const sockets = [new WebSocket(live(WS)), new WebSocket(live(WS)), new WebSocket(live(UNSERVED))];
    await Promise.all(sockets.map((s) => new Promise((r, j) => s.once('open', r).once('error', j))));
    const subs = (ws: string) => `switchboard_websocket_subscribers{workspace="${ws}"}`;
    await waitFor('two subscribers of one workspace, one of another', async () => {
      const s = await scrape(a.url!);
      return s.value(subs(WS)) === 2 && s.value(subs(UNSERVED)) === 1;
    });
    // The other instance has none of them (its UNSERVED tail has a command waiter, not a subscriber).
    const sb = await scrape(b.url!);
    for (const series of sb.series('switchboard_websocket_subscribers')) expect(sb.value(series)).toBe(0);
    sockets[2]!.close();
    await waitFor('the other workspace has none', async () => {
      const s = await scrape(a.url!);
      return s.value(subs(WS)) === 2 && s.value(subs(UNSERVED)) === 0;
    });
    for (const s of sockets) s.close();
    await waitFor('no subscriber', async () => (await scrape(a.url!)).value(subs(WS)) === 0);
  });

  it('each queue: longest wait, service level, mean wait, and agents by state who may serve it', async () => {
    // Two agents may serve "pq": one takes the first contact (busy), one is away; an available
    // agent with other skills serves none of it. The first contact waits 300 ms, the second waits on.
    await ok('/agents', { id: 'pq-1', skills: ['pq'] });
    await ok('/agents', { id: 'pq-2', skills: ['pq'] });
    await ok('/agents', { id: 'pq-other', skills: ['pq-not'] });
    await ok('/agents/pq-2/state', { state: 'away' });
    await ok('/agents/pq-other/state', { state: 'available' });
    await ok('/contacts', { id: 'pq-a', skills: ['pq'] });
    await sleep(300);
    await ok('/agents/pq-1/state', { state: 'available' });
    await waitFor('pq-a assigned', async () => (await contact('pq-a')).state === 'assigned');
    await ok('/contacts', { id: 'pq-b', skills: ['pq'] });
    const queuedAt = Date.parse((await contact('pq-b')).queuedAt as string);
    await sleep(400);
    const events = (await client(a.url!).listEvents({ types: ['AssignmentMade'] })) as unknown as {
      events: { data: { contactId: string; waitedMs: number } }[];
    };
    const waitedMs = events.events.find((e) => e.data.contactId === 'pq-a')!.data.waitedMs;
    expect(waitedMs).toBeGreaterThanOrEqual(250);
    const from = Date.now();
    const s = await scrape(a.url!);
    const to = Date.now();
    const q = `${w},channel="voice",skills="pq"`;
    expect(s.value(`switchboard_queue_depth{${q}}`)).toBe(1);
    const longest = s.value(`switchboard_queue_longest_wait_seconds{${q}}`)!;
    // Measured by Redis's clock as the process carries it (read to within half a round trip, in
    // whole ms), against this host's: a few ms either way.
    expect(longest * 1000).toBeGreaterThanOrEqual(from - queuedAt - 10);
    expect(longest * 1000).toBeLessThanOrEqual(to - queuedAt + 10);
    expect(s.value(`switchboard_queue_service_level_ratio{${q}}`)).toBe(1);
    expect(s.value(`switchboard_queue_recent_mean_wait_seconds{${q}}`)).toBe(waitedMs / 1000);
    const agents = { offline: 0, available: 0, away: 1, busy: 1, wrapup: 0, reserved: 0 };
    for (const [state, n] of Object.entries(agents))
      expect(s.value(`switchboard_queue_agents{${q},state="${state}"}`), state).toBe(n);
    // A queue with contacts waiting and no decision: its longest wait, no service level or mean wait.
    const nobody = `${w},channel="voice",skills="nobody"`;
    expect(s.value(`switchboard_queue_longest_wait_seconds{${nobody}}`)).toBeGreaterThan(0.3);
    expect(s.value(`switchboard_queue_service_level_ratio{${nobody}}`)).toBeUndefined();
    expect(s.value(`switchboard_queue_recent_mean_wait_seconds{${nobody}}`)).toBeUndefined();
    expect(s.value(`switchboard_queue_agents{${nobody},state="available"}`)).toBe(0);
    // What GET /stats answers for the queue (the same read).
    const stats = (await client(a.url!).getStats()) as unknown as {
      queues: { channel: string; skills: string; agents: Record<string, number>; meanWaitMs: number }[];
    };
    const pq = stats.queues.find((x) => x.channel === 'voice' && x.skills === 'pq')!;
    expect(pq.agents).toEqual(agents);
    expect(pq.meanWaitMs).toBe(waitedMs);
    // Occupancy: of pq's agents only pq-1 is present, holding 1 of its 1; the window's decision.
    expect(s.value(`switchboard_queue_occupancy_ratio{${q}}`)).toBe(1);
    expect(s.value(`switchboard_queue_occupancy_ratio{${nobody}}`)).toBeUndefined();
    expect(s.value(`switchboard_queue_recent_contacts{${q},what="assigned"}`)).toBe(1);
    expect(s.value(`switchboard_queue_recent_contacts{${q},what="abandoned"}`)).toBe(0);
    const occupancy = s.value(`switchboard_occupancy_ratio{${w}}`)!;
    expect(occupancy).toBeGreaterThan(0);
    expect(occupancy).toBeLessThanOrEqual(1);
    // pq-b gives up: counted in its queue's window and the workspace's.
    const endedBefore = s.value(`switchboard_recent_contacts_ended{${w},how="abandoned"}`) ?? 0;
    await ok('/contacts/pq-b/abandon', {});
    const after = await scrape(a.url!);
    expect(after.value(`switchboard_queue_recent_contacts{${q},what="abandoned"}`)).toBe(1);
    expect(after.value(`switchboard_queue_recent_contacts{${q},what="expired"}`)).toBe(0);
    expect(after.value(`switchboard_recent_contacts_ended{${w},how="abandoned"}`)).toBe(endedBefore + 1);
    for (const name of [
      'switchboard_queue_longest_wait_seconds',
      'switchboard_queue_service_level_ratio',
      'switchboard_queue_recent_mean_wait_seconds',
      'switchboard_queue_agents',
      'switchboard_queue_occupancy_ratio',
      'switchboard_queue_recent_contacts',
      'switchboard_occupancy_ratio',
      'switchboard_recent_contacts_ended',
    ])
      expect(s.text).toContain(`# TYPE ${name} gauge`);
  });

  it('more queues than MAX_SKILL_SET_SERIES: the deepest named, the rest as _other (summed, longest, pooled window)', async () => {
    // 51 queues more with a contact waiting each: with those of the tests above, more than 50.
    for (let i = 0; i <= MAX_SKILL_SET_SERIES; i++)
      await ok('/contacts', { id: `many-${i}`, skills: [`many-${i}`] });
    await waitFor(
      '51 queues more',
      async () => (await contact(`many-${MAX_SKILL_SET_SERIES}`)).state === 'queued',
    );
    type Q = {
      channel: string;
      skills: string;
      queued: number;
      assignments: number;
      longestWaitMs: number | null;
      serviceLevel: number | null;
      meanWaitMs: number | null;
    };
    const stats = (await client(a.url!).getStats()) as unknown as { queues: Q[] };
    const s = await scrape(a.url!);
    // The order docs/METRICS.md gives: deepest first (equal depths by name), then those with none
    // waiting by their decisions in the window.
    const name = (q: Q) => `${q.channel}${q.skills}`;
    const ordered = [...stats.queues].sort(
      (x, y) =>
        y.queued - x.queued ||
        (x.queued === 0 ? y.assignments - x.assignments : 0) ||
        (name(x) < name(y) ? -1 : 1),
    );
    const named = ordered.slice(0, MAX_SKILL_SET_SERIES);
    const rest = ordered.slice(MAX_SKILL_SET_SERIES);
    expect(rest.length).toBeGreaterThan(0);
    const other = `${w},channel="_other",skills="_other"`;
    for (const gauge of ['switchboard_queue_longest_wait_seconds', 'switchboard_queue_agents']) {
      const labelled = new Set(
        s
          .series(gauge)
          .filter((x) => x.includes(w) && !x.includes('"_other"'))
          .map((x) => /skills="([^"]*)"/.exec(x)![1]),
      );
      expect(labelled, gauge).toEqual(new Set(named.map((q) => q.skills)));
    }
    expect(s.series('switchboard_queue_agents').filter((x) => x.includes('"_other"'))).toEqual([]);
    expect(s.value(`switchboard_queue_depth{${other}}`)).toBe(rest.reduce((n, q) => n + q.queued, 0));
    // The rest's longest wait: the longest of theirs (it grew by the time between the two reads).
    const longest = Math.max(...rest.map((q) => q.longestWaitMs ?? 0)) / 1000;
    expect(s.value(`switchboard_queue_longest_wait_seconds{${other}}`)).toBeGreaterThanOrEqual(longest);
    expect(s.value(`switchboard_queue_longest_wait_seconds{${other}}`)).toBeLessThan(longest + 5);
    // Their decisions pooled: the service level and mean wait over all of them.
    const decided = rest.reduce((n, q) => n + q.assignments, 0);
    expect(decided).toBeGreaterThan(0);
    const pooled = (f: (q: Q) => number) => rest.reduce((x, q) => x + f(q) * q.assignments, 0) / decided;
    expect(s.value(`switchboard_queue_service_level_ratio{${other}}`)).toBeCloseTo(
      pooled((q) => q.serviceLevel ?? 0),
      6,
    );
    expect(s.value(`switchboard_queue_recent_mean_wait_seconds{${other}}`)).toBeCloseTo(
      pooled((q) => q.meanWaitMs ?? 0) / 1000,
      6,
    );
  });

  it('the process counts name at most MAX_WORKSPACES workspaces, the rest as one', async () => {
    const m = createMetrics(2);
    for (const ws of ['w1', 'w2', 'w3', 'w4', 'w1']) {
      m.countCommand(ws, 'QueueContact', 202);
      m.observeStep(0.001, ws);
    }
    const byWorkspace = async (metric: {
      get(): Promise<{ values: { labels: object; value: number; metricName?: string }[] }>;
    }) =>
      new Map(
        (await metric.get()).values
          .filter((v) => !v.metricName || v.metricName.endsWith('_count'))
          .map((v) => [(v.labels as { workspace: string }).workspace, v.value]),
      );
    const expected = new Map([
      ['w1', 2],
      ['w2', 1],
      [OTHER_WORKSPACES, 2],
    ]);
    expect(await byWorkspace(m.commands)).toEqual(expected);
    expect(await byWorkspace(m.dispatchStep)).toEqual(expected);
    // Subscribers: the first by name, the rest summed.
    setSubscribers(
      m.subscribers,
      new Map([
        ['b', 1],
        ['a', 2],
        ['c', 3],
        ['d', 4],
      ]),
      2,
    );
    expect(await byWorkspace(m.subscribers)).toEqual(
      new Map([
        ['a', 2],
        ['b', 1],
        [OTHER_WORKSPACES, 7],
      ]),
    );
  });

  it('promtool check metrics finds nothing in any process text', async () => {
    if (!PROMTOOL)
      throw new Error(
        'promtool is not installed, so the metrics lint cannot run: install it with `bash scripts/ensure.sh` as root (npm test does) or `apt-get install prometheus`.',
      );
    for (const url of [a.url!, b.url!, d.metricsUrl!]) {
      // A scrape whose workspace reads run past SCRAPE_BUDGET_MS (a loaded machine, the cluster
      // target) reports the workspace up 0 and leaves its series out: scraped again until they
      // are in, so the lint sees the histogram.
      let text = '';
      await waitFor(`${url}: the wait histogram in a scrape`, async () => {
        text = (await scrape(url)).text;
        return text.includes('switchboard_wait_seconds_bucket');
      });
      const r = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`).toBe('');
      expect(r.status).toBe(0);
    }
  });
});
