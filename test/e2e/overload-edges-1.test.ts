/**
 * Commands sent while the workspace's projector is stopped (SIGSTOP: a process hung, a host
 * frozen), real API, projector and dispatcher processes on a real Redis: each POST answers `202`
 * within the outcome wait with its position, command id, id and `Location`; a read with
 * `minPosition` past the applied position answers `503` `position-not-reached` within the query
 * wait (one past the last command `409` at once); the API process holds no growing set of waiters;
 * the projector's lag metrics and the `202` counter say the projector is behind while `/health`
 * stays 200; once it continues every command applies once, in order, and the lag returns to 0.
 * With the dispatcher stopped instead, contacts queue and, when it continues, are assigned by
 * priority and then arrival, and the maximum waits that came due meanwhile expire once each.
 * OVERLOAD_COMMANDS sets how many commands are sent while stopped (default 600).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const N = Number(process.env.OVERLOAD_COMMANDS ?? 600);
const COMMAND_TIMEOUT_MS = 1000;
const QUERY_TIMEOUT_MS = 1000;
// Room for a loaded machine on top of the waits (a run at load 8 took 48 ms past 1,500 on the
// burst's slowest 202); a request held until the projector continues would take many seconds.
const SLACK_MS = 2500;

let redis: TestRedis;
let admin: RedisClient;
let api: SwitchboardProcess;
let projector: SwitchboardProcess;
let dispatcher: SwitchboardProcess;

beforeAll(async () => {
  redis = await startTestRedis();
  admin = redis.adminClient();
  [api, projector, dispatcher] = await Promise.all([
    startProcess({
      roles: 'api',
      redis,
      env: {
        COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
        QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
        RATE_LIMIT: 'off',
      },
    }),
    startProcess({ roles: 'projector', redis, name: 'projector' }),
    startProcess({ roles: 'dispatcher', redis, name: 'dispatcher' }),
  ]);
}, 60_000);

afterAll(async () => {
  for (const p of [projector, dispatcher]) if (p?.running) p.kill('SIGCONT');
  await killAllProcesses();
  admin?.disconnect();
  await redis?.stop();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
  ms: number;
}

async function call(method: string, url: string, body?: unknown): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: res.headers,
    ms: performance.now() - t0,
  };
}

async function metric(name: string, ws: string): Promise<number | undefined> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const re = new RegExp(`^${name}\\{[^}]*workspace="${ws}"[^}]*\\} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

async function counted(ws: string, status: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n'))
    if (
      line.startsWith('switchboard_commands_total{') &&
      line.includes(`workspace="${ws}"`) &&
      line.includes(`status="${status}"`)
    )
      n += Number(line.split(' ').pop());
  return n;
}

/** The API process's resident set, from /proc. */
function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

async function events(ws: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const entries = (await admin.xrange(workspaceKeys(ws).events, '-', '+')) as [string, string[]][];
  return entries.map(([, f]) => JSON.parse(f[f.indexOf('event') + 1]!));
}

async function inBatches<T>(n: number, width: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await f(i);
      }
    }),
  );
  return out;
}

describe('the projector stopped under a stream of commands', () => {
  it('answers each within the documented waits, holds nothing, and applies every command once, in order, when it continues', async () => {
    const ws = 'overload-projector';
    const base = `${api.url}/v1/workspaces/${ws}`;
    expect((await call('POST', `${base}/agents`, { id: 'ana', skills: ['x'] })).status).toBe(201);
    // What the same burst costs when applied at once (this machine's load): a 202 is that plus the wait.
    const applied = await inBatches(N, 200, (i) =>
      call('POST', `${api.url}/v1/workspaces/overload-baseline/contacts`, { id: `b-${i}`, skills: ['x'] }),
    );
    // Applied at once; on a loaded machine some outlast the outcome wait and answer the documented
    // 202 (applied later): the burst is a measure of the machine here, not what is tested.
    expect(applied.filter((a) => a.status !== 201 && a.status !== 202)).toEqual([]);
    const baseline = Math.max(...applied.map((a) => a.ms));
    const rss0 = rssKb(api.pid);

    projector.kill('SIGSTOP');
    const answers = await inBatches(N, 200, (i) =>
      call('POST', `${base}/contacts`, { id: `c-${i}`, skills: ['x'], priority: i % 3 }),
    );
    const statuses = new Map<number, number>();
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    expect(Object.fromEntries(statuses)).toEqual({ 202: N });
    const slowest = Math.max(...answers.map((a) => a.ms));
    const sorted = answers.map((a) => Math.round(a.ms)).sort((a, b) => a - b);
    const quantiles = [0, 0.5, 0.9, 0.99, 1].map(
      (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))],
    );
    expect(
      slowest,
      `each 202 within the outcome wait (applied at once: slowest ${Math.round(baseline)} ms; ms at 0, p50, p90, p99, max: ${quantiles.join(', ')}; first 10 sent: ${answers
        .slice(0, 10)
        .map((a) => Math.round(a.ms))
        .join(', ')})`,
    ).toBeLessThan(COMMAND_TIMEOUT_MS + baseline + SLACK_MS);
    for (const [i, a] of answers.entries()) {
      expect(a.body).toEqual({ position: expect.any(String), commandId: expect.any(String), id: `c-${i}` });
      expect(a.headers.get('location')).toBe(`/v1/workspaces/${ws}/contacts/c-${i}`);
    }
    expect(new Set(answers.map((a) => a.body.commandId)).size).toBe(N);

    // A read of its own write waits the query wait and answers 503; past the last command, 409 at once.
    const last = answers
      .map((a) => a.body.position as string)
      .sort(comparePos)
      .at(-1)!;
    const notReached = await call('GET', `${base}/contacts/c-0?minPosition=${answers[0]!.body.position}`);
    expect(notReached.status).toBe(503);
    expect(notReached.body.type).toMatch(/\/problems\/position-not-reached$/);
    expect(notReached.ms).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 50);
    expect(notReached.ms).toBeLessThan(QUERY_TIMEOUT_MS + SLACK_MS);
    const [ms, seq] = last.split('-').map(Number) as [number, number];
    const ahead = await call('GET', `${base}/contacts/c-0?minPosition=${ms}-${seq + 1}`);
    expect(ahead.status).toBe(409);
    expect(ahead.body.lastPosition).toBe(last);
    expect(ahead.ms).toBeLessThan(500);

    // Behind, as the metrics say; the instance itself is healthy (it can serve). The oldest command
    // waiting is already older than the 202s' outcome wait and the 503's query wait together.
    await waitFor(
      'the projector lag over a second',
      async () => ((await metric('switchboard_projector_lag_seconds', ws)) ?? 0) > 1,
      { timeoutMs: 5_000, everyMs: 50 },
    );
    expect(await metric('switchboard_projector_lag_seconds', ws)).toBeGreaterThan(1);
    expect(await metric('switchboard_projector_lag_commands', ws)).toBe(Math.min(N, 1000));
    expect(await counted(ws, '202')).toBe(N);
    expect((await call('GET', `${api.url}/health`)).status).toBe(200);
    const rss1 = rssKb(api.pid);

    projector.kill('SIGCONT');
    await waitFor(
      'every contact queued',
      async () => (await events(ws)).filter((e) => e.type === 'ContactQueued').length >= N,
      { timeoutMs: 30_000 },
    );
    const queued = (await events(ws)).filter((e) => e.type === 'ContactQueued');
    const byPosition = answers
      .map((a, i) => ({ i, position: a.body.position as string }))
      .sort((a, b) => comparePos(a.position, b.position))
      .map((a) => `c-${a.i}`);
    expect(queued.map((e) => e.data.id)).toEqual(byPosition);
    const read = await call('GET', `${base}/contacts/c-${N - 1}?minPosition=${last}`);
    expect(read.status).toBe(200);
    expect(read.body.state).toBe('queued');
    await waitFor(
      'lag back to 0',
      async () => (await metric('switchboard_projector_lag_commands', ws)) === 0,
      {
        timeoutMs: 10_000,
      },
    );
    expect(await metric('switchboard_projector_lag_seconds', ws)).toBe(0);
    // What a stop costs the API: not proportional to what it answered meanwhile.
    console.log(
      `overload: ${N} 201s slowest ${baseline.toFixed(0)} ms; ${N} 202s: ${quantiles.join(', ')} ms, slowest ${slowest.toFixed(0)} ms, API RSS ${rss0} -> ${rss1} kB`,
    );
  }, 60_000);
});

describe('the dispatcher stopped', () => {
  it('queues contacts and, when it continues, assigns them by priority then arrival, expiring those past their maximum wait once', async () => {
    const ws = 'overload-dispatcher';
    projector.kill('SIGCONT'); // whatever the suite before left
    const base = `${api.url}/v1/workspaces/${ws}`;
    expect((await call('POST', `${base}/agents`, { id: 'ana', skills: ['x'], capacity: 100 })).status).toBe(
      201,
    );
    dispatcher.kill('SIGSTOP');
    expect((await call('POST', `${base}/agents/ana/state`, { state: 'available' })).status).toBe(200);
    const sent: { id: string; priority: number }[] = [];
    for (let i = 0; i < 30; i++) {
      const c = { id: `d-${i}`, priority: i % 3 };
      expect((await call('POST', `${base}/contacts`, { ...c, skills: ['x'] })).status).toBe(201);
      sent.push(c);
    }
    const short = ['e-0', 'e-1', 'e-2'];
    for (const id of short)
      expect((await call('POST', `${base}/contacts`, { id, skills: ['y'], maxWaitMs: 300 })).status).toBe(
        201,
      );
    // Past their maximum wait (each was queued when its 201 came) by 500 ms and more.
    await sleep(800);
    expect(
      (await events(ws)).filter((e) => e.type === 'AssignmentMade' || e.type === 'ContactExpired'),
    ).toEqual([]);
    dispatcher.kill('SIGCONT');
    await waitFor(
      'every contact assigned or expired',
      async () =>
        (await events(ws)).filter((e) => e.type === 'AssignmentMade' || e.type === 'ContactExpired').length >=
        sent.length + short.length,
      { timeoutMs: 15_000 },
    );
    await sleep(500);
    const all = await events(ws);
    const made = all.filter((e) => e.type === 'AssignmentMade').map((e) => e.data.contactId);
    const expected = [...sent].sort((a, b) => b.priority - a.priority).map((c) => c.id); // stable: arrival
    expect(made).toEqual(expected);
    const expired = all.filter((e) => e.type === 'ContactExpired').map((e) => e.data.contactId);
    expect(expired).toEqual(short);
  }, 60_000);
});

describe('an offer whose time runs out while the dispatcher is stopped', () => {
  it('expires once, in the order the offers were made, when the dispatcher continues', async () => {
    const ws = 'overload-offers';
    const base = `${api.url}/v1/workspaces/${ws}`;
    projector.kill('SIGCONT');
    dispatcher.kill('SIGCONT');
    expect((await call('PUT', `${base}/settings`, { offerTimeoutMs: 600 })).status).toBe(200);
    const agents = ['a0', 'a1', 'a2'];
    for (const id of agents) {
      expect((await call('POST', `${base}/agents`, { id, skills: ['x'] })).status).toBe(201);
      expect((await call('POST', `${base}/agents/${id}/state`, { state: 'available' })).status).toBe(200);
    }
    for (let i = 0; i < 3; i++)
      expect((await call('POST', `${base}/contacts`, { id: `o-${i}`, skills: ['x'] })).status).toBe(201);
    await waitFor(
      'three offers',
      async () => (await events(ws)).filter((e) => e.type === 'AssignmentMade').length === 3,
      {
        timeoutMs: 10_000,
      },
    );
    dispatcher.kill('SIGSTOP');
    // Past the offers' time (each made before the stop) by 400 ms and more.
    await sleep(1000);
    const during = await events(ws);
    expect(during.filter((e) => e.type === 'AssignmentExpired')).toEqual([]);
    dispatcher.kill('SIGCONT');
    await waitFor(
      'three expiries',
      async () => (await events(ws)).filter((e) => e.type === 'AssignmentExpired').length >= 3,
      { timeoutMs: 10_000 },
    );
    await sleep(1000);
    const all = await events(ws);
    const offered = all.filter((e) => e.type === 'AssignmentMade').map((e) => e.data.contactId);
    expect(all.filter((e) => e.type === 'AssignmentExpired').map((e) => e.data.contactId)).toEqual(offered);
    // Each agent missed its offer: away, once.
    const away = all
      .filter((e) => e.type === 'AgentStateChanged' && e.data.to === 'away')
      .map((e) => e.data.agentId);
    expect(away.sort()).toEqual(agents);
  }, 60_000);
});

describe('a burst over the rate limit while the projector is stopped', () => {
  it('refuses what is over with 429 and Retry-After, appends none of it, and applies the rest once', async () => {
    const ws = 'overload-burst';
    const limited = await startProcess({
      roles: 'api',
      redis,
      name: 'rate-limited api',
      env: { COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS), RATE_LIMIT: '20', RATE_LIMIT_BURST: '40' },
    });
    try {
      const base = `${limited.url}/v1/workspaces/${ws}`;
      projector.kill('SIGSTOP');
      const answers = await inBatches(120, 120, (i) =>
        call('POST', `${base}/contacts`, { id: `r-${i}`, skills: ['x'] }),
      );
      const ok = answers.flatMap((a, i) => (a.status === 202 ? [i] : []));
      const refused = answers.filter((a) => a.status === 429);
      expect(ok.length + refused.length, answers.map((a) => a.status).join(',')).toBe(120);
      expect(ok.length).toBeGreaterThanOrEqual(40);
      expect(ok.length).toBeLessThan(80);
      for (const a of refused) {
        expect(a.body.type).toMatch(/\/problems\/rate-limited$/);
        expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      expect(await admin.xlen(workspaceKeys(ws).commands)).toBe(ok.length);
      projector.kill('SIGCONT');
      await waitFor(
        'the accepted ones queued',
        async () => (await events(ws)).filter((e) => e.type === 'ContactQueued').length >= ok.length,
        { timeoutMs: 15_000 },
      );
      await sleep(500);
      const queued = (await events(ws))
        .filter((e) => e.type === 'ContactQueued')
        .map((e) => e.data.id as string);
      expect([...queued].sort()).toEqual(ok.map((i) => `r-${i}`).sort());
    } finally {
      projector.kill('SIGCONT');
      await limited.stop();
    }
  }, 60_000);
});

describe('a dispatcher stopped while it holds the lease, another beside it', () => {
  it('is replaced within the lease time, and when it continues no contact is assigned twice and no timer fires twice', async () => {
    const ws = 'overload-two-dispatchers';
    const base = `${api.url}/v1/workspaces/${ws}`;
    projector.kill('SIGCONT');
    dispatcher.kill('SIGCONT');
    expect((await call('PUT', `${base}/settings`, { offerTimeoutMs: 800 })).status).toBe(200);
    expect((await call('POST', `${base}/agents`, { id: 'ana', skills: ['x'], capacity: 50 })).status).toBe(
      201,
    );
    expect((await call('POST', `${base}/agents/ana/state`, { state: 'available' })).status).toBe(200);
    await waitFor('the lease taken', async () => (await admin.exists(workspaceKeys(ws).lease)) === 1, {
      timeoutMs: 10_000,
    });
    dispatcher.kill('SIGSTOP');
    const other = await startProcess({ roles: 'dispatcher', redis, name: 'second dispatcher' });
    try {
      const t0 = Date.now();
      for (let i = 0; i < 20; i++)
        expect(
          (await call('POST', `${base}/contacts`, { id: `t-${i}`, skills: ['x'], maxWaitMs: 6000 })).status,
        ).toBe(201);
      await waitFor(
        'the first offer by the other',
        async () => (await events(ws)).some((e) => e.type === 'AssignmentMade'),
        { timeoutMs: 15_000 },
      ).catch(async (err) => {
        throw new Error(
          `${(err as Error).message}; lease ${await admin.get(workspaceKeys(ws).lease)}; registry ${JSON.stringify(await admin.zrange('sb:dispatchers', 0, -1, 'WITHSCORES'))}; events ${(await events(ws)).map((e) => e.type).join(',')}; ${other.logText().slice(-3000)}`,
        );
      });
      const replacedMs = Date.now() - t0;
      expect(replacedMs, 'the lease taken over within its TTL and a renewal or two').toBeLessThan(6000);
      dispatcher.kill('SIGCONT');
      // Every offer either expires or the contact expires; wait until every contact has left.
      await waitFor(
        'every contact expired',
        async () => (await events(ws)).filter((e) => e.type === 'ContactExpired').length >= 20,
        { timeoutMs: 20_000 },
      );
      await sleep(1500);
      const all = await events(ws);
      const count = (type: string) => {
        const by = new Map<string, number>();
        for (const e of all)
          if (e.type === type)
            by.set(e.data.contactId as string, (by.get(e.data.contactId as string) ?? 0) + 1);
        return [...by.values()].filter((n) => n > 1).length;
      };
      expect(count('ContactExpired'), 'contacts expired twice').toBe(0);
      expect(count('AssignmentExpired'), 'offers expired twice').toBe(0);
      expect(count('AssignmentMade'), 'contacts offered twice').toBe(0);
      console.log(`overload: a stopped dispatcher replaced ${replacedMs} ms after the first contact`);
    } finally {
      dispatcher.kill('SIGCONT');
      await other.stop();
    }
  }, 60_000);
});

/*
 * A contact an agent could take, whose maximum wait passes while the dispatcher is stopped: when it
 * continues, its dispatch step may run before the ExpireContact its clock appends is applied, and
 * assign the contact; the expiry then changes nothing (docs/API.md, "Timers": a fact happens at or
 * a little after its due time, by the clock's tick and the backlog; a contact assigned before its
 * expiry is applied does not expire). Either way the contact is decided once: assigned or
 * expired, never both, and nothing else follows.
 */
describe('a maximum wait that passes while the dispatcher is stopped', () => {
  it('decides the contact once: assigned or expired, never both', async () => {
    const ws = 'overload-late';
    const base = `${api.url}/v1/workspaces/${ws}`;
    projector.kill('SIGCONT');
    dispatcher.kill('SIGCONT');
    expect((await call('POST', `${base}/agents`, { id: 'ana', skills: ['x'] })).status).toBe(201);
    await waitFor('the lease taken', async () => (await admin.exists(workspaceKeys(ws).lease)) === 1, {
      timeoutMs: 10_000,
    });
    dispatcher.kill('SIGSTOP');
    try {
      expect((await call('POST', `${base}/agents/ana/state`, { state: 'available' })).status).toBe(200);
      expect(
        (await call('POST', `${base}/contacts`, { id: 'late', skills: ['x'], maxWaitMs: 300 })).status,
      ).toBe(201);
      // Past its maximum wait (queued when its 201 came) by 500 ms and more.
      await sleep(800);
    } finally {
      dispatcher.kill('SIGCONT');
    }
    await waitFor(
      'the contact decided',
      async () => (await events(ws)).some((e) => e.type === 'AssignmentMade' || e.type === 'ContactExpired'),
      { timeoutMs: 10_000 },
    );
    await sleep(1000);
    const decided = (await events(ws)).filter(
      (e) => e.type === 'AssignmentMade' || e.type === 'ContactExpired',
    );
    expect(decided).toHaveLength(1);
  }, 60_000);
});

/*
 * A projector stopped (hung, not dead) while its XREADGROUP is blocked in Redis is still handed
 * the next command (Redis serves the blocked reader, whose process does not read the reply); the
 * group delivers it to nobody else, so the live projector applies it when its own read times out
 * (its block, 2 s) or a later command wakes it: that command may answer 202 (measured: "201 in 22
 * ms, 202 in 1009 ms, 201 in 9 ms, ..." with COMMAND_TIMEOUT_MS=1000). docs/DEPLOYMENT.md says so;
 * this holds the bound: every command applied within the block and a margin.
 */
describe('one of two projectors stopped', () => {
  it("leaves no command unapplied beyond the other projector's block", async () => {
    const ws = 'overload-two-projectors';
    const base = `${api.url}/v1/workspaces/${ws}`;
    projector.kill('SIGCONT');
    const other = await startProcess({ roles: 'projector', redis, name: 'second projector' });
    try {
      expect((await call('POST', `${base}/agents`, { id: 'ana', skills: ['x'] })).status).toBe(201);
      await sleep(2500); // both blocked reading the workspace's commands
      projector.kill('SIGSTOP');
      for (let i = 0; i < 6; i++) {
        const answer = await call('POST', `${base}/contacts`, { id: `p-${i}`, skills: ['x'] });
        expect([201, 202]).toContain(answer.status);
        const started = performance.now();
        await waitFor(
          `p-${i} applied`,
          async () => (await call('GET', `${base}/contacts/p-${i}`)).status === 200,
          { timeoutMs: 4000, everyMs: 50 },
        );
        expect(performance.now() - started + answer.ms).toBeLessThan(4000);
      }
    } finally {
      projector.kill('SIGCONT');
      await other.stop();
    }
  }, 60_000);
});

function comparePos(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}
