/**
 * A load with offers (workspace setting `offerTimeoutMs > 0`), for the lifecycle crash suite
 * (test/e2e/lifecycle-crash.test.ts), and the checks of what the log says about offers and timers.
 *
 * Load (`OfferLoad`): registers agents (one language and one or two areas each, as the crash
 * suite's load driver does) and makes them available, follows AssignmentMade over a WebSocket and
 * answers each offer after a short random delay: most are accepted (and the contact completed a
 * little later, which starts a wrap-up), some rejected, some ignored (they expire). Contacts are
 * queued at a bounded rate. Every request carries an Idempotency-Key and is retried with it
 * (`RetryingClient`). An answer that comes too late (the offer expired first) is a 409
 * `/problems/contact-not-offered`: counted, and allowed by `lateAnswer`.
 *
 * Checks (`offerLedger`, `timerCommands`): from the event stream, every offer is resolved exactly
 * once (AssignmentAccepted, AssignmentRejected, AssignmentExpired, or withdrawn by
 * ContactAbandoned/ContactExpired) before the contact's next offer, and none is left open; from
 * the command stream, every timer command's commandId (`timer:<member>:<due ms>`) is distinct,
 * each timer member fired at most once, and no offer was expired by two ExpireOffer commands.
 */
import { type SettingsChange, SwitchboardClient } from 'switchboard/client';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { parseFields, toEnvelope } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { RejectedCommand } from '../../src/audit/auditor.ts';
import type { EventEnvelope } from '../../src/domain/events.ts';
import { AREAS, AssignmentFollower, LANGUAGES, RetryingClient, registerAvailable } from './audit.ts';
import { sleep, waitFor } from './wait.ts';

export interface OfferLoadOptions {
  readonly apiUrls: readonly string[];
  readonly ws: string;
  readonly agents: number;
  readonly contacts: number;
  readonly ratePerS: number;
  /** Stop queueing contacts this long after `run()` started. */
  readonly deadlineMs: number;
  /** Share of offers accepted, and rejected; the rest are ignored (they expire). */
  readonly acceptShare: number;
  readonly rejectShare: number;
  /** An answer comes this long after the offer is seen: [min, max) ms. */
  readonly answerDelayMs: readonly [number, number];
  /** An accepted contact is completed this long after its accept was answered: [min, max) ms. */
  readonly completeDelayMs: readonly [number, number];
}

type Action = 'accept' | 'reject' | 'ignore';

const between = ([min, max]: readonly [number, number]) => min + Math.random() * (max - min);

/**
 * A late answer: the offer had expired before the answer was applied (the contact is no longer
 * offered, or already offered to another agent).
 */
export const lateAnswer = (r: RejectedCommand): boolean =>
  (r.command === 'AcceptOffer' || r.command === 'RejectOffer') &&
  r.status === 409 &&
  /not offered|another agent/i.test(r.title);

const LATE_TYPES = new Set(['/problems/contact-not-offered', '/problems/offer-not-yours']);

export class OfferLoad {
  readonly client: RetryingClient;
  readonly follower: AssignmentFollower;
  readonly agentIds: string[] = [];
  /** Offers seen on the feed, by what the load did with them. */
  readonly actions: Record<Action, number> = { accept: 0, reject: 0, ignore: 0 };
  /** Answers the API took (200), and answers that came too late (409). */
  accepted = 0;
  rejected = 0;
  lateAnswers = 0;
  completed = 0;
  /** Assignments seen without an offer (there should be none: offers are on from the start). */
  withoutOffer = 0;
  /** Answers and completions that got any other reply. */
  readonly unexpected: string[] = [];
  queued = 0;
  readonly acknowledged = new Set<string>();
  private readonly work = new Set<Promise<unknown>>();
  private next = 0;

  constructor(readonly opts: OfferLoadOptions) {
    this.client = new RetryingClient(opts.apiUrls, opts.ws, { maxAttempts: 15 });
    for (let i = 0; i < opts.agents; i++) this.agentIds.push(`agent-${String(i).padStart(2, '0')}`);
    this.follower = new AssignmentFollower(opts.apiUrls, opts.ws, (e) => this.onAssignment(e));
  }

  /** Answers and completions not finished yet. */
  get inFlight(): number {
    return this.work.size;
  }

  /** Registers the agents, makes them available and starts following offers. */
  async prepare(): Promise<void> {
    await registerAvailable(this.client, this.agentIds);
    await this.follower.start();
  }

  private track(p: Promise<unknown>): void {
    this.work.add(p);
    void p.finally(() => this.work.delete(p));
  }

  private onAssignment(e: EventEnvelope): void {
    const data = e.data as { contactId: string; agentId: string; offer?: { id: number } };
    if (!data.offer) {
      this.withoutOffer++;
      return;
    }
    const { acceptShare, rejectShare } = this.opts;
    const roll = Math.random();
    const action: Action =
      roll < acceptShare ? 'accept' : roll < acceptShare + rejectShare ? 'reject' : 'ignore';
    this.actions[action]++;
    if (action === 'ignore') return;
    const { contactId, agentId } = data;
    const offer = data.offer.id;
    this.track(
      sleep(between(this.opts.answerDelayMs)).then(async () => {
        const r = await this.client.command(
          `/contacts/${contactId}/${action}`,
          { agentId },
          `${action}-${contactId}-${offer}`,
          this.next++,
        );
        if (r?.status === 409 && LATE_TYPES.has(String(r.body.type))) {
          this.lateAnswers++;
          return;
        }
        if (r?.status !== 200) {
          this.unexpected.push(
            `${action} ${contactId} offer ${offer}: ${r?.status} ${JSON.stringify(r?.body)}`,
          );
          return;
        }
        if (action === 'reject') {
          this.rejected++;
          return;
        }
        this.accepted++;
        await sleep(between(this.opts.completeDelayMs));
        const c = await this.client.command(
          `/contacts/${contactId}/complete`,
          undefined,
          `complete-${contactId}`,
          this.next++,
        );
        if (c?.status === 200) this.completed++;
        else this.unexpected.push(`complete ${contactId}: ${c?.status} ${JSON.stringify(c?.body)}`);
      }),
    );
  }

  /** Queues the contacts at the rate, bounded in count and in time; resolves when all are answered. */
  async run(): Promise<void> {
    const { contacts, ratePerS, deadlineMs } = this.opts;
    const started = Date.now();
    let next = started;
    const sends = new Set<Promise<void>>();
    const random = (n: number) => Math.floor(Math.random() * n);
    for (let i = 0; i < contacts && Date.now() - started < deadlineMs; i++) {
      next = Math.max(Date.now(), next + 1_000 / ratePerS);
      await sleep(next - Date.now());
      const id = `contact-${String(i).padStart(4, '0')}`;
      const body = { id, skills: [LANGUAGES[random(2)]!, AREAS[random(3)]!], priority: random(3) };
      const p = this.client.command('/contacts', body, `queue-${id}`, i).then((r) => {
        if (r && (r.status === 201 || r.status === 202)) this.acknowledged.add(id);
        else this.unexpected.push(`queue ${id}: ${r?.status} ${JSON.stringify(r?.body)}`);
      });
      sends.add(p);
      void p.finally(() => sends.delete(p));
      this.queued++;
    }
    await Promise.all(sends);
  }

  /**
   * Waits until the workspace is at rest: no answer or completion in flight, no timer left, the
   * checkpoint at the command stream's end and no new offer, on `stableChecks` polls in a row.
   */
  async quiesce(redis: RedisClient, timeoutMs = 30_000, stableChecks = 4): Promise<void> {
    const k = workspaceKeys(this.opts.ws);
    let state = '';
    let stable = 0;
    let seen = -1;
    await waitFor(
      () => `workspace ${this.opts.ws} to be at rest (${state})`,
      async () => {
        const [timers, head, applied] = await Promise.all([
          redis.zcard(k.timers),
          redis.xrevrange(k.commands, '+', '-', 'COUNT', 1) as Promise<StreamEntry[]>,
          redis.hget(k.meta, 'applied'),
        ]);
        const headId = head[0]?.[0];
        state = `in flight ${this.work.size}, timers ${timers}, applied ${applied}, head ${headId}, offers seen ${this.follower.seen.length}`;
        const quiet =
          this.work.size === 0 && timers === 0 && applied === headId && this.follower.seen.length === seen;
        seen = this.follower.seen.length;
        stable = quiet ? stable + 1 : 0;
        return stable >= stableChecks;
      },
      { timeoutMs, everyMs: 150 },
    );
  }

  stop(): void {
    this.follower.stop();
  }

  summary(): Record<string, unknown> {
    const c = this.client;
    return {
      contacts: this.queued,
      acknowledged: this.acknowledged.size,
      offersSeen: this.follower.seen.length,
      actions: this.actions,
      accepted: this.accepted,
      rejected: this.rejected,
      lateAnswers: this.lateAnswers,
      completed: this.completed,
      requests: c.requests,
      retries: c.retries,
      accepted202: c.accepted202,
      networkErrors: c.networkErrors,
      statuses: c.statuses,
    };
  }
}

/** PUTs the workspace settings and waits for them to apply (200); a refusal throws its SwitchboardError. */
export async function putSettings(
  apiUrl: string,
  ws: string,
  settings: Record<string, unknown>,
): Promise<void> {
  const client = new SwitchboardClient({ url: apiUrl, workspace: ws });
  const r = await client.putSettings(settings as SettingsChange, { idempotencyKey: `settings-${ws}` });
  if (r.status !== 200) throw new Error(`PUT settings: ${r.status} ${JSON.stringify(r)}`);
}

/** Every entry of a stream, in order, in pages. */
export async function readStream(redis: RedisClient, key: string, page = 5_000): Promise<StreamEntry[]> {
  const out: StreamEntry[] = [];
  let from = '-';
  for (;;) {
    const entries = (await redis.xrange(key, from, '+', 'COUNT', page)) as StreamEntry[];
    out.push(...entries);
    if (entries.length < page) return out;
    from = `(${entries[entries.length - 1]![0]}`;
  }
}

export interface OfferLedger {
  /** AssignmentMade events with an offer. */
  readonly offers: number;
  readonly resolvedBy: Record<string, number>;
  /** Each problem with its event position: an offer resolved twice, not at all, or re-offered open. */
  readonly problems: readonly string[];
  /** AssignmentMade events without an offer. */
  readonly withoutOffer: number;
}

const RESOLUTIONS = new Set(['AssignmentAccepted', 'AssignmentRejected', 'AssignmentExpired']);
const WITHDRAWALS = new Set(['ContactAbandoned', 'ContactExpired']);

/**
 * Every offer resolved exactly once: after an AssignmentMade with an offer, exactly one of
 * AssignmentAccepted / AssignmentRejected / AssignmentExpired (or a withdrawal of the contact:
 * ContactAbandoned, ContactExpired) for that contact before its next offer, and none left open.
 */
export async function offerLedger(redis: RedisClient, ws: string): Promise<OfferLedger> {
  const events = (await readStream(redis, workspaceKeys(ws).events)).map(toEnvelope);
  const open = new Map<string, { offer: number; position: string }>();
  const problems: string[] = [];
  const resolvedBy: Record<string, number> = {};
  let offers = 0;
  let withoutOffer = 0;
  for (const e of events) {
    const d = e.data as { contactId?: string; offer?: { id: number }; reason?: string };
    if (e.type === 'AssignmentMade') {
      if (!d.offer) {
        withoutOffer++;
        continue;
      }
      offers++;
      const before = open.get(d.contactId!);
      if (before)
        problems.push(
          `${e.position} ${d.contactId}: offer ${d.offer.id} made while offer ${before.offer} (${before.position}) is open`,
        );
      open.set(d.contactId!, { offer: d.offer.id, position: e.position });
      continue;
    }
    const resolution = RESOLUTIONS.has(e.type);
    if (!resolution && !WITHDRAWALS.has(e.type)) continue;
    const o = open.get(d.contactId!);
    if (!o) {
      if (resolution) problems.push(`${e.position} ${d.contactId}: ${e.type} with no offer open`);
      continue;
    }
    open.delete(d.contactId!);
    const how = e.type === 'AssignmentRejected' ? `${e.type}:${d.reason}` : e.type;
    resolvedBy[how] = (resolvedBy[how] ?? 0) + 1;
  }
  for (const [contactId, o] of open)
    problems.push(`${o.position} ${contactId}: offer ${o.offer} never resolved`);
  return { offers, resolvedBy, problems, withoutOffer };
}

export interface TimerCommands {
  /** Commands whose commandId starts with `timer:`, by type. */
  readonly byType: Record<string, number>;
  readonly total: number;
  /** commandIds appended more than once. */
  readonly duplicateIds: readonly string[];
  /** Timer members (`o|<contact>|<offer>`, ...) fired more than once. */
  readonly duplicateMembers: readonly string[];
  /** Offers (`<contact>|<offer>`) named by more than one ExpireOffer command. */
  readonly offersExpiredTwice: readonly string[];
}

/** The timer commands of the command stream: each appended once, each timer fired once. */
export async function timerCommands(redis: RedisClient, ws: string): Promise<TimerCommands> {
  const entries = await readStream(redis, workspaceKeys(ws).commands);
  const ids = new Map<string, number>();
  const members = new Map<string, number>();
  const expires = new Map<string, number>();
  const byType: Record<string, number> = {};
  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);
  for (const [, fields] of entries) {
    const f = parseFields(fields);
    if (f.type === 'ExpireOffer') {
      const c = JSON.parse(f.command ?? '{}') as { contactId: string; offer: number };
      bump(expires, `${c.contactId}|${c.offer}`);
    }
    const id = f.commandId ?? '';
    if (!id.startsWith('timer:')) continue;
    byType[f.type ?? '?'] = (byType[f.type ?? '?'] ?? 0) + 1;
    bump(ids, id);
    bump(members, id.slice('timer:'.length, id.lastIndexOf(':')));
  }
  const twice = (m: Map<string, number>) => [...m].filter(([, n]) => n > 1).map(([key, n]) => `${key} ×${n}`);
  return {
    byType,
    total: [...ids.values()].reduce((a, b) => a + b, 0),
    duplicateIds: twice(ids),
    duplicateMembers: twice(members),
    offersExpiredTwice: twice(expires),
  };
}

/** The timers outstanding now, by kind (`o` offers, `w` wrap-ups, `m` maximum waits). */
export async function outstandingTimers(redis: RedisClient, ws: string): Promise<Record<string, number>> {
  const members = await redis.zrange(workspaceKeys(ws).timers, 0, -1);
  const out: Record<string, number> = {};
  for (const m of members) out[m[0]!] = (out[m[0]!] ?? 0) + 1;
  return out;
}
