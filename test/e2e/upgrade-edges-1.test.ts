/**
 * An upgrade: an older Switchboard (commit f2172b9, extracted with `git archive` into a folder of
 * its own, its node_modules this tree's) and this one on the same Redis at once, as the rolling
 * upgrade of docs/DEPLOYMENT.md ("Redis Functions") runs them. Under a small load (agents, contacts
 * offered, accepted and completed), this version's processes start beside the older ones, which
 * stop one by one (SIGTERM); and the reverse, a rollback. Every command is answered, every contact
 * assigned once, no process logs an error, and this version's audit of the whole log is clean.
 *
 * A contact the older version assigned while it waited for its preferred agents or its next routing
 * step keeps those timers in Redis (the older steps left them to fire): this version's audit
 * reports each as a timer nothing needs until it fires (docs/AUDIT.md), and is clean after.
 *
 * Those timers are due TIMERS_MS after the contact is queued: 15 s, where the hand-over to this
 * version and the first audit take under a second on a quiet machine (0.6 s measured) and a few
 * seconds on a loaded 2-core one (a process stopped and one started among three forks' suites). UPGRADE_TIMERS_MS sets another (30000 as the suite ran before) for a
 * machine slower than that: a first audit after they fired fails, and says so.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { buildEntry } from '../../src/topology/local/main-build.ts';
import {
  killAllProcesses,
  PROJECT_ROOT,
  type SwitchboardProcess,
  startProcess,
} from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

/** The older version run beside this one. */
const OLDER = 'f2172b9';
/** When the older version's preference and routing-step timers are due, after the contact is queued. */
const TIMERS_MS = Number(process.env.UPGRADE_TIMERS_MS ?? 15_000);

let older: string;
let olderMain: string;
let redis: TestRedis;
let client: RedisClient;

/**
 * Whether the checkout has the older commit (a clone with its history does; a shallow one or an
 * export without .git does not, and the suite says so and is skipped).
 */
const HAS_OLDER = (() => {
  try {
    execFileSync('git', ['cat-file', '-e', `${OLDER}^{commit}`], { cwd: PROJECT_ROOT, stdio: 'ignore' });
    return true;
  } catch {
    console.warn(`upgrade-edges-1: commit ${OLDER} is not in this checkout (a shallow clone?): skipped`);
    return false;
  }
})();

beforeAll(async () => {
  if (!HAS_OLDER) return;
  older = mkdtempSync(path.join(os.tmpdir(), 'sb-older-'));
  // Read-only for the repository: no worktree, no checkout.
  const tar = execFileSync('git', ['archive', OLDER], { cwd: PROJECT_ROOT, maxBuffer: 1 << 28 });
  execFileSync('tar', ['-x', '-C', older], { input: tar });
  symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(older, 'node_modules'), 'dir');
  // Built once, as the run builds this version (a start through tsx costs about three times the
  // CPU): each module keeps its own path, so the older Lua is the one loaded.
  olderMain = path.join(older, 'main.mjs');
  await buildEntry(path.join(older, 'src', 'main.ts'), olderMain);
  redis = await startTestRedis();
  client = redis.client();
}, 60_000);

afterAll(async () => {
  await killAllProcesses();
  client?.disconnect();
  await redis?.stop();
  if (older) rmSync(older, { recursive: true, force: true });
}, 60_000);

type Version = 'older' | 'this';
const AGENTS = ['a1', 'a2', 'a3', 'a4'];

async function start(
  version: Version,
  roles: string,
  ws: string,
  env: Record<string, string> = {},
): Promise<SwitchboardProcess> {
  return await startProcess({
    roles,
    redis,
    name: `${version} ${roles}`,
    ...(version === 'older' ? { root: older, main: olderMain } : {}),
    env: { WORKSPACES: ws, ...(roles === 'api' ? { LOG_LEVEL: 'info' } : {}), ...env },
    readyTimeoutMs: 60_000,
  });
}

/** Log lines at error level or worse (pino: 50 and up). */
function errorLines(ps: readonly SwitchboardProcess[]): string[] {
  return ps.flatMap((p) => p.logs.filter((l) => /"level":(5|6)\d/.test(l)));
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

function api(url: () => string, ws: string, key?: string) {
  return async (method: string, route: string, body?: unknown): Promise<Answer> => {
    const res = await fetch(`${url()}/v1/workspaces/${ws}${route}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}

/**
 * The load: a contact queued every few tens of ms, and each open one moved on (accepted when
 * offered, completed when assigned) by the agent it names. Every answer is one the docs promise.
 */
class Load {
  readonly contacts: string[] = [];
  readonly open = new Set<string>();
  readonly unexpected: string[] = [];
  private running = true;
  private done: Promise<void> | undefined;
  private n = 0;

  constructor(private readonly call: ReturnType<typeof api>) {}

  start(): void {
    this.done = (async () => {
      while (this.running) {
        await this.queueOne();
        await this.moveOn();
        await sleep(30);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  async queueOne(): Promise<void> {
    const id = `c${++this.n}`;
    // No preference or routing step: the timers an older version leaves for those are the next
    // test's (reported until they fire).
    const r = await this.call('POST', '/contacts', { id, skills: ['English'] });
    if (r.status !== 201 && r.status !== 202) this.unexpected.push(`POST /contacts ${id}: ${r.status}`);
    this.contacts.push(id);
    this.open.add(id);
  }

  /** Each open contact a step on; the count of those still open. */
  async moveOn(): Promise<number> {
    for (const id of [...this.open]) {
      const r = await this.call('GET', `/contacts/${id}`);
      if (r.status === 404) continue; // appended, not applied yet
      const { state, agentId } = r.body as { state: string; agentId?: string };
      if (state === 'offered') {
        const a = await this.call('POST', `/contacts/${id}/accept`, { agentId });
        if (![200, 202].includes(a.status))
          this.unexpected.push(`accept ${id}: ${a.status} ${JSON.stringify(a.body)}`);
      } else if (state === 'assigned') {
        const c = await this.call('POST', `/contacts/${id}/complete`);
        if (![200, 202].includes(c.status))
          this.unexpected.push(`complete ${id}: ${c.status} ${JSON.stringify(c.body)}`);
      } else if (state === 'completed') this.open.delete(id);
      else if (state !== 'queued') this.unexpected.push(`contact ${id} is ${state}`);
    }
    return this.open.size;
  }
}

/**
 * One version's API, projector and dispatcher serving `ws` under load, the other's started beside
 * them and the first's stopped one by one, the load going on; then the load stops, every contact is
 * completed, and this version audits the log.
 */
async function handOver(ws: string, from: Version, to: Version): Promise<void> {
  const roles = ['api', 'projector', 'dispatcher'];
  const first = await Promise.all(roles.map((r) => start(from, r, ws)));
  let url = first[0]!.url!;
  const call = api(() => url, ws);
  expect((await call('PUT', '/settings', { offerTimeoutMs: 10_000, wrapUpMs: 0 })).status).toBe(200);
  for (const id of AGENTS) {
    expect((await call('POST', '/agents', { id, skills: ['English'], capacity: 2 })).status).toBe(201);
    expect((await call('POST', `/agents/${id}/state`, { state: 'available' })).status).toBe(200);
  }
  const load = new Load(call);
  load.start();
  // The first version alone decides the load's first contacts, and goes on alone while the second
  // starts (a few seconds).
  await waitFor('the load on the first version alone', () => load.contacts.length >= 5, { everyMs: 20 });
  const second = await Promise.all(roles.map((r) => start(to, r, ws)));
  await sleep(1_000);
  // The load balancer sends new requests to the new API before the old one stops.
  url = second[0]!.url!;
  for (const p of first) {
    expect(await p.stop()).toBe(0);
    await sleep(700);
  }
  await sleep(1_000);
  await load.stop();
  await waitFor('every contact completed', async () => (await load.moveOn()) === 0, { timeoutMs: 30_000 });
  expect(load.unexpected).toEqual([]);
  const audit = await auditWorkspace(client, ws, { idle: true });
  expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  expect(audit).toMatchObject({ state: 'compared', pendingCommands: 0, assignments: load.contacts.length });
  expect(errorLines([...first, ...second])).toEqual([]);
  for (const p of second) expect(await p.stop()).toBe(0);
}

describe.skipIf(!HAS_OLDER)('an upgrade: an older Switchboard and this one on one Redis', () => {
  it('an upgrade under load: older processes replaced one by one by this version', async () => {
    await handOver('upgrade-edges-1-up', 'older', 'this');
  }, 120_000);

  it('a rollback under load: this version replaced one by one by the older', async () => {
    await handOver('upgrade-edges-1-down', 'this', 'older');
  }, 120_000);

  it('a contact the older version assigned during its preference and before its next step: its timers reported until they fire, the audit clean after', {
    timeout: 150_000,
  }, async () => {
    const ws = 'upgrade-edges-1-timers';
    const olderOnes = [await start('older', 'api,projector,dispatcher', ws)];
    let url = olderOnes[0]!.url!;
    const call = api(() => url, ws);
    expect((await call('POST', '/agents', { id: 'a1', skills: ['English'] })).status).toBe(201);
    expect((await call('POST', '/agents/a1/state', { state: 'available' })).status).toBe(200);
    const queuedAt = Date.now();
    const queued = await call('POST', '/contacts', {
      id: 'c1',
      skills: ['English'],
      preferredAgents: ['a1'],
      // Long enough to outlive the hand-over and the first audit on a loaded machine.
      preferredForMs: TIMERS_MS,
      steps: [{ afterMs: TIMERS_MS, skills: ['Spanish'] }],
    });
    expect(queued.status).toBe(201);
    await waitFor('c1 assigned by the older dispatcher', async () => {
      const r = await call('GET', '/contacts/c1');
      return r.body.state === 'assigned';
    });
    for (const p of olderOnes) expect(await p.stop()).toBe(0);
    const these = [await start('this', 'api,projector,dispatcher', ws)];
    url = these[0]!.url!;
    expect((await call('POST', '/contacts/c1/complete')).status).toBe(200);
    // The older version's two timers, named as docs/AUDIT.md says, and nothing else.
    const before = await auditWorkspace(client, ws, { idle: true });
    const elapsedMs = Date.now() - queuedAt;
    expect(
      before.violations.map((v) => v.kind),
      `the first audit ${elapsedMs} ms after c1 was queued, its timers due after ${TIMERS_MS} ms${elapsedMs >= TIMERS_MS ? ': too late, set UPGRADE_TIMERS_MS higher' : ''}`,
    ).toEqual(['timer']);
    expect(before.violations[0]!.message).toMatch(
      /f\|c1\|1 \(due [^)]+\) should not be there: nothing the replay holds needs it; r\|c1\|1\|1 \(due [^)]+\) should not be there/,
    );
    // Fired (their commands change nothing): the audit is clean.
    await waitFor(
      'the leftover timers fired',
      async () => (await auditWorkspace(client, ws, { idle: true })).violations.length === 0,
      { timeoutMs: 2 * TIMERS_MS + 30_000, everyMs: 250 },
    );
    expect(errorLines([...olderOnes, ...these])).toEqual([]);
    for (const p of these) expect(await p.stop()).toBe(0);
  });

  it("an agent key's completion this version's API appends is decided alike only by this version's projector: projectors go first", async () => {
    // This API names the key's agent in its CompleteContact; an older projector ignores it. A
    // contact transferred between the API's check and the command's turn is then refused by the
    // older step as not assigned (409), where this version refuses it as not the agent's (403):
    // the audit reports the older decision. In the order docs/DEPLOYMENT.md gives (projectors
    // first), the same commands are decided by this version's projector and audit clean.
    for (const order of ['api first', 'projector first'] as const) {
      const ws = `upgrade-edges-1-${order === 'api first' ? 'apifirst' : 'projfirst'}`;
      const admin = (await createApiKey(client, { workspace: ws, role: 'admin', name: 'admin' })).key;
      const agent = (await createApiKey(client, { workspace: ws, role: 'agent', agentId: 'a1', name: 'a1' }))
        .key;
      const projectorVersion: Version = order === 'api first' ? 'older' : 'this';
      const [dispatcher, held, apiProcess] = await Promise.all([
        start(projectorVersion, 'dispatcher', ws),
        start(projectorVersion, 'projector', ws),
        start('this', 'api', ws, { AUTH: 'on' }),
      ]);
      let projector = held;
      const asAdmin = api(() => apiProcess.url!, ws, admin);
      const asAgent = api(() => apiProcess.url!, ws, agent);
      expect((await asAdmin('POST', '/agents', { id: 'a1', skills: ['English'] })).status).toBe(201);
      expect((await asAdmin('POST', '/agents/a1/state', { state: 'available' })).status).toBe(200);
      expect((await asAdmin('POST', '/contacts', { id: 'c1', skills: ['English'] })).status).toBe(201);
      await waitFor(
        'c1 assigned',
        async () => (await asAdmin('GET', '/contacts/c1')).body.state === 'assigned',
      );
      // The projector held back: the transfer is appended, and the agent's completion passes the
      // API's check (the contact is still a1's) and is appended after it.
      expect(await projector.stop()).toBe(0);
      expect((await asAdmin('POST', '/contacts/c1/transfer', { skills: ['Spanish'] })).status).toBe(202);
      expect((await asAgent('POST', '/contacts/c1/complete')).status).toBe(202);
      projector = await start(projectorVersion, 'projector', ws);
      await waitFor(
        'both applied',
        async () => (await asAdmin('GET', '/contacts/c1')).body.state === 'queued',
      );
      await sleep(500);
      const audit = await auditWorkspace(client, ws, { idle: true });
      const found = audit.violations.map((v) => `${v.kind}: ${v.message}`);
      if (order === 'api first')
        expect(found).toEqual([
          expect.stringMatching(/^outcome: CompleteContact c1 .*outcome 409, the model 403/),
          expect.stringMatching(/^fact: CommandRejected of CompleteContact c1 .*status: log 409, model 403/),
        ]);
      else expect(found).toEqual([]);
      for (const p of [apiProcess, projector, dispatcher]) expect(await p.stop()).toBe(0);
    }
  }, 120_000);
});
