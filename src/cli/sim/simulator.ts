/**
 * The contact-center simulator: agents and customers driven through Switchboard's public HTTP
 * API, assignments watched on the live WebSocket feed. Everything random comes from the seed,
 * drawn before the run starts, so two runs with one seed have the same plan.
 */
import { FatalError, type HttpResult, pool, retryable, SwitchboardHttp } from './http.ts';
import { type Envelope, LiveFeed } from './live-feed.ts';
import { type Rng, seededRandom, seedSkills, uniform } from './random.ts';
import { mean, percentile, round } from './stats.ts';
import {
  type ContactState,
  type EndedBy,
  type Progress,
  type SimParameters,
  type SimSummary,
  tally,
} from './summary.ts';

export interface SimOptions extends SimParameters {
  readonly url: string;
  readonly workspace: string;
  readonly seed: number;
}

interface SimContact {
  readonly id: string;
  readonly skills: string[];
  readonly handleMs: number;
  state: ContactState;
  everAssigned: boolean;
  patience?: NodeJS.Timeout;
  handling?: NodeJS.Timeout;
}

const AGENT_CONCURRENCY = 64;
/** Further tries of a command that met a network failure, a timeout or a 5xx (backoff 250 ms, doubling). */
const RETRIES = 4;

function positionMs(position: string): number {
  return Number(position.split('-')[0]);
}

export class Simulator {
  private readonly http: SwitchboardHttp;
  private readonly rng: Rng;
  private readonly tag = Date.now().toString(36);
  private readonly agentIds: string[] = [];
  private readonly agentSkills: string[][] = [];
  private readonly contacts: SimContact[] = [];
  private readonly byId = new Map<string, SimContact>();
  private readonly waits: number[] = [];
  private readonly errorsByStatus: Record<string, number> = {};
  private readonly errorSamples: string[] = [];
  private errors = 0;
  private accepted202 = 0;
  private retries = 0;
  private abandonRaced = 0;
  private counts = { sent: 0, waiting: 0, inService: 0, completed: 0, abandoned: 0, failed: 0 };
  private ending = false;
  private finish: ((by: EndedBy) => void) | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly live: LiveFeed;

  /** Called whenever a count changes (the progress bar). */
  onProgress: (p: Progress) => void = () => {};

  constructor(readonly opts: SimOptions) {
    this.http = new SwitchboardHttp(opts.url);
    this.rng = seededRandom(opts.seed);
    // The whole plan is drawn up front, in a fixed order, so the seed alone decides it.
    for (let i = 0; i < opts.agents; i++) {
      this.agentIds.push(`${this.tag}.agent-${i + 1}`);
      this.agentSkills.push(seedSkills(this.rng));
    }
    for (let i = 0; i < opts.contacts; i++) {
      const c: SimContact = {
        id: `${this.tag}.contact-${i + 1}`,
        skills: seedSkills(this.rng),
        handleMs: Math.round(uniform(this.rng, opts.handleMinS, opts.handleMaxS) * 1000),
        state: 'planned',
        everAssigned: false,
      };
      this.contacts.push(c);
      this.byId.set(c.id, c);
    }
    const held = [...new Set(this.agentSkills.map((s) => s.join(',')))].map((s) => new Set(s.split(',')));
    this.unservable = this.contacts.filter((c) => !held.some((h) => c.skills.every((s) => h.has(s)))).length;
    const liveUrl = (after: string) =>
      `${this.http.base.replace(/^http/, 'ws')}${this.wsPath}/events/live?type=AssignmentMade,ContactAbandoned&after=${after}`;
    this.live = new LiveFeed(
      liveUrl,
      (e) => this.onEvent(e),
      (ms, fn) => this.timer(ms, fn),
      () => this.ending,
    );
  }

  /** Contacts whose skills no agent of this run holds all of (they can only abandon). */
  readonly unservable: number;

  private get wsPath(): string {
    return `/v1/workspaces/${encodeURIComponent(this.opts.workspace)}`;
  }

  /** Fails with a clear message when Switchboard does not answer /health. */
  async checkReachable(): Promise<void> {
    const r = await new SwitchboardHttp(this.opts.url, 5_000).request('GET', '/health');
    if (r.ok) return;
    if (r.status === 'network' || r.status === 'timeout') {
      throw new FatalError(
        `cannot reach Switchboard at ${this.http.base} (${r.detail}). Is it running? ` +
          'Start it with "npm start", or point --url / SWITCHBOARD_URL at it.',
      );
    }
    throw new FatalError(
      `Switchboard at ${this.http.base} is not serving: GET /health answered ${r.status} (${r.detail}).`,
    );
  }

  private progress(): void {
    const c = this.counts;
    this.onProgress({
      sent: c.sent,
      waiting: c.waiting,
      inService: c.inService,
      completed: c.completed,
      abandoned: c.abandoned,
      done: c.completed + c.abandoned + c.failed,
    });
    if (c.completed + c.abandoned + c.failed === this.opts.contacts && c.sent === this.opts.contacts)
      this.finish?.('done');
  }

  private recordError(what: string, r: HttpResult & { ok: false }): void {
    const key = String(r.status);
    this.errorsByStatus[key] = (this.errorsByStatus[key] ?? 0) + 1;
    this.errors++;
    if (this.errorSamples.length < 10) this.errorSamples.push(`${what}: ${key} ${r.detail}`);
  }

  /**
   * One command, retried (a few times, with backoff) when the server was unreachable or failed;
   * an Idempotency-Key makes a repeat of a command that did land append nothing.
   */
  private async command(path: string, body?: unknown): Promise<HttpResult> {
    const id = (body as { id?: unknown } | undefined)?.id;
    const headers = { 'idempotency-key': `${this.tag}:${path}${typeof id === 'string' ? `/${id}` : ''}` };
    let r = await this.http.request('POST', `${this.wsPath}${path}`, body, headers);
    for (let attempt = 1; attempt <= RETRIES && retryable(r) && !this.ending; attempt++) {
      this.retries++;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
      if (this.ending) break;
      r = await this.http.request('POST', `${this.wsPath}${path}`, body, headers);
    }
    if (r.ok && r.status === 202) this.accepted202++;
    return r;
  }

  private setState(c: SimContact, to: ContactState): void {
    const from = c.state;
    if (from === to) return;
    const bucket = (s: ContactState): keyof typeof this.counts | undefined =>
      s === 'sent' || s === 'queued'
        ? 'waiting'
        : s === 'assigned'
          ? 'inService'
          : s === 'completed' || s === 'abandoned' || s === 'failed'
            ? s
            : undefined;
    const b0 = bucket(from);
    const b1 = bucket(to);
    if (b0) this.counts[b0]--;
    if (b1) this.counts[b1]++;
    c.state = to;
    this.progress();
  }

  /** A step that fails unexpectedly is counted as an error, never left as an unhandled rejection. */
  private safely(what: string, step: Promise<void>): void {
    step.catch((err: Error) => {
      this.errorsByStatus.internal = (this.errorsByStatus.internal ?? 0) + 1;
      this.errors++;
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
    if (this.ending) return;
    const c = e.data?.contactId ? this.byId.get(e.data.contactId) : undefined;
    if (!c) return;
    if (e.type === 'AssignmentMade' && !c.everAssigned) {
      c.everAssigned = true;
      if (typeof e.data.waitedMs === 'number') this.waits.push(e.data.waitedMs);
      if (c.patience) clearTimeout(c.patience);
      if (c.state === 'completed' || c.state === 'abandoned' || c.state === 'failed') return;
      this.setState(c, 'assigned');
      c.handling = this.timer(c.handleMs, () => this.safely('complete', this.complete(c)));
    } else if (e.type === 'ContactAbandoned') {
      if (c.patience) clearTimeout(c.patience);
      if (c.state !== 'abandoned') this.setState(c, 'abandoned');
    }
  }

  // ---- the flow ----

  private async registerAgent(i: number): Promise<HttpResult> {
    const id = this.agentIds[i]!;
    const r = await this.command('/agents', { id, skills: this.agentSkills[i] });
    if (!r.ok) this.recordError(`POST /agents ${id}`, r);
    return r;
  }

  private async makeAvailable(i: number): Promise<void> {
    const id = this.agentIds[i]!;
    const r = await this.command(`/agents/${id}/state`, { state: 'available' });
    if (!r.ok) this.recordError(`POST /agents/${id}/state`, r);
  }

  private async queue(c: SimContact): Promise<void> {
    this.counts.sent++;
    this.setState(c, 'sent');
    c.patience = this.timer(this.opts.patienceS * 1000, () => this.safely('abandon', this.abandon(c)));
    const r = await this.command('/contacts', { id: c.id, skills: c.skills, priority: 0 });
    if (this.ending) return;
    if (r.ok) {
      if (c.state === 'sent') this.setState(c, 'queued');
      return;
    }
    this.recordError(`POST /contacts ${c.id}`, r);
    if (c.patience) clearTimeout(c.patience);
    if (c.state === 'sent') this.setState(c, 'failed');
  }

  private async abandon(c: SimContact): Promise<void> {
    if (c.everAssigned || (c.state !== 'queued' && c.state !== 'sent')) return;
    const r = await this.command(`/contacts/${c.id}/abandon`);
    if (this.ending) return;
    if (r.ok) {
      // 200: abandoned. 202: durable, and the live feed tells which of abandon or assignment won.
      if (r.status === 200 && !c.everAssigned) this.setState(c, 'abandoned');
      return;
    }
    if (r.status === 409) {
      this.abandonRaced++; // assigned meanwhile: AssignmentMade is on its way
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
    try {
      // The first registration fixes where the live feed starts: every event of this run comes
      // after that command, so replaying from just before it misses nothing.
      const first = this.opts.agents > 0 ? await this.registerAgent(0) : undefined;
      if (first && !first.ok)
        throw new FatalError(
          `cannot register agents in workspace "${this.opts.workspace}": POST /agents answered ${first.status} (${first.detail})`,
        );
      const pos = (first?.body as { position?: unknown } | undefined)?.position;
      const after = typeof pos === 'string' && /^\d+-\d+$/.test(pos) ? `${positionMs(pos) - 1}-0` : '0-0';
      await this.live.open(after);

      const rest = Array.from({ length: Math.max(0, this.opts.agents - 1) }, (_, i) => i + 1);
      await pool(rest, AGENT_CONCURRENCY, async (i) => {
        if (!this.ending) await this.registerAgent(i);
      });
      const all = Array.from({ length: this.opts.agents }, (_, i) => i);
      await pool(all, AGENT_CONCURRENCY, async (i) => {
        if (!this.ending) await this.makeAvailable(i);
      });

      // Arrivals at a fixed rate, on a schedule that does not drift.
      const t0 = performance.now();
      const arrivals = (async () => {
        for (let i = 0; i < this.contacts.length && !this.ending; i++) {
          const due = t0 + (i * 1000) / this.opts.rate;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          if (this.ending) break;
          this.safely('queue', this.queue(this.contacts[i]!));
        }
      })();
      if (this.contacts.length === 0) this.finish?.('done');
      const endedBy = await ended;
      await arrivals;
      const durationS = (performance.now() - started) / 1000;
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

  interrupt(): void {
    this.finish?.('interrupted');
  }

  /** Takes this run's agents offline (best effort, bounded), so they take no later run's work. */
  async cleanup(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const http = new SwitchboardHttp(this.opts.url, timeoutMs);
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
      },
      ...tally(this.contacts),
      unservable: this.unservable,
      abandonRaced: this.abandonRaced,
      meanWaitMs: round(mean(this.waits)),
      p90WaitMs: round(percentile(this.waits, 90)),
      maxWaitMs: round(percentile(this.waits, 100)),
      retries: this.retries,
      errors: this.errors,
      errorsByStatus: { ...this.errorsByStatus },
      errorSamples: [...this.errorSamples],
      accepted202: this.accepted202,
      liveReconnects: this.live.reconnects,
      durationS: round(durationS, 2) ?? 0,
      endedBy,
    };
  }
}
