/**
 * Crash safety under load. Two processes of each role on one Redis; a load driver queues over a
 * thousand contacts through both APIs while ~50 agents cycle (each AssignmentMade, followed over a
 * WebSocket that resumes with `after=` on another API when its API dies, is completed a little
 * later). Every request carries an Idempotency-Key and is retried with the same key on a network
 * error, a 5xx or a 202. Mid-run a dispatcher and a projector are SIGKILLed and restarted, then the
 * other two (so the restarted ones must carry the load), and an API is SIGKILLed and restarted.
 *
 * Then, from the streams themselves: (a) no contact is assigned twice; (b) no acknowledged contact
 * is lost; (c) no agent ever held two contacts; (d) every command is applied exactly once and
 * the checkpoint covers the whole command stream; (e) no Idempotency-Key was appended twice.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseFields, type StreamEntry, toEnvelope } from '../../src/adapters/redis/event-log.ts';
import { PROJECTOR_GROUP, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { EventEnvelope } from '../../src/domain/events.ts';
import {
  killAllProcesses,
  requestJson,
  type SwitchboardProcess,
  sleep,
  startProcess,
  waitFor,
} from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const CONTACTS = 1_000;
const AGENTS = 50;
const RATE_PER_S = 70;
const MAX_IN_FLIGHT = 64;
const LOAD_DEADLINE_MS = 45_000;
const MAX_ATTEMPTS = 10;
const LANGUAGES = ['English', 'Spanish'] as const;
const AREAS = ['Support', 'Disputes', 'Billing'] as const;

function comparePositions(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

const positionMs = (p: string): number => Number(p.split('-')[0]);

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/**
 * The load driver's HTTP client: sends each command with its Idempotency-Key and retries, with the
 * same key and on the other API, after a network error, a 5xx or a 202 (bounded).
 */
class RetryingClient {
  requests = 0;
  retries = 0;
  failed = 0;
  networkErrors = 0;
  accepted202 = 0;
  readonly statuses: Record<string, number> = {};
  readonly failures: string[] = [];
  /** When each 2xx answer (other than 202) arrived. */
  readonly okAt: number[] = [];

  constructor(
    private readonly apiUrls: readonly string[],
    private readonly ws: string,
  ) {}

  /** The last answer, or null when every attempt failed with a network error. */
  async command(path: string, body: unknown, key: string, first: number): Promise<Reply | null> {
    this.requests++;
    let last: Reply | null = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (attempt > 0) {
        this.retries++;
        await sleep(Math.min(1_000, 50 * 2 ** attempt) * (0.5 + Math.random()));
      }
      const url = `${this.apiUrls[(first + attempt) % this.apiUrls.length]}/v1/workspaces/${this.ws}${path}`;
      try {
        const r = await requestJson<Record<string, unknown>>(url, {
          method: 'POST',
          ...(body !== undefined ? { body } : {}),
          headers: { 'idempotency-key': key },
          timeoutMs: 5_000,
        });
        last = { status: r.status, body: r.body };
        this.statuses[r.status] = (this.statuses[r.status] ?? 0) + 1;
        if (r.status === 202) {
          this.accepted202++;
          continue;
        }
        if (r.status >= 500) continue;
        if (r.status < 300) this.okAt.push(Date.now());
        else this.failures.push(`${path} (${key}): ${r.status} ${JSON.stringify(r.body)}`);
        return last;
      } catch {
        this.networkErrors++;
      }
    }
    this.failed++;
    this.failures.push(`${path} (${key}): no answer after ${MAX_ATTEMPTS} attempts (last ${last?.status})`);
    return last?.status === 202 ? last : null;
  }
}

/**
 * Follows AssignmentMade over a WebSocket; when the socket closes it reconnects to the next API
 * with `after=<last position>`, so the feed must resume with no gap and no duplicate.
 */
class AssignmentFollower {
  last = '0-0';
  readonly seen: EventEnvelope[] = [];
  duplicates = 0;
  reconnects = 0;
  readonly gapsMs: number[] = [];
  private socket: WebSocket | undefined;
  private stopped = false;
  private closedAt: number | undefined;
  private index = 0;

  constructor(
    private readonly apiUrls: readonly string[],
    private readonly ws: string,
    private readonly onAssignment: (e: EventEnvelope) => void,
  ) {}

  start(): Promise<void> {
    return new Promise((resolve) => this.connect(resolve));
  }

  private connect(opened?: () => void): void {
    if (this.stopped) return;
    const base = this.apiUrls[this.index % this.apiUrls.length]!.replace('http', 'ws');
    const socket = new WebSocket(
      `${base}/v1/workspaces/${this.ws}/events/live?type=AssignmentMade&after=${this.last}`,
    );
    this.socket = socket;
    socket.on('open', () => {
      if (this.closedAt !== undefined) this.gapsMs.push(Date.now() - this.closedAt);
      this.closedAt = undefined;
      opened?.();
    });
    socket.on('message', (data) => {
      const e = JSON.parse(String(data)) as EventEnvelope;
      if (comparePositions(e.position, this.last) <= 0) {
        this.duplicates++;
        return;
      }
      this.last = e.position;
      this.seen.push(e);
      this.onAssignment(e);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.stopped) return;
      this.closedAt ??= Date.now();
      this.reconnects++;
      this.index++;
      setTimeout(() => this.connect(opened), 100);
    });
  }

  stop(): void {
    this.stopped = true;
    this.socket?.close();
  }
}

describe('crash safety under load', () => {
  let redisFixture: TestRedis;
  let redis: RedisClient;
  const ws = `crash-${randomUUID().slice(0, 8)}`;
  const k = workspaceKeys(ws);
  const env = { WORKSPACES: ws };
  let apis: SwitchboardProcess[] = [];
  let projectors: SwitchboardProcess[] = [];
  let dispatchers: SwitchboardProcess[] = [];

  const all = () => [...apis, ...projectors, ...dispatchers];

  beforeAll(async () => {
    redisFixture = await startTestRedis();
    redis = redisFixture.client();
    const started = await Promise.all([
      startProcess({ roles: ['api'], redis: redisFixture, env, name: 'api-1' }),
      startProcess({ roles: ['api'], redis: redisFixture, env, name: 'api-2' }),
      startProcess({ roles: ['projector'], redis: redisFixture, env, name: 'projector-1' }),
      startProcess({ roles: ['projector'], redis: redisFixture, env, name: 'projector-2' }),
      startProcess({ roles: ['dispatcher'], redis: redisFixture, env, name: 'dispatcher-1' }),
      startProcess({ roles: ['dispatcher'], redis: redisFixture, env, name: 'dispatcher-2' }),
    ]);
    apis = started.slice(0, 2);
    projectors = started.slice(2, 4);
    dispatchers = started.slice(4, 6);
  }, 60_000);

  afterAll(async () => {
    const codes = await Promise.all(all().map((p) => p.stop()));
    await killAllProcesses();
    redis?.disconnect();
    await redisFixture?.stop();
    expect(codes, 'every process still running stops cleanly on SIGTERM').toEqual(all().map(() => 0));
  }, 60_000);

  it('keeps every guarantee through SIGKILLed workers and a SIGKILLed API', async () => {
    const apiUrls = apis.map((a) => a.url!);
    const client = new RetryingClient(apiUrls, ws);
    const started = Date.now();

    // Agents: one language and one or two areas each, so every (language, area) pair is served.
    const agentIds: string[] = [];
    for (let i = 0; i < AGENTS; i++) agentIds.push(`agent-${String(i).padStart(2, '0')}`);
    const skillsOf = (i: number): string[] => {
      const a = Math.floor(i / 2) % AREAS.length;
      return [LANGUAGES[i % 2]!, AREAS[a]!, ...(i % 4 >= 2 ? [AREAS[(a + 1) % AREAS.length]!] : [])];
    };
    await Promise.all(
      agentIds.map(async (id, i) => {
        const r = await client.command('/agents', { id, skills: skillsOf(i) }, `register-${id}`, i);
        expect(r?.status, JSON.stringify(r?.body)).toBe(201);
      }),
    );
    await Promise.all(
      agentIds.map(async (id, i) => {
        const r = await client.command(`/agents/${id}/state`, { state: 'available' }, `available-${id}`, i);
        expect(r?.status, JSON.stringify(r?.body)).toBe(200);
      }),
    );

    // Agents cycle: each assignment is completed 50..300 ms after it is seen.
    const completions = new Set<Promise<unknown>>();
    const completedOk = new Set<string>();
    let completeIndex = 0;
    const follower = new AssignmentFollower(apiUrls, ws, (e) => {
      const contactId = String((e.data as { contactId: string }).contactId);
      const p = sleep(50 + Math.random() * 250)
        .then(() =>
          client.command(
            `/contacts/${contactId}/complete`,
            undefined,
            `complete-${contactId}`,
            completeIndex++,
          ),
        )
        .then((r) => {
          if (r?.status === 200) completedOk.add(contactId);
        });
      completions.add(p);
      void p.finally(() => completions.delete(p));
    });
    await follower.start();

    // The kills, at fixed times into the load, each followed by a restart 1.5 s later.
    const loadStart = Date.now();
    const recoveries: Record<string, Record<string, number | undefined>> = {};
    const restarts: Promise<void>[] = [];
    const kill = async (label: string, victims: SwitchboardProcess[]) => {
      for (const v of victims) v.kill('SIGKILL');
      await Promise.all(victims.map((v) => v.exited));
      const at = Date.now();
      const rec: Record<string, number | undefined> = {};
      recoveries[label] = rec;
      // Recovered: a command appended after the kill is applied, and an assignment is made after it.
      const applying = waitFor(
        'a command appended after the kill to be applied',
        async () => positionMs((await redis.hget(k.meta, 'applied')) ?? '0-0') > at,
        30_000,
        20,
      ).then(() => {
        rec.firstApplyAfterMs = Date.now() - at;
      });
      const assigned = waitFor(
        'an assignment after the kill',
        () => follower.seen.some((e) => positionMs(e.position) > at),
        30_000,
        20,
      ).then(() => {
        rec.firstAssignmentAfterMs = Date.now() - at;
      });
      await sleep(1_500);
      const restartAt = Date.now();
      const replacements = await Promise.all(
        victims.map((v) =>
          startProcess({
            roles: v.name.replace(/-\d+$/, ''),
            redis: redisFixture,
            env,
            name: v.name,
            ...(v.port !== undefined ? { port: v.port } : {}),
          }),
        ),
      );
      rec.restartReadyMs = Date.now() - restartAt;
      const replace = (list: SwitchboardProcess[]) => list.map((p) => replacements[victims.indexOf(p)] ?? p);
      apis = replace(apis);
      projectors = replace(projectors);
      dispatchers = replace(dispatchers);
      await Promise.all([applying, assigned]);
      rec.firstAckAfterMs = (client.okAt.find((t) => t > at) ?? Number.NaN) - at;
      rec.recoveredMs = Math.max(rec.firstApplyAfterMs ?? 0, rec.firstAssignmentAfterMs ?? 0);
    };
    const schedule = [
      // One of each worker: the survivors carry on while the victims restart.
      { atMs: 3_000, label: 'projector-1+dispatcher-1', victims: () => [projectors[0]!, dispatchers[0]!] },
      // Every worker: commands stay durable, clients see 202 and retry until the restarts apply them.
      { atMs: 8_000, label: 'all-projectors+dispatchers', victims: () => [...projectors, ...dispatchers] },
      { atMs: 13_500, label: 'api-1', victims: () => [apis[0]!] },
    ];
    for (const s of schedule) restarts.push(sleep(s.atMs).then(() => kill(s.label, s.victims())));

    // The load: contacts at a bounded rate, alternating APIs, bounded in count and in time.
    const acknowledged = new Map<string, number>();
    const unanswered: string[] = [];
    const inFlight = new Set<Promise<void>>();
    const random = (n: number) => Math.floor(Math.random() * n);
    let queued = 0;
    let next = loadStart;
    for (let i = 0; i < CONTACTS && Date.now() - loadStart < LOAD_DEADLINE_MS; i++) {
      // Paced from the previous send, so a stall is not followed by a burst.
      next = Math.max(Date.now(), next + 1_000 / RATE_PER_S);
      await sleep(next - Date.now());
      while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
      const id = `contact-${String(i).padStart(4, '0')}`;
      const body = { id, skills: [LANGUAGES[random(2)]!, AREAS[random(3)]!], priority: random(3) };
      const p = client.command('/contacts', body, `queue-${id}`, i).then((r) => {
        if (r && (r.status === 201 || r.status === 200 || r.status === 202)) acknowledged.set(id, r.status);
        else unanswered.push(id);
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      queued++;
    }
    await Promise.all(inFlight);
    const loadMs = Date.now() - loadStart;
    await Promise.all(restarts);

    // Quiet: nothing queued, every assignment completed, the checkpoint at the stream's end.
    await waitFor(
      'the system to be quiet',
      async () => {
        if (completions.size > 0) return false;
        if ((await redis.zcard(k.queue)) > 0) return false;
        const head = ((await redis.xrevrange(k.commands, '+', '-', 'COUNT', 1)) as StreamEntry[])[0]?.[0];
        return (await redis.hget(k.meta, 'applied')) === head;
      },
      30_000,
      100,
    );
    follower.stop();

    const commands = (await redis.xrange(k.commands, '-', '+')) as StreamEntry[];
    const events = ((await redis.xrange(k.events, '-', '+')) as StreamEntry[]).map(toEnvelope);
    const outcomes = (await redis.xrange(k.outcomes, '-', '+')) as StreamEntry[];
    const assignments = events.filter((e) => e.type === 'AssignmentMade');
    const dataOf = (e: EventEnvelope) => e.data as { contactId?: string; agentId?: string; id?: string };

    // (a) Every contact assigned at most once.
    const assignedCount = new Map<string, number>();
    for (const e of assignments) {
      const c = dataOf(e).contactId!;
      assignedCount.set(c, (assignedCount.get(c) ?? 0) + 1);
    }
    expect(
      [...assignedCount].filter(([, n]) => n > 1),
      '(a) contacts assigned twice',
    ).toEqual([]);

    // (b) None lost: every acknowledged contact is assigned, or still queued or abandoned.
    const lost: string[] = [];
    for (const id of acknowledged.keys()) {
      if (assignedCount.has(id)) continue;
      const r = await requestJson<{ state?: string }>(`${apis[1]!.url}/v1/workspaces/${ws}/contacts/${id}`);
      if (r.status !== 200 || !['queued', 'abandoned'].includes(String(r.body.state)))
        lost.push(`${id}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    expect(lost, '(b) acknowledged contacts neither assigned, queued nor abandoned').toEqual([]);

    // (c) Replay: no agent ever held two contacts (capacity 1).
    const holding = new Map<string, string>();
    const overlaps: string[] = [];
    for (const e of events) {
      const d = dataOf(e);
      if (e.type === 'AssignmentMade') {
        const held = holding.get(d.agentId!);
        if (held) overlaps.push(`${d.agentId} got ${d.contactId} while holding ${held} (${e.position})`);
        holding.set(d.agentId!, d.contactId!);
      } else if (e.type === 'ContactCompleted' && holding.get(d.agentId!) === d.contactId) {
        holding.delete(d.agentId!);
      }
    }
    expect(overlaps, '(c) agents holding two contacts').toEqual([]);

    // (d) Every command applied exactly once: one outcome each, at most one fact each (exactly one
    // for commands that always have one), one ContactQueued per contact, checkpoint at the end.
    const commandFields = commands.map(([id, f]) => ({
      id,
      ...(parseFields(f) as { type?: string; commandId?: string; idempotencyKey?: string }),
    }));
    const commandIds = commandFields.map((c) => c.commandId!);
    expect(new Set(commandIds).size, '(d) command ids are unique').toBe(commandIds.length);
    const outcomesPer = new Map<string, number>();
    for (const [, f] of outcomes) {
      const id = parseFields(f).commandId ?? '';
      outcomesPer.set(id, (outcomesPer.get(id) ?? 0) + 1);
    }
    const badOutcomes = commandIds.filter((id) => outcomesPer.get(id) !== 1);
    expect(badOutcomes, '(d) commands without exactly one outcome').toEqual([]);
    const factsPer = new Map<string, EventEnvelope[]>();
    for (const e of events) {
      const id = e.meta.commandId;
      if (id) factsPer.set(id, [...(factsPer.get(id) ?? []), e]);
    }
    const badFacts: string[] = [];
    for (const c of commandFields) {
      const facts = factsPer.get(c.commandId!) ?? [];
      const mustHaveOne = ['QueueContact', 'RegisterAgent', 'CompleteContact'].includes(c.type ?? '');
      if (facts.length > 1 || (mustHaveOne && facts.length !== 1))
        badFacts.push(`${c.type} ${c.commandId}: ${facts.map((f) => f.type).join(', ') || 'no fact'}`);
    }
    expect(badFacts, '(d) commands with a wrong number of facts').toEqual([]);
    const queuedPer = new Map<string, number>();
    for (const e of events.filter((x) => x.type === 'ContactQueued')) {
      const id = dataOf(e).id!;
      queuedPer.set(id, (queuedPer.get(id) ?? 0) + 1);
    }
    expect(
      [...queuedPer].filter(([, n]) => n !== 1),
      '(d) contacts queued twice',
    ).toEqual([]);
    expect(await redis.hget(k.meta, 'applied'), '(d) checkpoint').toBe(commands.at(-1)?.[0]);
    const rejected = events.filter((e) => e.type === 'CommandRejected').map((e) => JSON.stringify(e.data));
    expect(rejected, 'no command was rejected').toEqual([]);

    // (e) Each Idempotency-Key was appended at most once.
    const keysPer = new Map<string, number>();
    for (const c of commandFields) {
      if (c.idempotencyKey) keysPer.set(c.idempotencyKey, (keysPer.get(c.idempotencyKey) ?? 0) + 1);
    }
    expect(
      [...keysPer].filter(([, n]) => n > 1),
      '(e) keys appended twice',
    ).toEqual([]);
    expect(
      commandFields.every((c) => c.idempotencyKey),
      'every command carried its key',
    ).toBe(true);

    // The follower's feed resumed across the API kill with no gap and no duplicate.
    expect(follower.duplicates, 'duplicates on the live feed').toBe(0);
    expect(follower.seen.map((e) => e.position)).toEqual(assignments.map((e) => e.position));

    // Nothing is left pending in the projector group: entries a killed projector held are taken over.
    await waitFor(
      'the projector group to have no pending entries',
      async () => ((await redis.xpending(k.commands, PROJECTOR_GROUP)) as [number])[0] === 0,
      20_000,
      250,
    );

    expect(client.failures, 'requests that failed').toEqual([]);
    expect(unanswered).toEqual([]);
    expect(acknowledged.size).toBe(CONTACTS);
    expect(completedOk.size).toBe(assignments.length);

    console.log(
      JSON.stringify({
        suite: 'crash',
        contacts: queued,
        acknowledged: acknowledged.size,
        assignments: assignments.length,
        completed: completedOk.size,
        commands: commands.length,
        requests: client.requests,
        retries: client.retries,
        networkErrors: client.networkErrors,
        accepted202: client.accepted202,
        failedRequests: client.failed,
        statuses: client.statuses,
        wsReconnects: follower.reconnects,
        wsGapsMs: follower.gapsMs,
        recoveries,
        loadMs,
        totalMs: Date.now() - started,
      }),
    );
  }, 150_000);
});
