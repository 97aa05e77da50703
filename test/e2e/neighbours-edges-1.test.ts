/**
 * A quiet workspace B beside a loaded workspace A, on one API, one projector and one dispatcher
 * process and one Redis (each workspace has loops and blocking connections of its own; the steps
 * of both go over each process's shared connection, and Redis runs one step at a time). What B
 * sees, against B alone: while A takes a burst of commands (from a process of its own, so the
 * measuring process stays quiet) each of B's commands answers 201 within the outcome wait and is
 * applied well within a second of its append, however long A's burst lasts; while A holds
 * a queue nobody can take and its agents change state, B's contacts are assigned within ms and no
 * dispatch step grows with A's queue; while `npm run audit` reads A's whole log, B's commands
 * answer as before. Each case prints its figures (docs/DEPLOYMENT.md, "Many workspaces").
 * NEIGHBOURS_BURST (2,000), NEIGHBOURS_AGENTS (150) and NEIGHBOURS_CHANGES (3,000) set the sizes.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { auditCli } from '../support/tamper.ts';
import { sleep } from '../support/wait.ts';

const BURST = Number(process.env.NEIGHBOURS_BURST ?? 2000);
const AGENTS = Number(process.env.NEIGHBOURS_AGENTS ?? 150);
const CHANGES = Number(process.env.NEIGHBOURS_CHANGES ?? 3000);
const COMMAND_TIMEOUT_MS = 5000;
const A = 'neighbours-a';
const B = 'neighbours-b';

/** A's load, run by a process of its own: `<base> <n> <width> contacts|states <agents>`. */
const LOADER = `
const [base, n, width, mode, agents] = process.argv.slice(1);
const ms = [], statuses = [];
let next = 0;
await Promise.all(Array.from({ length: Number(width) }, async () => {
  while (next < Number(n)) {
    const i = next++;
    const [to, body] = mode === 'contacts'
      ? [base + '/contacts', { id: 'a-' + i, skills: ['x'] }]
      : [base + '/agents/ag-' + (i % Number(agents)) + '/state',
         { state: Math.floor(i / Number(agents)) % 2 ? 'away' : 'available' }];
    const t0 = performance.now();
    const res = await fetch(to, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await res.text();
    ms.push(performance.now() - t0);
    statuses.push(res.status);
  }
}));
process.stdout.write(JSON.stringify({ ms, statuses }));
`;

let redis: TestRedis;
let admin: RedisClient;
let api: SwitchboardProcess;

beforeAll(async () => {
  redis = await startTestRedis();
  admin = redis.adminClient();
  [api] = await Promise.all([
    startProcess({
      roles: 'api',
      redis,
      env: { RATE_LIMIT: 'off', COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) },
    }),
    startProcess({ roles: 'projector', redis, name: 'projector' }),
    startProcess({ roles: 'dispatcher', redis, name: 'dispatcher' }),
  ]);
}, 60_000);

afterAll(async () => {
  await killAllProcesses();
  await admin?.config('SET', 'slowlog-log-slower-than', '10000').catch(() => {});
  admin?.disconnect();
  await redis?.stop();
});

function load(args: string[]): Promise<{ ms: number[]; statuses: number[] }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', LOADER, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the load ended with ${code}`)),
    ),
  );
}

interface Answer {
  status: number;
  ms: number;
  body: Record<string, unknown>;
}

async function call(method: string, url: string, body?: unknown): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, ms: performance.now() - t0, body: text ? JSON.parse(text) : {} };
}

async function inBatches(n: number, width: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

/** p50 / p90 / p99 / max, in whole ms. */
function quantiles(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return [0.5, 0.9, 0.99, 1]
    .map((p) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN))
    .join(' / ');
}

type SlowlogEntry = [id: number, at: number, us: number, args: string[]];

/** The steps SLOWLOG holds (over its threshold), by function and workspace: count and longest (µs). */
async function steps(): Promise<Map<string, { n: number; longest: number }>> {
  const by = new Map<string, { n: number; longest: number }>();
  for (const [, , us, args] of (await admin.slowlog('GET', '-1')) as SlowlogEntry[]) {
    if (String(args[0]).toLowerCase() !== 'fcall') continue;
    const name = `${String(args[1]).replace(/_[0-9a-f]+$/, '')} ${/\{([^}]*)\}/.exec(String(args[3]))?.[1]}`;
    const s = by.get(name) ?? { n: 0, longest: 0 };
    by.set(name, { n: s.n + 1, longest: Math.max(s.longest, us) });
  }
  return by;
}

function stepsText(by: Map<string, { n: number; longest: number }>): string {
  return [...by].map(([name, s]) => `${name}: ${s.n}, longest ${s.longest} µs`).join('; ') || 'none';
}

/** The stream-id time (ms) of each event of B's of `type`, by the id its data names. */
async function eventTimes(
  type: string,
  idOf: (data: Record<string, unknown>) => unknown,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [id, f] of (await admin.xrange(workspaceKeys(B).events, '-', '+')) as [string, string[]][]) {
    const e = JSON.parse(f[f.indexOf('event') + 1]!) as { type: string; data: Record<string, unknown> };
    if (e.type === type) out.set(String(idOf(e.data)), Number(id.split('-')[0]));
  }
  return out;
}

/** B's commands one after another, until `until()` (and at least `least` of them). */
async function quietCommands(tag: string, least: number, until: () => boolean): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < least || !until(); i++) {
    out.push(
      await call('POST', `${api.url}/v1/workspaces/${B}/contacts`, { id: `${tag}-${i}`, skills: ['x'] }),
    );
    await sleep(20);
  }
  return out;
}

/** How long after its append (ms, Redis's clock) each of B's commands got its outcome. */
async function appliedAfter(answers: readonly Answer[]): Promise<number[]> {
  const outcomes = (await admin.xrange(workspaceKeys(B).outcomes, '-', '+')) as [string, string[]][];
  const at = new Map(outcomes.map(([id, f]) => [f[f.indexOf('position') + 1], Number(id.split('-')[0])]));
  return answers.map((a) => {
    const position = String(a.body.position);
    return (at.get(position) ?? Number.NaN) - Number(position.split('-')[0]);
  });
}

describe('a quiet workspace beside a loaded one', () => {
  it("answers B's commands within the outcome wait and applies them within ms while A takes a burst", async () => {
    const alone = await quietCommands('alone', 30, () => true);
    expect(alone.filter((a) => a.status !== 201)).toEqual([]);
    await admin.config('SET', 'slowlog-log-slower-than', '2000');
    await admin.slowlog('RESET');
    let done = false;
    const t0 = performance.now();
    const burst = load([`${api.url}/v1/workspaces/${A}`, String(BURST), '200', 'contacts', '0']).finally(
      () => {
        done = true;
      },
    );
    const beside = await quietCommands('beside', 20, () => done);
    const a = await burst;
    const took = Math.round(performance.now() - t0);
    const lag = await appliedAfter(beside);
    const said = `A's ${BURST} commands in ${took} ms, each ${quantiles(a.ms)} ms (p50 / p90 / p99 / max); B's ${beside.length} beside: ${quantiles(beside.map((x) => x.ms))} ms, applied ${quantiles(lag)} ms after their append; B alone ${quantiles(alone.map((x) => x.ms))} ms; steps over 2 ms: ${stepsText(await steps())}`;
    console.log(said);
    expect(a.statuses.filter((s) => s !== 201).length, said).toBe(0);
    expect(
      beside.filter((x) => x.status !== 201),
      said,
    ).toEqual([]);
    expect(Math.max(...beside.map((x) => x.ms)), said).toBeLessThan(COMMAND_TIMEOUT_MS);
    // B's commands wait for none of A's: A's burst lasts seconds.
    expect(Math.max(...lag), said).toBeLessThan(1000);
  }, 120_000);

  it("assigns B's contacts within ms while A holds a queue and its agents change state", async () => {
    const a = `${api.url}/v1/workspaces/${A}`;
    const b = `${api.url}/v1/workspaces/${B}`;
    // A's agents can take none of A's queued contacts (skill z, the contacts want x): every change
    // to available wakes A's dispatcher with the whole queue there and nothing to decide.
    await inBatches(AGENTS, 50, async (i) => {
      expect((await call('POST', `${a}/agents`, { id: `ag-${i}`, skills: ['z'] })).status).toBe(201);
    });
    await inBatches(40, 10, async (i) => {
      expect((await call('POST', `${b}/agents`, { id: `bb-${i}`, skills: ['q'] })).status).toBe(201);
      expect((await call('POST', `${b}/agents/bb-${i}/state`, { state: 'available' })).status).toBe(200);
    });
    const assigned = async (tag: string, until: () => boolean): Promise<number[]> => {
      const ids: string[] = [];
      for (let i = 0; i < 40 && (i < 15 || !until()); i++) {
        expect((await call('POST', `${b}/contacts`, { id: `${tag}-${i}`, skills: ['q'] })).status).toBe(201);
        ids.push(`${tag}-${i}`);
        await sleep(50);
      }
      await sleep(500);
      const queued = await eventTimes('ContactQueued', (d) => d.id);
      const made = await eventTimes('AssignmentMade', (d) => d.contactId);
      for (const id of ids) await call('POST', `${b}/contacts/${id}/complete`, {});
      return ids.map((id) => (made.get(id) ?? Number.NaN) - (queued.get(id) ?? Number.NaN));
    };
    const alone = await assigned('qa', () => true);
    await admin.config('SET', 'slowlog-log-slower-than', '1000');
    await admin.slowlog('RESET');
    let done = false;
    const changes = load([a, String(CHANGES), '100', 'states', String(AGENTS)]).finally(() => {
      done = true;
    });
    const beside = await assigned('qb', () => done);
    const r = await changes;
    const stepsOver = await steps();
    const said = `A's ${CHANGES} changes of ${AGENTS} agents, each ${quantiles(r.ms)} ms; B queued to assigned alone ${alone.join(', ')} ms, beside ${beside.join(', ')} ms; steps over 1 ms: ${stepsText(stepsOver)}`;
    console.log(said);
    expect(r.statuses.filter((s) => s !== 200).length, said).toBe(0);
    expect(
      beside.filter((ms) => !(ms >= 0)),
      said,
    ).toEqual([]);
    expect(Math.max(...beside), said).toBeLessThan(500);
    // A dispatch step reads at most about 1,024 entries whatever the queue: none near A's queue's
    // size (a loaded machine's preemption reads as a few ms).
    for (const [name, s] of stepsOver)
      if (name.startsWith('sb_dispatch')) expect(s.longest, said).toBeLessThan(20_000);
  }, 180_000);

  it("answers B's commands as before while an audit reads A's whole log", async () => {
    await admin.config('SET', 'slowlog-log-slower-than', '2000');
    await admin.slowlog('RESET');
    let done = false;
    const audit = auditCli(['--workspace', A, '--redis-url', redis.url, '--json']).finally(() => {
      done = true;
    });
    const beside = await quietCommands('audit', 20, () => done);
    const run = await audit;
    const lag = await appliedAfter(beside);
    const said = `audit exit ${run.code}; B's ${beside.length} beside: ${quantiles(beside.map((x) => x.ms))} ms, applied ${quantiles(lag)} ms after their append; steps over 2 ms: ${stepsText(await steps())}; ${run.stderr.slice(0, 300)}`;
    console.log(said);
    expect(run.code, said).toBe(0);
    expect(
      beside.filter((x) => x.status !== 201),
      said,
    ).toEqual([]);
    expect(Math.max(...beside.map((x) => x.ms)), said).toBeLessThan(COMMAND_TIMEOUT_MS);
    expect(Math.max(...lag), said).toBeLessThan(1000);
  }, 120_000);
});
