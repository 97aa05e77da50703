/**
 * The contact-center simulator: agents and customers driven through Switchboard's public HTTP
 * API, assignments watched on the live WebSocket feed. Everything random comes from the seed,
 * drawn before the run starts, so two runs with one seed have the same plan.
 *
 * With offers on (the workspace's `offerTimeoutMs > 0`), each offer is answered as planned: the
 * agent accepts after a random delay, or rejects it, or lets it expire (and, set away by it,
 * comes back available after a break). Wrap-ups and contacts past their maximum wait are the
 * server's timers: the simulator counts them from the feed.
 */
import { DEFAULT_SETTINGS } from '../../domain/model.ts';
import { FatalError, type HttpResult, pool, retryable, SwitchboardHttp } from './http.ts';
import { type Envelope, LiveFeed } from './live-feed.ts';
import { type Rng, seededRandom, seedSkills, uniform } from './random.ts';
import { mean, percentile, round } from './stats.ts';
import {
  type ContactState,
  type EndedBy,
  type Progress,
  type SimParameters,
  type SimSettings,
  type SimSummary,
  tally,
} from './summary.ts';

/** The workspace settings a run asks for (PUT /settings); what is not given keeps its current value. */
export interface SettingsRequest {
  readonly offerTimeoutMs?: number;
  readonly wrapUpMs?: number;
  readonly maxWaitMs?: number | null;
  readonly priorityWeightMs?: number | null;
  readonly agentSelection?: string;
}

export interface SimOptions extends SimParameters {
  readonly url: string;
  /** The API key of the workspace (sent on every request and the live feed), when one is needed. */
  readonly key?: string;
  readonly workspace: string;
  readonly seed: number;
  readonly settings?: SettingsRequest;
}

/** How an agent answers one offer: the answer and after how long (a miss waits for the expiry). */
interface OfferAnswer {
  readonly kind: 'accept' | 'reject' | 'miss';
  readonly delayMs: number;
}

/** The outstanding offer of a contact, as AssignmentMade told it. */
interface OfferSeen {
  readonly id: number;
  readonly agentId: string;
  readonly madeAt: number;
  readonly waitedMs: number | undefined;
}

interface SimContact {
  readonly id: string;
  readonly skills: string[];
  readonly priority: number;
  readonly handleMs: number;
  /** How its first offers are answered, in order (drawn up front); later ones are accepted. */
  readonly answers: readonly OfferAnswer[];
  offersSeen: number;
  offer?: OfferSeen;
  state: ContactState;
  everAssigned: boolean;
  /** What GET /contacts/{id} estimated right after it was queued: when read, and the wait it gave. */
  estimate?: { readonly readAt: number; readonly ms: number };
  patience?: NodeJS.Timeout;
  handling?: NodeJS.Timeout;
  /** Its customer hung up before its create was answered, and the abandon found no contact yet. */
  abandonWhenQueued?: boolean;
}

const AGENT_CONCURRENCY = 64;
/** Offer answers drawn up front per contact (a contact offered more often than this is accepted). */
const PLANNED_ANSWERS = 4;
/** The events the simulator follows on the live feed. */
const FEED_TYPES = [
  'AssignmentMade',
  'ContactAbandoned',
  'AssignmentAccepted',
  'AssignmentRejected',
  'AssignmentExpired',
  'WrapUpStarted',
  'WrapUpEnded',
  'ContactExpired',
];
/** Further tries of a command that met a network failure, a timeout or a 5xx (backoff 250 ms, doubling). */
const RETRIES = 4;
/** The longest a Node.js timer waits (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function positionMs(position: string): number {
  return Number(position.split('-')[0]);
}

export class Simulator {
  private readonly http: SwitchboardHttp;
  private readonly rng: Rng;
  /** The agents' answers to offers: a stream of its own, so a seed's skills and times stay as they were. */
  private readonly answerRng: Rng;
  private readonly tag = Date.now().toString(36);
  private readonly agentIds: string[] = [];
  private readonly ownAgents = new Set<string>();
  private readonly agentSkills: string[][] = [];
  /** Each agent's level on each of its skills (used with --levels). */
  private readonly agentLevels: number[][] = [];
  private readonly contacts: SimContact[] = [];
  private readonly byId = new Map<string, SimContact>();
  private readonly waits: number[] = [];
  /** The estimated waits' absolute errors, the waits they were checked against, and the estimates (ms). */
  private readonly estimateErrors: number[] = [];
  private readonly estimatedWaits: number[] = [];
  private readonly estimates: number[] = [];
  private readonly errorsByStatus: Record<string, number> = {};
  private readonly errorSamples: string[] = [];
  private errors = 0;
  /** Failures of the live feed itself (each followed by a reconnection), and the last one's message. */
  private liveFailures = 0;
  private lastLiveFailure: string | undefined;
  private accepted202 = 0;
  private retries = 0;
  private abandonRaced = 0;
  private answerRaced = 0;
  private readonly offers = { made: 0, accepted: 0, rejected: 0, expired: 0, withdrawn: 0, contactLeft: 0 };
  private readonly acceptMs: number[] = [];
  private wrapUps = 0;
  private wrapUpsEnded = 0;
  private comebacks = 0;
  private settings: SimSettings = DEFAULT_SETTINGS;
  private counts = {
    sent: 0,
    waiting: 0,
    inService: 0,
    completed: 0,
    abandoned: 0,
    expired: 0,
    failed: 0,
  };
  private ending = false;
  /** After the run: the events the feed had not delivered yet are read from GET /events. */
  private draining = false;
  /** The run's commands on their way (cleanup waits for them). */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** The position of the last event the run took from its feed (or the drain), if any. */
  private lastTaken: string | undefined;
  private finish: ((by: EndedBy) => void) | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly live: LiveFeed;

  /** Called whenever a count changes (the progress bar). */
  onProgress: (p: Progress) => void = () => {};

  constructor(readonly opts: SimOptions) {
    this.http = new SwitchboardHttp(opts.url, 15_000, opts.key);
    this.rng = seededRandom(opts.seed);
    this.answerRng = seededRandom(opts.seed ^ 0x5bd1e995);
    // The whole plan is drawn up front, in a fixed order, so the seed alone decides it.
    // Priorities and levels come from a stream of their own: a seed's plan stays as it was.
    const policyRng = seededRandom(opts.seed ^ 0x27d4eb2f);
    for (let i = 0; i < opts.agents; i++) {
      this.agentIds.push(`${this.tag}.agent-${i + 1}`);
      this.ownAgents.add(`${this.tag}.agent-${i + 1}`);
      this.agentSkills.push(seedSkills(this.rng));
      this.agentLevels.push(this.agentSkills[i]!.map(() => 1 + Math.floor(policyRng() * 5)));
    }
    for (let i = 0; i < opts.contacts; i++) {
      const c: SimContact = {
        id: `${this.tag}.contact-${i + 1}`,
        skills: seedSkills(this.rng),
        priority: opts.priorities > 1 ? Math.floor(policyRng() * opts.priorities) : 0,
        handleMs: Math.round(uniform(this.rng, opts.handleMinS, opts.handleMaxS) * 1000),
        answers: Array.from({ length: PLANNED_ANSWERS }, () => this.drawAnswer()),
        offersSeen: 0,
        state: 'planned',
        everAssigned: false,
      };
      this.contacts.push(c);
      this.byId.set(c.id, c);
    }
    const held = [...new Set(this.agentSkills.map((s) => s.join(',')))].map((s) => new Set(s.split(',')));
    this.unservable = this.contacts.filter((c) => !held.some((h) => c.skills.every((s) => h.has(s)))).length;
    this.live = new LiveFeed(
      this.http.client.with({ workspace: opts.workspace }),
      FEED_TYPES,
      (e) => this.onEvent(e),
      (err, e) => this.feedFailed(err, e),
    );
  }

  /** Contacts whose skills no agent of this run holds all of (they can only abandon). */
  readonly unservable: number;

  private drawAnswer(): OfferAnswer {
    const o = this.opts;
    const r = this.answerRng();
    const kind = r < o.rejectRate ? 'reject' : r < o.rejectRate + o.missRate ? 'miss' : 'accept';
    return { kind, delayMs: Math.round(uniform(this.answerRng, o.acceptMinS, o.acceptMaxS) * 1000) };
  }

  private get wsPath(): string {
    return `/v1/workspaces/${encodeURIComponent(this.opts.workspace)}`;
  }

  /** Fails with a clear message when Switchboard does not answer /health. */
  async checkReachable(): Promise<void> {
    const r = await new SwitchboardHttp(this.opts.url, 5_000, this.opts.key).request('GET', '/health');
    if (r.ok) return;
    if (r.status === 'network' || r.status === 'timeout') {
      throw new FatalError(
        `cannot reach Switchboard at ${this.http.base} (${r.detail}). Is it running? ` +
          'Start it with "npm start", or point --url / SWITCHBOARD_URL at it.',
      );
    }
    // No /health there: the URL is not Switchboard's address (a workspace's URL, a path of the API).
    if (r.status === 404)
      throw new FatalError(
        `--url: ${this.http.base} is not Switchboard's address (GET /health answered 404 there): give the address it listens at, such as ${new URL(this.http.base).origin}, without the API's path (${r.detail})`,
        r.status,
        true,
      );
    throw new FatalError(
      `Switchboard at ${this.http.base} is not serving: GET /health answered ${r.status} (${r.detail}).`,
    );
  }

  private progress(): void {
    const c = this.counts;
    const done = c.completed + c.abandoned + c.expired + c.failed;
    this.onProgress({
      sent: c.sent,
      waiting: c.waiting,
      inService: c.inService,
      completed: c.completed,
      abandoned: c.abandoned,
      expired: c.expired,
      done,
    });
    if (done === this.opts.contacts && c.sent === this.opts.contacts) this.finish?.('done');
  }

  private recordError(what: string, r: HttpResult & { ok: false }): void {
    const key = String(r.status);
    this.countError(key);
    if (this.errorSamples.length < 10) this.errorSamples.push(`${what}: ${key} ${r.detail}`);
  }

  /** One error of the run, under `key` (a status, `timeout`, `internal`). */
  private countError(key: string): void {
    this.errorsByStatus[key] = (this.errorsByStatus[key] ?? 0) + 1;
    this.errors++;
  }

  /**
   * One command, retried (a few times, with backoff) when the server was unreachable or failed;
   * an Idempotency-Key makes a repeat of a command that did land append nothing. `once` tells
   * this sending from another of the same path and body (an offer's answer, a second comeback).
   */
  private async command(
    path: string,
    body?: unknown,
    { method = 'POST', once }: { method?: string; once?: string } = {},
  ): Promise<HttpResult> {
    const id = (body as { id?: unknown } | undefined)?.id;
    const key = `${this.tag}:${path}${typeof id === 'string' ? `/${id}` : ''}${once ? `#${once}` : ''}`;
    // The client's retries: the same Idempotency-Key each time, backoff from 250 ms (or Retry-After).
    const sent = this.http.request(
      method,
      `${this.wsPath}${path}`,
      body,
      {},
      { retries: RETRIES, idempotencyKey: key, onRetry: this.onRetry },
    );
    // Kept until answered: the cleanup waits for them (one landing after it would stay).
    const kept = sent.catch(() => undefined);
    this.inFlight.add(kept);
    try {
      const r = await sent;
      if (r.ok && r.status === 202) this.accepted202++;
      return r;
    } finally {
      this.inFlight.delete(kept);
    }
  }

  /** A read of the workspace's `path`, with the client's retries as a command has (429, 503, no answer). */
  private read(path: string): Promise<HttpResult> {
    return this.http.request(
      'GET',
      `${this.wsPath}${path}`,
      undefined,
      {},
      { retries: RETRIES, onRetry: this.onRetry },
    );
  }

  /** Counts a retry of the client's; none once the run is ending. */
  private readonly onRetry = (): false | undefined => {
    if (this.ending) return false;
    this.retries++;
    return undefined;
  };

  private setState(c: SimContact, to: ContactState): void {
    const from = c.state;
    if (from === to) return;
    const bucket = (s: ContactState): keyof typeof this.counts | undefined =>
      s === 'sent' || s === 'queued' || s === 'offered'
        ? 'waiting'
        : s === 'assigned'
          ? 'inService'
          : s === 'completed' || s === 'abandoned' || s === 'expired' || s === 'failed'
            ? s
            : undefined;
    const b0 = bucket(from);
    const b1 = bucket(to);
    if (b0) this.counts[b0]--;
    if (b1) this.counts[b1]++;
    c.state = to;
    this.progress();
  }

  /**
   * An event whose handling threw is an error of the run (counted, a sample kept: the run exits 1);
   * a failure of the feed itself (a socket error, a refused reconnection) is counted apart: the feed
   * opens again from its last event, so nothing is lost.
   */
  private feedFailed(err: Error, e?: Envelope): void {
    if (!e) {
      this.liveFailures++;
      this.lastLiveFailure = err.message;
      return;
    }
    this.countError('internal');
    if (this.errorSamples.length < 10)
      this.errorSamples.push(`live feed: ${e.type} at ${e.position} failed to be handled: ${err.message}`);
  }

  /** A step that fails unexpectedly is counted as an error, never left as an unhandled rejection. */
  private safely(what: string, step: Promise<void>): void {
    step.catch((err: Error) => {
      this.countError('internal');
      if (this.errorSamples.length < 10) this.errorSamples.push(`${what}: ${err.message}`);
    });
  }

  private timer(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.ending) fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  // ---- what the live feed says ----

  private onEvent(e: Envelope): void {
    // Once the run ends, the feed's events wait for the drain, which reads on after the last one
    // taken here: the feed hands on a chunk's events at once, after the one that ended the run too.
    if (this.ending && !this.draining) return;
    this.lastTaken = e.position;
    // Agent facts: wrap-ups (of this run's agents only: the contact is not named).
    if (e.type === 'WrapUpStarted' || e.type === 'WrapUpEnded') {
      if (!e.data?.agentId || !this.ownAgents.has(e.data.agentId)) return;
      if (e.type === 'WrapUpStarted') this.wrapUps++;
      else this.wrapUpsEnded++;
      return;
    }
    const c = e.data?.contactId ? this.byId.get(e.data.contactId) : undefined;
    if (!c) return;
    switch (e.type) {
      case 'AssignmentMade':
        this.decided(c, e);
        if (e.data.offer) this.offered(c, e);
        else if (!c.everAssigned) {
          if (typeof e.data.waitedMs === 'number') this.waits.push(e.data.waitedMs);
          this.assigned(c);
        }
        return;
      case 'AssignmentAccepted': {
        const offer = c.offer;
        c.offer = undefined;
        this.offers.accepted++;
        const at = Date.parse(e.data.acceptedAt ?? '');
        if (offer && Number.isFinite(at)) this.acceptMs.push(at - offer.madeAt);
        if (c.everAssigned) return;
        if (typeof offer?.waitedMs === 'number') this.waits.push(offer.waitedMs);
        this.assigned(c);
        return;
      }
      case 'AssignmentRejected':
      case 'AssignmentExpired':
        if (e.type === 'AssignmentExpired') {
          this.offers.expired++;
          // The agent was set to the workspace's missedOfferPresence: it comes back after a break.
          if (this.settings.missedOfferPresence !== 'available' && e.data.agentId) {
            const agentId = e.data.agentId;
            this.timer(this.opts.missBreakS * 1000, () => this.safely('come back', this.comeBack(agentId)));
          }
        } else if (e.data.reason === 'rejected') this.offers.rejected++;
        else this.offers.withdrawn++;
        c.offer = undefined;
        if (c.state === 'offered') this.setState(c, 'queued');
        return;
      case 'ContactAbandoned':
      case 'ContactExpired':
        if (c.patience) clearTimeout(c.patience);
        // An offer still ringing ends with the contact: counted, so every offer made ends one way.
        if (c.offer) this.offers.contactLeft++;
        c.offer = undefined;
        this.setState(c, e.type === 'ContactAbandoned' ? 'abandoned' : 'expired');
        return;
    }
  }

  /** The contact is the agent's (assigned directly, or its offer accepted): handled, then completed. */
  private assigned(c: SimContact): void {
    c.everAssigned = true;
    if (c.patience) clearTimeout(c.patience);
    if (c.state === 'completed' || c.state === 'abandoned' || c.state === 'expired' || c.state === 'failed')
      return;
    this.setState(c, 'assigned');
    c.handling = this.timer(c.handleMs, () => this.safely('complete', this.complete(c)));
  }

  /** An offer: answered as the contact's plan says (the customer's patience keeps running). */
  private offered(c: SimContact, e: Envelope): void {
    const offer: OfferSeen = {
      id: e.data.offer!.id,
      agentId: e.data.agentId ?? '',
      madeAt: Date.parse(e.data.assignedAt ?? '') || Date.now(),
      waitedMs: e.data.waitedMs,
    };
    this.offers.made++;
    c.offer = offer;
    if (c.state === 'queued' || c.state === 'sent') this.setState(c, 'offered');
    const { kind, delayMs } = c.answers[c.offersSeen++] ?? { kind: 'accept', delayMs: 0 };
    if (kind === 'miss') return; // the server's timer expires it
    this.timer(delayMs, () => this.safely(kind, this.answer(c, offer, kind)));
  }

  // ---- the flow ----

  private async registerAgent(i: number): Promise<HttpResult> {
    const id = this.agentIds[i]!;
    const skills = this.opts.levels
      ? this.agentSkills[i]!.map((name, k) => ({ name, level: this.agentLevels[i]![k]! }))
      : this.agentSkills[i];
    const r = await this.command('/agents', { id, skills, capacity: this.opts.capacity });
    if (!r.ok) this.recordError(`POST /agents ${id}`, r);
    return r;
  }

  private async makeAvailable(i: number): Promise<void> {
    const id = this.agentIds[i]!;
    const r = await this.command(`/agents/${id}/state`, { state: 'available' });
    if (!r.ok) this.recordError(`POST /agents/${id}/state`, r);
  }

  /** An agent set away by an offer it let expire is available again. */
  private async comeBack(agentId: string): Promise<void> {
    const once = `back-${++this.comebacks}`;
    const r = await this.command(`/agents/${agentId}/state`, { state: 'available' }, { once });
    if (!r.ok && !this.ending) this.recordError(`POST /agents/${agentId}/state`, r);
  }

  /** The agent's answer to an offer, if the offer is still the contact's outstanding one. */
  private async answer(c: SimContact, offer: OfferSeen, kind: 'accept' | 'reject'): Promise<void> {
    if (c.offer !== offer || c.state !== 'offered') return;
    const path = `/contacts/${c.id}/${kind}`;
    const r = await this.command(path, { agentId: offer.agentId }, { once: `${offer.id}` });
    if (this.ending || r.ok) return; // the feed tells what it did
    const type = (r.body as { type?: string } | null)?.type;
    // The offer ended meanwhile: the contact abandoned, expired or its offer timed out
    // (contact-not-offered), and may already be offered to another agent (offer-not-yours).
    if (
      r.status === 409 &&
      (type === '/problems/contact-not-offered' || type === '/problems/offer-not-yours')
    ) {
      this.answerRaced++;
      return;
    }
    this.recordError(`POST ${path}`, r);
  }

  /**
   * The workspace's settings for the run: those asked for are PUT (the rest kept as they are,
   * PUT replacing the whole), then read back; with none asked for, the workspace's as they are.
   */
  private async applySettings(): Promise<void> {
    const current = await this.read('/settings');
    if (!current.ok)
      throw new FatalError(
        `cannot read the settings of workspace "${this.opts.workspace}": GET /settings answered ${current.status} (${current.detail})`,
        current.status,
      );
    this.settings = { ...DEFAULT_SETTINGS, ...(current.body as Partial<SimSettings>) };
    const asked = this.opts.settings ?? {};
    if (Object.keys(asked).length === 0) return;
    const r = await this.command('/settings', { ...this.settings, ...asked }, { method: 'PUT' });
    if (!r.ok)
      throw new FatalError(
        `cannot change the settings of workspace "${this.opts.workspace}": PUT /settings answered ${r.status} (${r.detail})`,
        r.status,
      );
    // Read back whole, once applied (a 202 answers no settings): a policy setting asked back to its
    // default is left out of the settings, so merging into those read before would keep the old one.
    const { position } = r.body as { position?: string };
    const query = typeof position === 'string' ? `?minPosition=${encodeURIComponent(position)}` : '';
    // A 202 says the projections had not applied it within the command's wait: the read waits for
    // them, and a 503 position-not-reached (still not applied) is retried as any 503 is.
    const after = await this.read(`/settings${query}`);
    if (!after.ok)
      throw new FatalError(
        `cannot read the settings of workspace "${this.opts.workspace}" after changing them: GET /settings answered ${after.status} (${after.detail})`,
        after.status,
      );
    this.settings = { ...DEFAULT_SETTINGS, ...(after.body as Partial<SimSettings>) };
  }

  private async queue(c: SimContact): Promise<void> {
    this.counts.sent++;
    this.setState(c, 'sent');
    c.patience = this.timer(this.opts.patienceS * 1000, () => this.safely('abandon', this.abandon(c)));
    const r = await this.command('/contacts', { id: c.id, skills: c.skills, priority: c.priority });
    if (this.ending) return;
    if (r.ok) {
      if (c.state === 'sent') this.setState(c, 'queued');
      // The customer hung up while the create was on its way: abandoned now that it is there.
      if (c.abandonWhenQueued) return this.abandon(c);
      await this.readEstimate(c);
      return;
    }
    this.recordError(`POST /contacts ${c.id}`, r);
    if (c.patience) clearTimeout(c.patience);
    if (c.state === 'sent') this.setState(c, 'failed');
  }

  /** The wait GET /contacts/{id} estimates for a contact still queued (none: not queued, or no rate yet). */
  private async readEstimate(c: SimContact): Promise<void> {
    const readAt = Date.now();
    const r = await this.http.request('GET', `${this.wsPath}/contacts/${c.id}`);
    const ms = (r.body as { estimatedWaitMs?: unknown } | undefined)?.estimatedWaitMs;
    if (r.ok && typeof ms === 'number' && !c.everAssigned && c.offersSeen === 0) c.estimate = { readAt, ms };
  }

  /** A contact's first decision: how far the estimate read when it was queued was from the wait that followed. */
  private decided(c: SimContact, e: Envelope): void {
    if (!c.estimate || c.everAssigned || c.offersSeen > 0) return;
    const at = Date.parse(e.data.assignedAt ?? '');
    if (!Number.isFinite(at)) return;
    const actual = Math.max(0, at - c.estimate.readAt);
    this.estimateErrors.push(Math.abs(c.estimate.ms - actual));
    this.estimatedWaits.push(actual);
    this.estimates.push(c.estimate.ms);
    c.estimate = undefined;
  }

  private async abandon(c: SimContact): Promise<void> {
    if (c.everAssigned || (c.state !== 'queued' && c.state !== 'sent' && c.state !== 'offered')) return;
    // Sent before the create was answered: it may reach Switchboard ahead of the create.
    const beforeCreate = c.state === 'sent' && !c.abandonWhenQueued;
    // Sent again after one that went ahead of the create: a key of its own, or Switchboard answers
    // it with the first one's outcome (the 404).
    const r = await this.command(
      `/contacts/${c.id}/abandon`,
      undefined,
      c.abandonWhenQueued ? { once: 'queued' } : {},
    );
    if (this.ending) return;
    // Sent while its create was on its way (a slow or retried POST), it may have gone ahead of it
    // and found no contact: a 404, or a 202 whose outcome (the same refusal) no feed event tells.
    // Not a failure of the run: sent again once the create is answered, or at once when its answer
    // came first (the two answers race on their connections). One that did land after the create
    // makes the second a 409 (counted as raced), or none at all once the feed said it.
    const wentAhead = beforeCreate && (r.status === 404 || r.status === 202);
    if (wentAhead) {
      c.abandonWhenQueued = true;
      if (c.state !== 'sent') await this.abandon(c);
      return;
    }
    if (r.ok) {
      // 200: abandoned. 202: durable, and the live feed tells which of abandon or assignment won.
      if (r.status === 200 && !c.everAssigned) this.setState(c, 'abandoned');
      return;
    }
    if (r.status === 409) {
      this.abandonRaced++; // assigned (or expired) meanwhile: the feed says so
      return;
    }
    this.recordError(`POST /contacts/${c.id}/abandon`, r);
    if (!c.everAssigned) this.setState(c, 'failed');
  }

  private async complete(c: SimContact): Promise<void> {
    const r = await this.command(`/contacts/${c.id}/complete`);
    if (this.ending) return;
    if (r.ok) {
      this.setState(c, 'completed');
      return;
    }
    this.recordError(`POST /contacts/${c.id}/complete`, r);
    this.setState(c, 'failed');
  }

  /** The whole run; resolves with the summary. Call `interrupt()` to end it early. */
  async run(): Promise<SimSummary> {
    const started = performance.now();
    const ended = new Promise<EndedBy>((resolve) => {
      this.finish = (by) => {
        this.ending = true; // from here on nothing new is sent, whatever phase the run is in
        resolve(by);
      };
    });
    const limit = setTimeout(() => this.finish?.('time-limit'), this.opts.maxSeconds * 1000);
    // The set-up (settings, agents, the feed) ends with the run too: a time limit or an interrupt
    // while Switchboard does not answer ends the run then, not after a try's timeout and backoffs.
    const setup = this.setUp();
    setup.catch(() => undefined); // told below, unless the run ended first
    try {
      if (await Promise.race([setup.then(() => false), ended.then(() => true)])) {
        const durationS = (performance.now() - started) / 1000;
        return this.summary(await ended, durationS);
      }
      await setup;

      // Arrivals at a fixed rate, on a schedule that does not drift; the wait for the next one
      // ends with the run (a time limit or an interrupt long before it is due).
      const t0 = performance.now();
      const over = ended.then(() => undefined);
      const arrivals = (async () => {
        for (let i = 0; i < this.contacts.length && !this.ending; i++) {
          await this.until(t0 + (i * 1000) / this.opts.rate, over);
          if (this.ending) break;
          this.safely('queue', this.queue(this.contacts[i]!));
        }
      })();
      if (this.contacts.length === 0) this.finish?.('done');
      const endedBy = await ended;
      await arrivals;
      const durationS = (performance.now() - started) / 1000;
      if (endedBy !== 'interrupted') await this.drain();
      return this.summary(endedBy, durationS);
    } finally {
      clearTimeout(limit);
      this.ending = true;
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const c of this.contacts) {
        if (c.patience) clearTimeout(c.patience);
        if (c.handling) clearTimeout(c.handling);
      }
      this.live.close();
    }
  }

  /** The settings, the agents registered and available, the feed open; each step not begun once the run ends. */
  private async setUp(): Promise<void> {
    await this.applySettings();
    if (this.ending) return;
    // The first registration fixes where the live feed starts: every event of this run comes
    // after that command, so replaying from just before it misses nothing.
    const first = this.opts.agents > 0 ? await this.registerAgent(0) : undefined;
    if (first && !first.ok)
      throw new FatalError(
        `cannot register agents in workspace "${this.opts.workspace}": POST /agents answered ${first.status} (${first.detail})`,
        first.status,
      );
    if (this.ending) return;
    const pos = (first?.body as { position?: unknown } | undefined)?.position;
    const after = typeof pos === 'string' && /^\d+-\d+$/.test(pos) ? `${positionMs(pos) - 1}-0` : '0-0';
    await this.live.open(after);
    // Ended while it opened: closed again (the run closed it before it was open).
    if (this.ending) return this.live.close();
    // A feed refused for good (the key revoked, the workspace gone) leaves the run blind: it
    // stops now rather than at its time limit. A feed this run closes ends once it is ending.
    void this.live.ended.then(() => {
      if (!this.ending) this.finish?.('feed-lost');
    });

    const rest = Array.from({ length: Math.max(0, this.opts.agents - 1) }, (_, i) => i + 1);
    await pool(rest, AGENT_CONCURRENCY, async (i) => {
      if (!this.ending) await this.registerAgent(i);
    });
    const all = Array.from({ length: this.opts.agents }, (_, i) => i);
    await pool(all, AGENT_CONCURRENCY, async (i) => {
      if (!this.ending) await this.makeAvailable(i);
    });
  }

  /**
   * Waits until `due` (performance.now() time), in steps a timer can hold (at most 24.8 days
   * each), or until `over` settles, whichever comes first.
   */
  private async until(due: number, over: Promise<void>): Promise<void> {
    for (;;) {
      const wait = due - performance.now();
      if (wait <= 1 || this.ending) return;
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => {
          t = setTimeout(r, Math.min(wait, MAX_TIMER_MS));
        }),
        over,
      ]);
      clearTimeout(t);
    }
  }

  /**
   * The run is over, but the feed may lag the answers that ended it (a completion's WrapUpStarted,
   * an offer that expired just before its contact was abandoned): the feed is closed and the
   * events after the last it delivered are read with GET /events, so the counts hold everything
   * the log has so far. Bounded by `timeoutMs`, its retries and their waits included; nothing else
   * is sent (timers do nothing once the run is ending).
   *
   * A page that fails (429, a 503 such as redis-unavailable or position-not-reached, no answer) is
   * tried again as the run's reads are (the client's retries, Retry-After honoured, each counted)
   * while the wait before the next try ends within the bound. A log still not read to its end is
   * an error of the run whose sample says the counts may be short, and where the events not
   * counted start.
   */
  private async drain(timeoutMs = 5_000): Promise<void> {
    this.live.close();
    const deadline = Date.now() + timeoutMs;
    // The bound holds a try on its way too: one still unanswered at the deadline is cut short.
    const bound = new AbortController();
    const limit = setTimeout(() => bound.abort(), timeoutMs);
    // After the last event taken, not the feed's position: the events it handed on once the run
    // was ending were left for this read.
    let after = this.lastTaken ?? this.live.startedAfter;
    this.draining = true;
    try {
      for (;;) {
        const q = `type=${FEED_TYPES.join(',')}&limit=1000&after=${after}`;
        const r = await this.http.request(
          'GET',
          `${this.wsPath}/events?${q}`,
          undefined,
          {},
          {
            // As many as the bound leaves room for (onRetry stops them).
            retries: Number.POSITIVE_INFINITY,
            onRetry: this.retryBefore(deadline),
            timeoutMs,
            signal: bound.signal,
          },
        );
        if (!r.ok) return this.drainShort(after, timeoutMs, bound.signal.aborted ? 'unanswered' : r);
        const page = r.body as { events: Envelope[]; next: string | null };
        for (const e of page.events) this.live.handle(e);
        // A filtered page may hold nothing and still have a next (a bounded stretch read per page).
        if (page.next === null || page.next === after) return;
        after = page.next;
        if (Date.now() >= deadline) return this.drainShort(after, timeoutMs, 'unfinished');
      }
    } finally {
      clearTimeout(limit);
      this.draining = false;
    }
  }

  /**
   * The drain's retries: counted as the run's are (onRetry), but the run is ending by then: what
   * stops them is the drain's deadline, no retry whose wait would end past it.
   */
  private retryBefore(deadline: number): (info: { readonly delayMs: number }) => false | undefined {
    return (info) => {
      if (Date.now() + info.delayMs >= deadline) return false;
      this.retries++;
      return undefined;
    };
  }

  /**
   * The drain did not read the log to its end: the events after `after` are not counted. An error
   * of the run (exit 1), under its last page's failure, or `timeout` when that page had no answer
   * within the bound (`unanswered`) or pages were left when it ran out (`unfinished`). Its sample
   * is kept even past the first ten: it says the summary's counts themselves may be short, and how
   * to read what they miss.
   */
  private drainShort(
    after: string,
    timeoutMs: number,
    how: (HttpResult & { ok: false }) | 'unanswered' | 'unfinished',
  ): void {
    const s = `${timeoutMs / 1000} s`;
    const key = typeof how === 'string' ? 'timeout' : String(how.status);
    const why =
      how === 'unanswered'
        ? `GET /events was not answered within the drain's ${s}`
        : how === 'unfinished'
          ? `the log was not read to its end within the drain's ${s}`
          : `GET /events answered ${key} (${how.detail})${retryable(how) ? `, its last try within the drain's ${s}` : ''}`;
    this.countError(key);
    this.errorSamples.push(
      `drain: ${why}, so the counts may be short of the log's: the events after ${after} were not counted ` +
        `(read them with GET ${this.http.base}${this.wsPath}/events?after=${after} once Switchboard answers, or run again)`,
    );
  }

  interrupt(): void {
    this.finish?.('interrupted');
  }

  /**
   * Ends what the run started (best effort, bounded), so a later run in the workspace meets none of
   * it: the contacts a time limit or an interrupt left waiting are abandoned (their customers hang
   * up with the run) and those left in service completed; then the run's agents are taken offline,
   * so they take no later run's work.
   */
  async cleanup(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const http = new SwitchboardHttp(this.opts.url, timeoutMs, this.opts.key);
    // The run's commands still on their way first: a create landing after this cleanup's abandon
    // (404) would stay queued, an agent made available after it was taken offline would take a
    // later run's work. For half the cleanup's time at most (a try takes up to 15 s, and a retry
    // whose wait began before the run ended is still sent), so the rest keeps time of its own.
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((r) => {
        bound = setTimeout(r, timeoutMs / 2);
      }),
    ]);
    clearTimeout(bound);
    const left = this.contacts.filter(
      (c) =>
        c.state !== 'planned' && c.state !== 'completed' && c.state !== 'abandoned' && c.state !== 'expired',
    );
    await pool(left, AGENT_CONCURRENCY, async (c) => {
      // What the run last knew of it first; the other when that is refused (409: it was assigned,
      // or offered back, meanwhile). A contact whose POST never landed answers 404 to both.
      const inService = c.state === 'assigned' || c.everAssigned;
      for (const end of inService ? ['complete', 'abandon'] : ['abandon', 'complete']) {
        if (Date.now() > deadline) return;
        const r = await http.request('POST', `${this.wsPath}/contacts/${c.id}/${end}`);
        if (r.status !== 409) return;
      }
    });
    await pool(this.agentIds, AGENT_CONCURRENCY, async (id) => {
      if (Date.now() > deadline) return;
      await http.request('POST', `${this.wsPath}/agents/${id}/state`, { state: 'offline' });
    });
  }

  private summary(endedBy: EndedBy, durationS: number): SimSummary {
    const o = this.opts;
    return {
      workspace: o.workspace,
      url: this.http.base,
      seed: o.seed,
      parameters: {
        agents: o.agents,
        contacts: o.contacts,
        rate: o.rate,
        handleMinS: o.handleMinS,
        handleMaxS: o.handleMaxS,
        patienceS: o.patienceS,
        maxSeconds: o.maxSeconds,
        acceptMinS: o.acceptMinS,
        acceptMaxS: o.acceptMaxS,
        rejectRate: o.rejectRate,
        missRate: o.missRate,
        missBreakS: o.missBreakS,
        priorities: o.priorities,
        levels: o.levels,
        capacity: o.capacity,
      },
      settings: { ...this.settings },
      ...tally(this.contacts),
      unservable: this.unservable,
      abandonRaced: this.abandonRaced,
      meanWaitMs: round(mean(this.waits)),
      estimatedWait: {
        checked: this.estimateErrors.length,
        meanAbsoluteErrorMs: round(mean(this.estimateErrors)),
        meanActualMs: round(mean(this.estimatedWaits)),
        meanEstimatedMs: round(mean(this.estimates)),
      },
      p90WaitMs: round(percentile(this.waits, 90)),
      maxWaitMs: round(percentile(this.waits, 100)),
      offers: {
        ...this.offers,
        meanTimeToAcceptMs: round(mean(this.acceptMs)),
        answerRaced: this.answerRaced,
      },
      wrapUps: this.wrapUps,
      wrapUpsEnded: this.wrapUpsEnded,
      retries: this.retries,
      errors: this.errors,
      errorsByStatus: { ...this.errorsByStatus },
      errorSamples: [...this.errorSamples],
      accepted202: this.accepted202,
      liveReconnects: this.live.reconnects,
      liveFailures: this.liveFailures,
      ...(this.lastLiveFailure !== undefined ? { lastLiveFailure: this.lastLiveFailure } : {}),
      durationS: round(durationS, 2) ?? 0,
      endedBy,
    };
  }
}
