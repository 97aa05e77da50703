/**
 * /metrics as operators use it (docs/METRICS.md), on real instances against one Redis: two API
 * instances (one with the projector, one API only) and a dispatcher-only process serving its
 * /metrics on METRICS_PORT. It checks the wait-time histogram (each decision counted once, the same
 * on both API instances scraped at once and on an instance started afterwards), the dispatcher's
 * step durations where the dispatcher runs, queue depth and longest wait, assignments, abandons
 * and expirations as counters, the projector's lag in commands and seconds, the WebSocket
 * subscribers, the 202 answers (outcome not known in time), and `promtool check metrics` on the
 * text of all three processes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'metrics-a';
/** A workspace no projector serves: its commands stay unapplied and answer 202. */
const UNSERVED = 'metrics-unserved';
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
if (!PROMTOOL)
  console.warn('promtool is not installed (apt-get install prometheus): the metrics lint is skipped');

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

async function post(url: string, path: string, body: unknown, ws = WS): Promise<Response> {
  return fetch(`${url}/v1/workspaces/${ws}${path}`, {
    method: 'POST',
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
}

async function ok(path: string, body: unknown): Promise<void> {
  const res = await post(a.url!, path, body);
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
}

async function contact(id: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${a.url}/v1/workspaces/${WS}/contacts/${id}`)).json()) as Record<
    string,
    unknown
  >;
}

/** One scrape, as series → value (the series as written, labels and all). */
async function scrape(url: string): Promise<{ text: string; value(series: string): number | undefined }> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text, value: (series) => values.get(series) };
}

const w = `workspace="${WS}"`;
const bucket = (le: string) => `switchboard_wait_seconds_bucket{${w},le="${le}"}`;

beforeAll(async () => {
  redis = await startTestRedis();
  a = await startSwitchboard(env({ ROLES: 'api,projector' }), log);
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
    const events = (await (
      await fetch(`${a.url}/v1/workspaces/${WS}/events?type=AssignmentMade`)
    ).json()) as { events: { data: { contactId: string; waitedMs: number } }[] };
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
  it('serves its step durations and assignments where it runs, and a 404 problem elsewhere', async () => {
    expect(d.url).toBeUndefined();
    expect(d.metricsUrl).toBeDefined();
    const s = await scrape(d.metricsUrl!);
    expect(s.value('switchboard_dispatcher_step_duration_seconds_count')).toBeGreaterThan(0);
    expect(s.value('switchboard_dispatcher_step_duration_seconds_sum')).toBeGreaterThan(0);
    expect(s.value('switchboard_dispatcher_assignments_total')).toBeGreaterThanOrEqual(2);
    expect(s.value(`switchboard_workspace_up{${w}}`)).toBe(1);
    expect(s.text).toMatch(/# TYPE switchboard_dispatcher_step_duration_seconds histogram/);
    // The API instance without a dispatcher observes no step.
    expect((await scrape(a.url!)).value('switchboard_dispatcher_step_duration_seconds_count')).toBe(0);
    const other = await fetch(`${d.metricsUrl}/health`);
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
    expect(((await other.json()) as { type: string }).type).toBe('/problems/no-route');
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
    expect(s.value(`switchboard_agents{${w},state="busy"}`)).toBe(2);
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
    const res = await post(b.url!, '/contacts', { id: 'u1', skills: ['x'] }, UNSERVED);
    expect(res.status).toBe(202);
    await sleep(300);
    // The API-only instance reports the recently active workspaces, this one among them.
    const s = await scrape(b.url!);
    expect(s.value('switchboard_commands_total{type="QueueContact",status="202"}')).toBe(1);
    expect(s.value(`switchboard_projector_lag_commands{workspace="${UNSERVED}"}`)).toBe(1);
    expect(s.value(`switchboard_projector_lag_seconds{workspace="${UNSERVED}"}`)).toBeGreaterThanOrEqual(0.3);
    expect(s.value(`switchboard_projector_lag_commands{${w}}`)).toBe(0);
    expect(s.value(`switchboard_projector_lag_seconds{${w}}`)).toBe(0);
    // The instance with the projector answered its commands with outcomes: no 202.
    expect((await scrape(a.url!)).text).not.toContain('status="202"');
  });

  it('WebSocket subscribers of this instance, up and down', async () => {
    const url = `${a.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`;
    const sockets = [new WebSocket(url), new WebSocket(url)];
    await Promise.all(sockets.map((s) => new Promise((r, j) => s.once('open', r).once('error', j))));
    await waitFor(
      'two subscribers',
      async () => (await scrape(a.url!)).value('switchboard_websocket_subscribers') === 2,
    );
    expect((await scrape(b.url!)).value('switchboard_websocket_subscribers')).toBe(0);
    for (const s of sockets) s.close();
    await waitFor(
      'no subscriber',
      async () => (await scrape(a.url!)).value('switchboard_websocket_subscribers') === 0,
    );
  });

  it.skipIf(!PROMTOOL)('promtool check metrics finds nothing in any process text', async () => {
    for (const url of [a.url!, b.url!, d.metricsUrl!]) {
      const { text } = await scrape(url);
      expect(text).toContain('switchboard_wait_seconds_bucket');
      const r = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`).toBe('');
      expect(r.status).toBe(0);
    }
  });
});
