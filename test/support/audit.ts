/**
 * The load driver and the event-log audit shared by the crash and failover suites.
 *
 * Load (`LoadDriver`, one per workspace): registers agents (one language and one or two areas
 * each, so every (language, area) pair is served) and makes them available, follows
 * AssignmentMade over a WebSocket that reconnects with `after=<last position>` (on the next base
 * URL), completes each assignment 50..300 ms after seeing it, and queues N contacts at a bounded
 * rate, bounded in count and in time. Every request carries an Idempotency-Key and is retried
 * with the same key after a network error, a 5xx or a 202, a bounded number of times and within a
 * bounded time (`RetryingClient`, on the typed client); `failed` counts requests that never got a
 * final answer.
 *
 * Audit (`auditWorkspace`): the auditor of src/audit (`npm run audit`) on the workspace's streams,
 * documents and routing index (with a single or a Cluster client), which must report no
 * violation: (a) no contact assigned twice; (c) no agent over its capacity; (d) every command
 * applied exactly once, in order, with the model's facts and outcome, and the checkpoint at the
 * end of the command stream; every decision rule 1's for the state it was based on; (e) no
 * Idempotency-Key appended twice. On top, what only the load driver knows: (b) no acknowledged
 * contact is lost, every command carried a key, and no command was rejected unless allowed.
 */

import { type Failure, type RetryInfo, SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { expect } from 'vitest';
import WebSocket from 'ws';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { PROJECTOR_GROUP, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { RejectedCommand } from '../../src/audit/auditor.ts';
import { auditWorkspace as auditLog } from '../../src/audit/read.ts';
import type { AuditReport as FullReport } from '../../src/audit/report.ts';
import type { EventEnvelope } from '../../src/domain/events.ts';
import { sleep, waitFor } from './wait.ts';

export const LANGUAGES = ['English', 'Spanish'] as const;
export const AREAS = ['Support', 'Disputes', 'Billing'] as const;

export function comparePositions(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

/** The milliseconds part of a stream position (Redis' clock when the entry was appended). */
export const positionMs = (p: string): number => Number(p.split('-')[0]);

export interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export interface RetryOptions {
  /** Most attempts per request (first one included). Default 10. */
  readonly maxAttempts?: number;
  /** No new attempt is started this long after the first one. Default 60 s. */
  readonly retryBudgetMs?: number;
  /** Timeout of one attempt. Default 5 s. */
  readonly requestTimeoutMs?: number;
  /** Cap of the (jittered, exponential) pause between attempts. Default 1 s. */
  readonly maxBackoffMs?: number;
}

/**
 * Registers agents (one language and one or two areas each, so every (language, area) pair is
 * served) and makes them available, each command with an Idempotency-Key; throws on any other
 * answer than 201 / 200.
 */
export async function registerAvailable(client: RetryingClient, agentIds: readonly string[]): Promise<void> {
  const skillsOf = (i: number): string[] => {
    const a = Math.floor(i / 2) % AREAS.length;
    return [LANGUAGES[i % 2]!, AREAS[a]!, ...(i % 4 >= 2 ? [AREAS[(a + 1) % AREAS.length]!] : [])];
  };
  const each = (
    path: (id: string) => string,
    body: (id: string, i: number) => unknown,
    key: string,
    status: number,
  ) =>
    Promise.all(
      agentIds.map(async (id, i) => {
        const r = await client.command(path(id), body(id, i), `${key}-${id}`, i);
        if (r?.status !== status) throw new Error(`${key} ${id}: ${r?.status} ${JSON.stringify(r?.body)}`);
      }),
    );
  await each(
    () => '/agents',
    (id, i) => ({ id, skills: skillsOf(i) }),
    'register',
    201,
  );
  await each(
    (id) => `/agents/${id}/state`,
    () => ({ state: 'available' }),
    'available',
    200,
  );
}

/**
 * The load driver's client: sends each command with its Idempotency-Key and retries, with the
 * same key and on the next base URL, after a network error, a 5xx or a 202 (bounded in attempts
 * and in time), counting every try. Built on the typed client (`switchboard/client`): one per base
 * URL, the others its `failover` URLs; its `onRetry` counts, applies the time budget and sets the
 * jittered backoff.
 */
export class RetryingClient {
  requests = 0;
  /** Attempts after the first, over all requests. */
  retries = 0;
  /** Requests that needed at least one retry. */
  retriedRequests = 0;
  /** Requests that never got a final answer (every attempt failed, or the last was a 5xx or 202). */
  failed = 0;
  networkErrors = 0;
  accepted202 = 0;
  readonly statuses: Record<string, number> = {};
  /** Failed requests, and requests answered with a 4xx. */
  readonly failures: string[] = [];
  /** When each 2xx answer (other than 202) arrived, in arrival order. */
  readonly okAt: number[] = [];
  /** One typed client per base URL: client i tries apiUrls[i] first, then the next ones in turn. */
  readonly clients: readonly SwitchboardClient[];
  private readonly retryBudgetMs: number;
  private readonly maxBackoffMs: number;

  constructor(apiUrls: readonly string[], ws: string, opts: RetryOptions = {}) {
    this.retryBudgetMs = opts.retryBudgetMs ?? 60_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 1_000;
    this.clients = apiUrls.map(
      (url, i) =>
        new SwitchboardClient({
          url,
          workspace: ws,
          failover: [...apiUrls.slice(i + 1), ...apiUrls.slice(0, i)],
          retries: (opts.maxAttempts ?? 10) - 1,
          timeoutMs: opts.requestTimeoutMs ?? 5_000,
          // No answer, a 5xx, or a 202 (durable, outcome not known yet): again, with the same key.
          retryOn: (s) => typeof s !== 'number' || s === 202 || s >= 500,
        }),
    );
  }

  /** Counts one try's outcome: its status (202s apart), or a network error or timeout. */
  private record(status: Failure): void {
    if (typeof status !== 'number') {
      this.networkErrors++;
      return;
    }
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    if (status === 202) this.accepted202++;
  }

  /**
   * POST `path` (relative to the workspace) with `key`. Returns the last answer, or null when
   * every attempt failed with a network error. `first` picks the base URL of the first attempt.
   */
  async command(path: string, body: unknown, key: string, first: number): Promise<Reply | null> {
    this.requests++;
    const started = Date.now();
    const client = this.clients[first % this.clients.length]!;
    let last: Reply | null = null;
    let attempts = 0;
    // Each try that is tried again is counted here; the last one (the call's answer) below,
    // unless the retry budget stopped the retries after it was counted here.
    let counted = false;
    const onRetry = (i: RetryInfo): boolean | number => {
      attempts = i.attempt;
      this.record(i.status);
      if (typeof i.status === 'number') last = { status: i.status, body: i.body as Record<string, unknown> };
      if (Date.now() - started > this.retryBudgetMs) {
        counted = true;
        return false;
      }
      if (i.attempt === 1) this.retriedRequests++;
      this.retries++;
      // Jittered, exponential, capped; not Retry-After's second (the failover suites measure the gap).
      return Math.min(this.maxBackoffMs, 50 * 2 ** i.attempt) * (0.5 + Math.random());
    };
    let final: Failure;
    try {
      const a = await client.send('POST', `${client.workspacePath}${path}`, {
        ...(body !== undefined ? { body } : {}),
        idempotencyKey: key,
        onRetry,
      });
      attempts = a.attempts;
      final = a.status;
      last = { status: a.status, body: a.body as Record<string, unknown> };
    } catch (err) {
      if (!(err instanceof SwitchboardError)) throw err;
      attempts = Math.max(attempts, err.attempts);
      final = err.status;
    }
    if (!counted) this.record(final);
    const settled = typeof final === 'number' && final !== 202 && final < 500;
    if (settled) {
      const r = last as Reply | null;
      if (r && r.status < 300) this.okAt.push(Date.now());
      else this.failures.push(`${path} (${key}): ${r?.status} ${JSON.stringify(r?.body)}`);
      return r;
    }
    this.failed++;
    const l = last as Reply | null;
    this.failures.push(
      `${path} (${key}): no final answer after ${attempts} attempts in ${Date.now() - started} ms (last ${l?.status} ${l ? JSON.stringify(l.body) : ''})`,
    );
    return l?.status === 202 ? l : null;
  }
}

/** Disruption seen by a client around `at`: the first success after it and the longest silence. */
export interface TrafficGap {
  /** From `at` to the first 2xx answer that arrived after it. */
  readonly firstOkAfterMs: number | null;
  /** Longest time between two consecutive 2xx answers from `at - 1 s` on (or from `at`). */
  readonly longestGapMs: number;
  /** When that longest gap started, relative to `at` (negative: before it). */
  readonly longestGapStartMs: number | null;
}

export function trafficGap(
  okAt: readonly number[],
  at: number,
  until = Number.POSITIVE_INFINITY,
): TrafficGap {
  const first = okAt.find((t) => t > at);
  const window = okAt.filter((t) => t >= at - 1_000 && t <= until);
  // Silence from the kill to the first answer counts too, when nothing answered just before it.
  const points = window.length > 0 && window[0]! > at ? [at, ...window] : window;
  let longest = 0;
  let start: number | null = null;
  for (let i = 1; i < points.length; i++) {
    const gap = points[i]! - points[i - 1]!;
    if (gap > longest) {
      longest = gap;
      start = points[i - 1]! - at;
    }
  }
  return {
    firstOkAfterMs: first === undefined ? null : first - at,
    longestGapMs: longest,
    longestGapStartMs: start,
  };
}

/**
 * Follows AssignmentMade over a WebSocket; when the socket closes it reconnects to the next base
 * URL with `after=<last position>`, so the feed must resume with no gap and no duplicate.
 *
 * It keeps the client's rule of docs/API.md: a socket that has heard nothing (no event, no
 * heartbeat) for twice the server's heartbeat interval is on a dead path (the VIP moved away from
 * the HAProxy it went through: no close will ever come), so it is dropped and opened again from
 * the last event's position (`deadPaths` counts these). Unlike the typed client, it counts the
 * duplicates the server sends instead of passing over them.
 */
export class AssignmentFollower {
  last = '0-0';
  readonly seen: EventEnvelope[] = [];
  duplicates = 0;
  reconnects = 0;
  /** Sockets dropped for silence (the heartbeat rule). */
  deadPaths = 0;
  readonly gapsMs: number[] = [];
  /** The server's heartbeat interval: its default until a heartbeat names it. */
  private heartbeatEvery = 10_000;
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

  /** Whether an AssignmentMade appended after `at` (Redis clock, ms) was seen. */
  seenAfter(at: number): boolean {
    return this.seen.some((e) => positionMs(e.position) > at);
  }

  private connect(opened?: () => void): void {
    if (this.stopped) return;
    const base = this.apiUrls[this.index % this.apiUrls.length]!.replace('http', 'ws');
    const socket = new WebSocket(
      `${base}/v1/workspaces/${this.ws}/events/live?type=AssignmentMade&after=${this.last}`,
    );
    this.socket = socket;
    // The watchdog: anything heard moves `heardAt`; silence past two intervals drops the socket
    // (terminate: no closing handshake can pass a dead path), and its close reconnects.
    let heardAt = Date.now();
    const watch = setInterval(() => {
      if (Date.now() - heardAt <= 2 * this.heartbeatEvery) return;
      clearInterval(watch);
      this.deadPaths++;
      socket.terminate();
    }, 250);
    socket.on('open', () => {
      heardAt = Date.now();
      if (this.closedAt !== undefined) this.gapsMs.push(Date.now() - this.closedAt);
      this.closedAt = undefined;
      opened?.();
    });
    socket.on('message', (data) => {
      heardAt = Date.now();
      const e = JSON.parse(String(data)) as EventEnvelope | { heartbeat: { everyMs?: unknown } };
      if ('heartbeat' in e) {
        // The feed's heartbeat (docs/API.md): no event; it names the interval.
        const every = e.heartbeat.everyMs;
        if (typeof every === 'number' && every > 0) this.heartbeatEvery = every;
        return;
      }
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
      clearInterval(watch);
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

export interface LoadOptions extends RetryOptions {
  /** Base URLs (`http://host:port`); requests rotate over them, retries move to the next one. */
  readonly apiUrls: readonly string[];
  readonly ws: string;
  readonly contacts: number;
  readonly agents: number;
  readonly ratePerS: number;
  /** Stop sending new contacts this long after `run()` started, even if not all were sent. */
  readonly deadlineMs: number;
  /** Most contact requests in flight at once. Default 64. */
  readonly maxInFlight?: number;
}

export interface LoadResult {
  readonly queued: number;
  readonly loadMs: number;
}

/** A bounded load on one workspace: agents that cycle, and contacts queued at a rate. */
export class LoadDriver {
  readonly client: RetryingClient;
  readonly follower: AssignmentFollower;
  /** Contacts whose QueueContact was answered 200/201/202, with that status. */
  readonly acknowledged = new Map<string, number>();
  /** Contacts whose QueueContact got no acknowledgement. */
  readonly unanswered: string[] = [];
  /** Contacts whose CompleteContact was answered 200. */
  readonly completedOk = new Set<string>();
  readonly agentIds: string[] = [];
  queued = 0;
  loadStart = 0;
  private readonly completions = new Set<Promise<unknown>>();
  private completeIndex = 0;

  constructor(readonly opts: LoadOptions) {
    this.client = new RetryingClient(opts.apiUrls, opts.ws, opts);
    for (let i = 0; i < opts.agents; i++) this.agentIds.push(`agent-${String(i).padStart(2, '0')}`);
    this.follower = new AssignmentFollower(opts.apiUrls, opts.ws, (e) => this.complete(e));
  }

  /** Completions still to be answered. */
  get pendingCompletions(): number {
    return this.completions.size;
  }

  /** Registers the agents, makes them available, and starts following assignments. */
  async prepare(): Promise<void> {
    await registerAvailable(this.client, this.agentIds);
    await this.follower.start();
  }

  /**
   * An agent completes what it was assigned 50..300 ms after it saw the assignment. The key names
   * the assignment (contact and position), so an assignment that a Redis failover rolled back and
   * that is made again later is completed under a key of its own.
   */
  private complete(e: EventEnvelope): void {
    const contactId = String((e.data as { contactId: string }).contactId);
    const p = sleep(50 + Math.random() * 250)
      .then(() =>
        this.client.command(
          `/contacts/${contactId}/complete`,
          undefined,
          `complete-${contactId}-${e.position}`,
          this.completeIndex++,
        ),
      )
      .then((r) => {
        if (r?.status === 200) this.completedOk.add(contactId);
      });
    this.completions.add(p);
    void p.finally(() => this.completions.delete(p));
  }

  /** Queues the contacts at the rate, bounded in count and in time; resolves when all are answered. */
  async run(): Promise<LoadResult> {
    const { contacts, ratePerS, deadlineMs } = this.opts;
    const maxInFlight = this.opts.maxInFlight ?? 64;
    const inFlight = new Set<Promise<void>>();
    const random = (n: number) => Math.floor(Math.random() * n);
    this.loadStart = Date.now();
    let next = this.loadStart;
    for (let i = 0; i < contacts && Date.now() - this.loadStart < deadlineMs; i++) {
      // Paced from the previous send, so a stall is not followed by a burst.
      next = Math.max(Date.now(), next + 1_000 / ratePerS);
      await sleep(next - Date.now());
      while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
      const id = `contact-${String(i).padStart(4, '0')}`;
      const body = { id, skills: [LANGUAGES[random(2)]!, AREAS[random(3)]!], priority: random(3) };
      const p = this.client.command('/contacts', body, `queue-${id}`, i).then((r) => {
        if (r && (r.status === 201 || r.status === 200 || r.status === 202))
          this.acknowledged.set(id, r.status);
        else this.unanswered.push(id);
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      this.queued++;
    }
    await Promise.all(inFlight);
    return { queued: this.queued, loadMs: Date.now() - this.loadStart };
  }

  /** Waits until no completion is pending, nothing is queued and the checkpoint is at the stream's end. */
  async quiesce(redis: RedisClient, timeoutMs = 30_000): Promise<void> {
    const k = workspaceKeys(this.opts.ws);
    let state = '';
    await waitFor(
      `workspace ${this.opts.ws} to be quiet`,
      async () => {
        const queued = await redis.zcard(k.queue);
        const head = ((await redis.xrevrange(k.commands, '+', '-', 'COUNT', 1)) as StreamEntry[])[0]?.[0];
        const applied = await redis.hget(k.meta, 'applied');
        state = `completions pending ${this.completions.size}, queued ${queued}, applied ${applied}, head ${head}`;
        return this.completions.size === 0 && queued === 0 && applied === head;
      },
      { timeoutMs, everyMs: 100 },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (${state})`);
    });
  }

  stop(): void {
    this.follower.stop();
  }

  /** Counters of the client and the feed, for the suite's JSON report. */
  summary(): Record<string, unknown> {
    const c = this.client;
    return {
      ws: this.opts.ws,
      contacts: this.queued,
      acknowledged: this.acknowledged.size,
      completed: this.completedOk.size,
      requests: c.requests,
      retries: c.retries,
      retriedRequests: c.retriedRequests,
      networkErrors: c.networkErrors,
      accepted202: c.accepted202,
      failedRequests: c.failed,
      statuses: c.statuses,
      wsReconnects: this.follower.reconnects,
      wsGapsMs: this.follower.gapsMs,
    };
  }
}

/** Waits until the projector group of `ws` has no pending entries (a killed projector's are taken over). */
export async function waitProjectorSettled(
  redis: RedisClient,
  ws: string,
  timeoutMs = 20_000,
): Promise<void> {
  const k = workspaceKeys(ws);
  await waitFor(
    `the projector group of ${ws} to have no pending entries`,
    async () => ((await redis.xpending(k.commands, PROJECTOR_GROUP)) as [number])[0] === 0,
    { timeoutMs, everyMs: 250 },
  );
}

export type { RejectedCommand } from '../../src/audit/auditor.ts';

export interface AuditOptions {
  /**
   * Extra check of an acknowledged contact that was never assigned (e.g. GET it through the API):
   * resolve with a description of the problem, or undefined when it is queued or abandoned.
   */
  readonly checkUnassigned?: (contactId: string) => Promise<string | undefined>;
  /** Rejections that are expected (default: none is). */
  readonly allowRejected?: (r: RejectedCommand) => boolean;
}

export interface AuditReport {
  readonly ws: string;
  readonly commands: number;
  readonly events: number;
  readonly assignments: number;
  /** Positions of the AssignmentMade events, in stream order. */
  readonly assignmentPositions: readonly string[];
  /** Acknowledged contacts that are still queued or were abandoned (not assigned). */
  readonly unassigned: number;
  readonly rejected: readonly RejectedCommand[];
  readonly checkpoint: string | null;
  /** The auditor's own report (src/audit). */
  readonly audit: FullReport;
}

/**
 * The event-log audit of a quiet workspace: the auditor (src/audit, what `npm run audit` runs)
 * must find no violation, which covers (a), (c), (d) and the first half of (e); and on top, what
 * only the load driver knows: (b) every acknowledged contact was queued and is assigned,
 * completed, queued or abandoned; every command carried an Idempotency-Key; and no command was
 * rejected unless the caller allows it.
 */
export async function auditWorkspace(
  redis: RedisClient,
  ws: string,
  acknowledgedContactIds: Iterable<string>,
  opts: AuditOptions = {},
): Promise<AuditReport> {
  const audit = await auditLog(redis, ws, { idle: true });
  const violations = audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`);
  expect(violations, `${ws}: violations found by the auditor (${audit.violationCount} in all)`).toEqual([]);
  expect(audit.pendingCommands, `(d) ${ws}: commands appended after the checkpoint`).toBe(0);
  expect(audit.state, `${ws}: documents and routing index`).toBe('compared');

  // (b) None lost: every acknowledged contact was queued; those not assigned are checked further.
  const lost: string[] = [];
  let unassigned = 0;
  for (const id of acknowledgedContactIds) {
    const c = audit.replay.contacts.get(id);
    if (!c) {
      lost.push(`${id}: no ContactQueued in the log`);
      continue;
    }
    if (c.state === 'assigned' || c.state === 'completed') continue;
    unassigned++;
    const problem = await opts.checkUnassigned?.(id);
    if (problem !== undefined) lost.push(`${id}: ${problem}`);
  }
  expect(lost, `(b) ${ws}: acknowledged contacts neither assigned, queued nor abandoned`).toEqual([]);

  const unexpected = audit.rejected.filter((r) => !opts.allowRejected?.(r)).map((r) => JSON.stringify(r));
  expect(unexpected, `${ws}: no command was rejected`).toEqual([]);
  // (e) The load driver sends every command with a key (the auditor checks none was appended twice).
  expect(audit.commandsWithoutIdempotencyKey, `(e) ${ws}: commands without an Idempotency-Key`).toBe(0);

  return {
    ws,
    commands: audit.commands,
    events: audit.events,
    assignments: audit.assignments,
    assignmentPositions: audit.assignmentPositions,
    unassigned,
    rejected: audit.rejected,
    checkpoint: audit.checkpoint,
    audit,
  };
}
