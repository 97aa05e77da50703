/**
 * A typed client of Switchboard's HTTP API (docs/API.md): every command and query of a workspace,
 * API keys, WebSocket tickets and the live feed (./live.ts). Runs on Node 20's global fetch (and
 * the `ws` package for the live feed) and in browsers (their fetch and WebSocket).
 *
 * - Every command carries an `Idempotency-Key` (a random UUID per call unless given), kept across
 *   its retries, so a command that did land is never applied twice.
 * - Failures worth another try (no answer, a timeout, 429, 502, 503, 504) are retried with backoff
 *   (250 ms doubling to 4 s by default), waiting at least what `Retry-After` says (up to
 *   `maxRetryAfterMs`, default 60 s): queries and commands (their key makes a repeat harmless);
 *   other writes (POST /keys, DELETE /keys/{id}, POST /ws-tickets: routes that ignore an
 *   Idempotency-Key, even one given) after a 429 only.
 * - With `failover` base URLs (several API instances, no load balancer), each retry goes to the
 *   next one (without the Retry-After of a 503 `shutting-down`, which was the stopping instance's
 *   own), and a call starts at the one that answered the last call; `onRetry` may stop the retries
 *   or set each wait itself.
 * - A 2xx that is no JSON document where the operation answers one (a proxy's HTML page, a body
 *   cut short) is thrown as a SwitchboardError carrying the text.
 * - Any other answer outside 2xx is thrown as a SwitchboardError carrying the problem+json.
 * - A write is never sent on to where a redirect points (fetch would make a 301/302/303 of it a GET
 *   without its body): the 3xx is thrown, naming the Location.
 *
 * Each method is named after its operation's `operationId` in the OpenAPI document (GET
 * /openapi.json); a few have a shorter older name too (`stats` for `getStats`, `settings`,
 * `events`, `stateAt`, `subscribe`, `wsTicket`), the same call. The pages and their files (the
 * wallboard, the agent desktop, Swagger UI) have no method: they are for browsers.
 *
 * The bench's timed paths do not take it: `bench e2e` and `bench fanout` send bare keep-alive
 * requests and read bare sockets (src/cli/bench/e2e.ts, fanout.ts), because on a 2-core load
 * generator the client's CPU per request moved the figures they measure; `bench ingest` sends the
 * same bare requests to Switchboard and to the bare handler it compares it with (docs/API.md, "The
 * client").
 */
import {
  DEFAULT_MAX_RETRY_AFTER_MS,
  notANumber,
  POSITION,
  retryAfterMsOf,
  SwitchboardError,
  unsendablePath,
  unusableBaseUrl,
} from './errors.ts';
import { type SubscribeOptions, type Subscription, subscribe } from './live.ts';
import type {
  AgentDocument,
  AgentPresence,
  AgentStateName,
  ApiKeyInfo,
  CommandOptions,
  CommandResult,
  ContactView,
  EventEnvelope,
  EventPage,
  EventType,
  OpenApiDocument,
  Position,
  QueryOptions,
  QueueContact,
  RegisterAgent,
  Role,
  Settings,
  SettingsChange,
  StateAt,
  Stats,
  StatsIntervals,
  Status,
  Transfer,
  UpdateAgent,
  WsTicket,
} from './types.ts';

export type Failure = number | 'network' | 'timeout';

export interface RetryInfo {
  readonly method: string;
  readonly path: string;
  /** The base URL the failed try went to (`url`, or one of `failover`). */
  readonly url: string;
  /** The try that failed (1: the first). */
  readonly attempt: number;
  readonly status: Failure;
  /** How long the client waits before the next try. */
  readonly delayMs: number;
  /** The failed try's answer (a problem document, as received), when it got one. */
  readonly body?: unknown;
}

export interface ClientOptions {
  /**
   * Switchboard's base URL, `http://127.0.0.1:8080` (in a page served by Switchboard, '' is its own
   * server). Without credentials (`http://user:secret@host`: fetch makes no request of one): every
   * call of a client with one is a TypeError, and its live feed ends at once.
   */
  readonly url: string;
  /** The workspace of the workspace methods (default `default`). */
  readonly workspace?: string;
  /**
   * An API key (`sb_<keyId>_<secret>`), sent as `Authorization: Bearer` (in place of an
   * Authorization given in a call's `headers`: `with({ key })` is a client of another key).
   */
  readonly key?: string;
  /** Each try's time limit (default 15 s; one past 2^31 - 1 ms, such as Infinity, is none). */
  readonly timeoutMs?: number;
  /** Further tries of a failure worth one (default 4). */
  readonly retries?: number;
  /** The first backoff (default 250 ms), doubling up to `maxBackoffMs` (default 4 s). */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * The longest wait a `Retry-After` (or a problem's `retryAfterMs`) holds a retry to (default
   * 60 s): a proxy asking for hours is tried again after it; Infinity waits whatever is asked. The
   * live feed's waits after a refusal take it too.
   */
  readonly maxRetryAfterMs?: number;
  /** Which failures are tried again (default: network, timeout, 429, 502, 503, 504). */
  readonly retryOn?: (status: Failure) => boolean;
  /**
   * Told of each retry before its wait; returning false gives up (the failure is the answer), a
   * number waits that many milliseconds instead of `delayMs` (a backoff of your own, with jitter
   * or without Retry-After).
   */
  readonly onRetry?: OnRetry;
  /**
   * Further base URLs of the same Switchboard (other API instances, with no load balancer in
   * front): the tries of a call take `url` and these in turn, each retry the next one, a call
   * starting at the one that answered the last call (`url` at first). The live feed stays on `url`.
   */
  readonly failover?: readonly string[];
  /** A fetch to use instead of the global one. */
  readonly fetch?: typeof fetch;
  /**
   * The live feed's WebSocket class. Default: the `ws` package in Node (the key goes in a header),
   * the global WebSocket elsewhere (the key buys a one-time ticket first: browsers send no headers).
   */
  readonly WebSocket?: unknown;
}

/** What every method takes besides its own: a signal that aborts the call (no try after it). */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** false: give up; a number: wait that many ms before the next try; otherwise wait `delayMs`. */
export type OnRetry = (info: RetryInfo) => boolean | number | undefined;

export interface SendOptions {
  readonly body?: unknown;
  readonly query?: Record<string, string | number | readonly string[] | undefined>;
  /**
   * Further headers of the call, each sent once whatever the case of its name: one the client sets
   * by default (Accept, Content-Type) is replaced by the one given here; one an option sets (the
   * client's `key` as Authorization, `idempotencyKey`) is not.
   */
  readonly headers?: Record<string, string>;
  /**
   * The call's Idempotency-Key (an `Idempotency-Key` in `headers`, the name in any case, is one
   * too; given both ways, this one is sent). A SwitchboardError of the call names it. On a
   * command's route it makes a write worth another try after a failure (the server applies the
   * command once); POST /keys, DELETE /keys/{id} and POST /ws-tickets ignore it, and are tried
   * again after a 429 only, key or not.
   */
  readonly idempotencyKey?: string;
  /** Further tries for this call (default: the client's). */
  readonly retries?: number;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly onRetry?: OnRetry;
}

export interface Answer<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  /** Tries made, the first included. */
  readonly attempts: number;
  /** Where a redirect the call followed (a GET's or a HEAD's; never a write's) led: the answer's URL. */
  readonly redirectedTo?: string;
}

const RETRY_STATUSES = new Set([429, 502, 503, 504]);
export const defaultRetryOn = (s: Failure): boolean => typeof s !== 'number' || RETRY_STATUSES.has(s);

export function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

export class SwitchboardClient {
  /** The base URL, without a trailing slash. */
  readonly url: string;
  readonly workspace: string;
  readonly options: ClientOptions;
  /** `url` then `failover`: the base URLs the tries of a call take in turn. */
  private readonly bases: readonly string[];
  /** Why a base URL (`url` or one of `failover`) cannot be called, when one cannot (unusableBaseUrl): see send(). */
  private readonly unusable: string | undefined;
  /** Why a numeric option of the client is unusable (NaN), when one is: see send(). */
  private readonly badOption: string | undefined;
  /** The index in `bases` a call starts at: the base URL that answered the last call (see send()). */
  private start = 0;

  constructor(options: ClientOptions) {
    this.options = options;
    this.url = options.url.replace(/\/+$/, '');
    this.bases = [this.url, ...(options.failover ?? []).map((u) => u.replace(/\/+$/, ''))];
    this.workspace = options.workspace ?? 'default';
    this.unusable = [options.url, ...(options.failover ?? [])]
      .map((u, i) => unusableBaseUrl(u, i === 0 ? "the client's url" : 'the failover URL'))
      .find((why) => why !== undefined);
    this.badOption = notANumber(options, [
      'timeoutMs',
      'retries',
      'backoffMs',
      'maxBackoffMs',
      'maxRetryAfterMs',
    ]);
  }

  /** The same client for another workspace (or another key). */
  with(more: Partial<ClientOptions>): SwitchboardClient {
    return new SwitchboardClient({ ...this.options, ...more });
  }

  /** The longest wait a `Retry-After` holds a retry to (the `maxRetryAfterMs` option, default 60 s). */
  get maxRetryAfterMs(): number {
    return this.options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  }

  /** `/v1/workspaces/{ws}` */
  get workspacePath(): string {
    return `/v1/workspaces/${encodeURIComponent(this.workspace)}`;
  }

  // ---- Commands ----------------------------------------------------------------------------

  registerAgent(body: RegisterAgent, o?: CommandOptions): Promise<CommandResult<AgentDocument>> {
    return this.command('POST', '/agents', body, o);
  }
  updateAgent(id: string, body: UpdateAgent, o?: CommandOptions): Promise<CommandResult<AgentDocument>> {
    return this.command('PATCH', `/agents/${enc(id)}`, body, o);
  }
  setAgentState(id: string, state: AgentPresence, o?: CommandOptions): Promise<CommandResult<AgentDocument>> {
    return this.command('POST', `/agents/${enc(id)}/state`, { state }, o);
  }
  removeAgent(
    id: string,
    o?: CommandOptions,
  ): Promise<CommandResult<{ id: string; removed: true; [more: string]: unknown }>> {
    return this.command('DELETE', `/agents/${enc(id)}`, undefined, o);
  }
  queueContact(body: QueueContact, o?: CommandOptions): Promise<CommandResult<ContactView>> {
    return this.command('POST', '/contacts', body, o);
  }
  abandonContact(id: string, o?: CommandOptions): Promise<CommandResult<ContactView>> {
    return this.command('POST', `/contacts/${enc(id)}/abandon`, undefined, o);
  }
  completeContact(id: string, o?: CommandOptions): Promise<CommandResult<ContactView>> {
    return this.command('POST', `/contacts/${enc(id)}/complete`, undefined, o);
  }
  transferContact(id: string, body: Transfer, o?: CommandOptions): Promise<CommandResult<ContactView>> {
    return this.command('POST', `/contacts/${enc(id)}/transfer`, body, o);
  }
  acceptOffer(contactId: string, agentId: string, o?: CommandOptions): Promise<CommandResult<ContactView>> {
    return this.command('POST', `/contacts/${enc(contactId)}/accept`, { agentId }, o);
  }
  rejectOffer(contactId: string, agentId: string, o?: CommandOptions): Promise<CommandResult<ContactView>> {
    return this.command('POST', `/contacts/${enc(contactId)}/reject`, { agentId }, o);
  }
  putSettings(body: SettingsChange, o?: CommandOptions): Promise<CommandResult<Settings>> {
    return this.command('PUT', '/settings', body, o);
  }

  // ---- Queries -----------------------------------------------------------------------------

  getAgent(id: string, o?: QueryOptions): Promise<AgentDocument> {
    return this.query(`/agents/${enc(id)}`, o);
  }
  /**
   * The first `limit` agents (1,000 by default) by id, after `after` when given, or longest
   * available first with `state: 'available'` and `skill`. By id, pages are read on by their
   * `next` until `limit` are found or none follow: a page by `state` or `skill` looks at 10,000
   * ids at most, and may hold fewer (listAgentsPage reads one page).
   */
  async listAgents(
    filter: { state?: AgentStateName; skill?: string; limit?: number; after?: string } = {},
    o?: QueryOptions,
  ): Promise<AgentDocument[]> {
    const limit = filter.limit ?? 1000;
    const out: AgentDocument[] = [];
    let after = filter.after;
    // A page by id holds 10,000 at most (the server's bound on `limit`): more are read page after
    // page. The longest-available listing is one page: its `limit` goes as asked (past 10,000, the
    // server's 400), never cut short silently.
    const byAvailability = filter.state === 'available' && filter.skill !== undefined;
    let page = await this.listAgentsPage(
      { ...filter, limit: byAvailability ? limit : Math.min(limit, MAX_AGENTS_PAGE) },
      o,
    );
    for (;;) {
      out.push(...page.agents);
      if (page.next === null || out.length >= limit) return out.slice(0, limit);
      // Ids come in order: a `next` not past the page's own `after` would read the same page again.
      if (after !== undefined && !(page.next > after))
        throw new SwitchboardError({
          status: 200,
          method: 'GET',
          path: `${this.workspacePath}/agents`,
          body: page,
          detail: `the answer's next (${page.next}) is not past the page's after (${after}): not a listing by id`,
          attempts: 1,
        });
      after = page.next;
      page = await this.listAgentsPage(
        { ...filter, limit: Math.min(limit - out.length, MAX_AGENTS_PAGE), after },
        o,
      );
    }
  }
  /**
   * A page of agents by id with its `next`: the `after` of the page that follows, null when none
   * does (a page by state or skill may hold fewer than `limit`, or none, and still have one).
   * Longest available first (`state: 'available'` and `skill`), `next` is null: that is one page.
   */
  async listAgentsPage(
    filter: { state?: AgentStateName; skill?: string; limit?: number; after?: string } = {},
    o?: QueryOptions,
  ): Promise<{ agents: AgentDocument[]; next: string | null }> {
    const page = await this.query<{ agents: AgentDocument[]; next?: string | null }>('/agents', o, filter);
    return { agents: page.agents, next: page.next ?? null };
  }
  getContact(id: string, o?: QueryOptions): Promise<ContactView> {
    return this.query(`/contacts/${enc(id)}`, o);
  }
  /** Queues, waits, agents by state, counters, and the last minutes' service level (threshold `serviceLevelMs`, default 20 s). */
  getStats(o?: QueryOptions & { serviceLevelMs?: number }): Promise<Stats> {
    return this.query('/stats', o, { serviceLevelMs: o?.serviceLevelMs });
  }
  /** `getStats`. */
  stats(o?: QueryOptions & { serviceLevelMs?: number }): Promise<Stats> {
    return this.getStats(o);
  }
  /**
   * The log's figures in 15-minute intervals over `[from, to)` (at most 24 hours; the first interval
   * starts at or before `from`): per interval and per queue, contacts queued, first decisions,
   * abandons, expiries, completions, transfers, mean wait, service level (within `serviceLevelMs`,
   * default 20 s) and mean handle time. `source: 'log'` reads the log even where the live
   * projection has the range; the answer's `source` says which gave it (docs/API.md "Historical
   * intervals"). A busier range than the server reads at once is a 422 `range-too-large`.
   */
  async getStatsIntervals(
    range: {
      from: string | Date;
      to: string | Date;
      serviceLevelMs?: number;
      source?: 'log';
    },
    o?: QueryOptions,
  ): Promise<StatsIntervals> {
    return this.query('/stats/intervals', o, {
      from: isoTime(range.from, 'from'),
      to: isoTime(range.to, 'to'),
      serviceLevelMs: range.serviceLevelMs,
      source: range.source,
    });
  }
  getSettings(o?: QueryOptions): Promise<Settings> {
    return this.query('/settings', o);
  }
  /** `getSettings`. */
  settings(o?: QueryOptions): Promise<Settings> {
    return this.getSettings(o);
  }
  /** One page of the history: the events after `after` (all types, or `types`). */
  listEvents(
    page: { after?: Position; limit?: number; types?: readonly EventType[] } = {},
    o?: QueryOptions,
  ): Promise<EventPage> {
    return this.query('/events', o, {
      after: page.after,
      limit: page.limit,
      type: page.types?.length ? page.types.join(',') : undefined,
    });
  }
  /** `listEvents`. */
  events(
    page: { after?: Position; limit?: number; types?: readonly EventType[] } = {},
    o?: QueryOptions,
  ): Promise<EventPage> {
    return this.listEvents(page, o);
  }
  /** Every event after `after`, page by page, to the end of the log so far. */
  async *allEvents(
    page: { after?: Position; limit?: number; types?: readonly EventType[] } = {},
    o?: QueryOptions,
  ): AsyncGenerator<EventEnvelope> {
    let after = page.after;
    for (;;) {
      const p = await this.events({ ...page, ...(after !== undefined ? { after } : {}) }, o);
      yield* p.events;
      // A filtered page may hold nothing and still have a next (the server reads a bounded stretch
      // of the log per page): only a null next, or one that does not move, ends the log.
      if (p.next === null || p.next === after) return;
      after = p.next;
    }
  }
  /** The workspace as it was right after the event at `at` (a 409 `position-ahead` past the last). */
  getStateAt(at: Position, o?: QueryOptions): Promise<StateAt> {
    return this.query('/state', o, { at });
  }
  /** `getStateAt`. */
  stateAt(at: Position, o?: QueryOptions): Promise<StateAt> {
    return this.getStateAt(at, o);
  }

  // ---- Keys and tickets --------------------------------------------------------------------

  async createKey(
    body: {
      role: Role;
      agentId?: string;
      name?: string;
    },
    o: CallOptions = {},
  ): Promise<ApiKeyInfo & { readonly key: string }> {
    return (
      await this.document<ApiKeyInfo & { key: string }>('POST', `${this.workspacePath}/keys`, {
        body,
        ...signalOf(o),
      })
    ).body;
  }
  async listKeys(o: CallOptions = {}): Promise<ApiKeyInfo[]> {
    return (await this.document<{ keys: ApiKeyInfo[] }>('GET', `${this.workspacePath}/keys`, signalOf(o)))
      .body.keys;
  }
  /** One key of the workspace, revoked or not (admin); never its secret. */
  async getKey(keyId: string, o: CallOptions = {}): Promise<ApiKeyInfo> {
    return (await this.document<ApiKeyInfo>('GET', `${this.workspacePath}/keys/${enc(keyId)}`, signalOf(o)))
      .body;
  }
  async revokeKey(keyId: string, o: CallOptions = {}): Promise<ApiKeyInfo> {
    return (
      await this.document<ApiKeyInfo>('DELETE', `${this.workspacePath}/keys/${enc(keyId)}`, signalOf(o))
    ).body;
  }
  /** The key that sends the request: its id, workspace, role and agent. */
  async whoami(
    o: CallOptions = {},
  ): Promise<{ keyId: string; workspace: string; role: Role; agentId?: string }> {
    return (
      await this.document<{ keyId: string; workspace: string; role: Role; agentId?: string }>(
        'GET',
        `${this.workspacePath}/keys/me`,
        signalOf(o),
      )
    ).body;
  }
  /**
   * A one-time ticket (30 s) for the live feed, for WebSockets that cannot send a header. With
   * `after` (the position the feed will open from), one past the workspace's last event is refused
   * as the upgrade would refuse it, a SwitchboardError 409 `position-ahead` with `lastPosition`.
   * A 2xx that is no ticket (a proxy's HTML page, JSON `null`, a document with no `ticket`) is a
   * SwitchboardError with that status and the text, never a ticket of "undefined". The live feed
   * takes its tickets here.
   */
  async createWsTicket(o: { readonly after?: Position } & CallOptions = {}): Promise<WsTicket> {
    const path = `${this.workspacePath}/ws-tickets`;
    const a = await this.document<WsTicket>('POST', path, {
      ...(o.after !== undefined ? { body: { after: o.after } } : {}),
      ...signalOf(o),
    });
    const ticket = (a.body as { ticket?: unknown }).ticket;
    if (typeof ticket !== 'string' || ticket === '')
      throw new SwitchboardError({
        status: a.status,
        method: 'POST',
        path,
        body: a.body,
        detail: `the answer is no ticket (no ticket): ${JSON.stringify(a.body).slice(0, 200)}`,
        attempts: a.attempts,
      });
    return a.body;
  }
  /** `createWsTicket`. */
  wsTicket(o: { readonly after?: Position } & CallOptions = {}): Promise<WsTicket> {
    return this.createWsTicket(o);
  }

  // ---- Operations --------------------------------------------------------------------------

  async health(o: { retries?: number; timeoutMs?: number } & CallOptions = {}): Promise<{ status: 'ok' }> {
    return (await this.document<{ status: 'ok' }>('GET', '/health', o)).body;
  }
  async status(o: CallOptions = {}): Promise<Status> {
    return (await this.document<Status>('GET', '/status', signalOf(o))).body;
  }
  /** The Prometheus exposition text of the instance that answers (docs/METRICS.md). */
  async metrics(o: CallOptions = {}): Promise<string> {
    const a = await this.request<unknown>('GET', '/metrics', {
      headers: { accept: 'text/plain' },
      ...signalOf(o),
    });
    return typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
  }
  /** The OpenAPI 3.1 document of the API (the operationIds are this client's method names). */
  async openapiDocument(o: CallOptions = {}): Promise<OpenApiDocument> {
    return (await this.document<OpenApiDocument>('GET', '/openapi.json', signalOf(o))).body;
  }

  // ---- Live --------------------------------------------------------------------------------

  /**
   * The live feed: `onEvent` gets every event after `after` (or from now), in order, once. When the
   * socket closes or fails, it opens again from the last position it is done with (backoff 250 ms
   * doubling to 5 s), so nothing is lost or repeated. `close()` ends it.
   */
  subscribeLive(options: SubscribeOptions, onEvent: (e: EventEnvelope) => void): Subscription {
    return subscribe(this, options, onEvent);
  }
  /** `subscribeLive`. */
  subscribe(options: SubscribeOptions, onEvent: (e: EventEnvelope) => void): Subscription {
    return subscribe(this, options, onEvent);
  }

  // ---- The requests ------------------------------------------------------------------------

  /** A workspace command: an Idempotency-Key on every try, its outcome typed. */
  async command<T>(
    method: string,
    path: string,
    body: unknown,
    o: CommandOptions = {},
  ): Promise<CommandResult<T>> {
    const idempotencyKey = o.idempotencyKey ?? newIdempotencyKey();
    const a = await this.document<Record<string, unknown>>(method, `${this.workspacePath}${path}`, {
      body,
      idempotencyKey,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const b = a.body;
    // A JSON document that is no command's outcome (a proxy's or a stub's `{"ok": true}`, an
    // array): no position to read the write at, nor, for a 202, the command it would be. Thrown
    // with the status and the text, never a command reported applied at position "undefined".
    const missing =
      typeof b.position !== 'string' || !POSITION.test(b.position)
        ? 'position'
        : a.status === 202 && typeof b.commandId !== 'string'
          ? 'commandId'
          : undefined;
    if (missing !== undefined)
      throw new SwitchboardError({
        status: a.status,
        method,
        path: `${this.workspacePath}${path}`,
        body: b,
        detail: `the answer is no command's outcome (no ${missing}): ${JSON.stringify(b).slice(0, 200)}`,
        attempts: a.attempts,
        idempotencyKey,
      });
    if (a.status === 202)
      return {
        applied: false,
        status: 202,
        position: String(b.position),
        commandId: String(b.commandId),
        ...(typeof b.id === 'string' ? { id: b.id } : {}),
        idempotencyKey,
      };
    return {
      applied: true,
      status: a.status === 201 ? 201 : 200,
      position: String(b.position),
      value: b as T & { position: string },
      replayed: a.headers.get('idempotent-replayed') === 'true',
      idempotencyKey,
    };
  }

  /** A workspace query, with `minPosition` when given. */
  async query<T>(
    path: string,
    o: QueryOptions = {},
    params: Record<string, string | number | undefined> = {},
  ): Promise<T> {
    const a = await this.document<T>('GET', `${this.workspacePath}${path}`, {
      query: { ...params, minPosition: o.minPosition },
      ...(o.signal ? { signal: o.signal } : {}),
    });
    return a.body;
  }

  /** One call, retried as configured; any answer outside 2xx is thrown as a SwitchboardError. */
  async request<T = unknown>(method: string, path: string, o: SendOptions = {}): Promise<Answer<T>> {
    const a = await this.send(method, path, o);
    if (a.status < 200 || a.status >= 300)
      throw new SwitchboardError({
        status: a.status,
        method,
        path,
        body: a.body,
        retryAfter: a.headers.get('retry-after'),
        // Sent with an Authorization: the client's key, or one given in `headers` (any case).
        ...redirectNote(
          method,
          a,
          this.options.key !== undefined ||
            Object.keys(o.headers ?? {}).some((name) => name.toLowerCase() === 'authorization'),
        ),
        attempts: a.attempts,
        idempotencyKey: idempotencyKeyOf(o),
      });
    return a as Answer<T>;
  }

  /**
   * `request` of an operation that answers a JSON document. A 2xx with anything else (an HTML page
   * of a proxy or portal in front of the server, a body cut short, nothing) is no answer of the
   * operation: it is thrown as a SwitchboardError with that status and the text, never handed on
   * as the document (nor a command reported applied at no position).
   */
  private async document<T>(method: string, path: string, o: SendOptions = {}): Promise<Answer<T>> {
    const a = await this.request<T>(method, path, o);
    if (typeof a.body === 'object' && a.body !== null) return a;
    const type = a.headers.get('content-type') ?? 'no content-type';
    const text = typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
    throw new SwitchboardError({
      status: a.status,
      method,
      path,
      body: a.body,
      detail: `the answer is not a JSON document (${type}${text === '' ? ', empty' : ''})${text === '' ? '' : `: ${text.slice(0, 200)}`}`,
      attempts: a.attempts,
      idempotencyKey: idempotencyKeyOf(o),
    });
  }

  /**
   * One call, retried as configured, whatever its answer: the last answer is returned (2xx or
   * not); only a call that never got one (network, timeout, aborted) throws a SwitchboardError.
   */
  async send(method: string, path: string, o: SendOptions = {}): Promise<Answer> {
    // An id "." or ".." (no valid id, but a caller may pass one) is a dot segment to every URL
    // parser: fetch would drop it (or the segment before it) and call another route, such as GET /agents
    // for getAgent('.'). No encoding survives it (%2E is a dot segment too), so it is refused here.
    // An empty id (or workspace) is no segment at all: getAgent('') is GET /agents/, the list,
    // answered as if it were an agent's document. Refused the same way in the API's paths (/v1/...;
    // the pages' paths are left as given).
    const badPath = unsendablePath(path);
    if (badPath !== undefined) throw new TypeError(`${method} ${path}: ${badPath}`);
    // A base URL fetch cannot call at all (no scheme: `127.0.0.1:8080`, `localhost:8080`; another
    // scheme; credentials in it, which fetch refuses and would name, password and all, in its
    // error) is a mistake in the options, not a network failure: no try would ever reach a server,
    // so it is not tried again and again as if the server were down. A failover URL is checked
    // with `url`: a mistake in it would otherwise show only in the outage it is there for.
    if (this.unusable !== undefined) throw new TypeError(`${method} ${path}: ${this.unusable}`);
    // A numeric option that is NaN (`Number(process.env.X)` of an unset variable) would make a call
    // that never ends: a backoff of NaN a wait that never ends, retries of NaN tries without end, a
    // timeout of NaN no limit. The caller's mistake, thrown before anything is sent.
    const nan = this.badOption ?? notANumber(o, ['timeoutMs', 'retries']);
    if (nan !== undefined) throw new TypeError(`${method} ${path}: ${nan}`);
    const prepared = this.prepare(method, path, o);
    const retries = o.retries ?? this.options.retries ?? 4;
    // The call's key, given as the option or as a header (any case of its name): on every error of
    // the call, so that the caller can send it again with the same key.
    const idempotencyKey = idempotencyKeyOf(o);
    // A write may have landed before its answer was lost: it is tried again only after a 429, which
    // changed nothing, unless it is a command with an Idempotency-Key, which the server applies
    // once however often it is sent. Only the command routes read the key: POST /keys, DELETE
    // /keys/{id} and POST /ws-tickets ignore it, so a bare request of one with a key, sent again,
    // could make a second key (or spend a second ticket).
    const repeatable =
      method === 'GET' || method === 'HEAD' || (idempotencyKey !== undefined && isCommandPath(path));
    const configured = this.options.retryOn ?? defaultRetryOn;
    const retryOn = (s: Failure) => configured(s) && (repeatable || s === 429);
    const aborted = (attempts: number) =>
      new SwitchboardError({
        status: 'network',
        method,
        path,
        detail: 'aborted',
        attempts,
        idempotencyKey,
      });
    /** The index in `bases` of this try's base URL: the one that answered the last call first. */
    let at = this.start;
    /** The base URLs that answered this call with a 503 `archive-unreadable`. */
    const holed = new Set<string>();
    /** The last such answer: the call's answer when no other base URL gives a better one. */
    let holeAnswer: Answer | undefined;
    for (let attempt = 1; ; attempt++) {
      // An aborted call sends nothing more: not its first try, not a retry after the wait it cut short.
      if (o.signal?.aborted) throw aborted(attempt - 1);
      let answer: Answer | undefined;
      let failure: SwitchboardError | undefined;
      // A call starts at the base URL that last answered, not at `url` each time: one that is down
      // (or hangs until the timeout) costs one failed try, not one per call, and a write that is
      // not tried again (POST /keys) goes where an answer comes from.
      const base = this.bases[at]!;
      try {
        answer = { ...(await this.once(base, method, path, o, prepared)), attempts: attempt };
      } catch (err) {
        if (!(err instanceof SwitchboardError)) throw err;
        failure = err;
        if (o.signal?.aborted) throw aborted(attempt);
      }
      const status: Failure = answer ? answer.status : failure!.status;
      // An answer that is no failure worth another try (a 2xx, a 4xx, a 500): that base URL is up.
      if (answer && !defaultRetryOn(answer.status)) this.start = at;
      // A 503 `archive-unreadable` is a hole in that instance's archive, which every try there
      // meets again (no Retry-After: nothing a wait mends): that base URL is not tried again in
      // this call, and the hole is the answer unless a failover URL that has not answered it yet
      // (which may read another archive) gives a better one.
      if (answer && isProblem(answer.body, 'archive-unreadable')) {
        holed.add(base);
        holeAnswer = answer;
      }
      // No more tries: the last answer, or the failure as an error. A failure worth another try
      // (no answer, a 502, ...) met after a hole is not the answer: the hole is, with its `hole`
      // for the caller (the tries made, all of them).
      const lastOf = (): Answer => {
        if (holeAnswer && (answer === undefined || configured(answer.status)))
          return { ...holeAnswer, attempts: attempt };
        if (answer) return answer;
        throw new SwitchboardError({
          status: failure!.status,
          method,
          path,
          detail: failure!.detail,
          attempts: attempt,
          idempotencyKey,
        });
      };
      // The next try's base URL: the next one in turn that has not answered a hole (this one again
      // when it is the only one left); none when every one has.
      let nextAt: number | undefined;
      for (let i = 1; i <= this.bases.length; i++) {
        const j = (at + i) % this.bases.length;
        if (!holed.has(this.bases[j]!)) {
          nextAt = j;
          break;
        }
      }
      if (attempt > retries || !retryOn(status) || nextAt === undefined) return lastOf();
      const next = this.bases[nextAt]!;
      const backoff = Math.min(
        this.options.maxBackoffMs ?? 4_000,
        (this.options.backoffMs ?? 250) * 2 ** (attempt - 1),
      );
      // A 503 `shutting-down` is the answering instance's own: its Retry-After holds back the next
      // try only when that goes to the same base URL, not when failover takes it to another one.
      const waitAsked =
        answer && !(next !== base && isProblem(answer.body, 'shutting-down'))
          ? retryAfterMs(answer, this.maxRetryAfterMs)
          : 0;
      const delayMs = Math.max(backoff, waitAsked);
      const info: RetryInfo = {
        method,
        path,
        url: base,
        attempt,
        status,
        delayMs,
        ...(answer ? { body: answer.body } : {}),
      };
      const go = (o.onRetry ?? this.options.onRetry)?.(info);
      if (go === false) return lastOf();
      await sleep(typeof go === 'number' && go >= 0 ? go : delayMs, o.signal);
      at = nextAt;
    }
  }

  /**
   * A call's headers and body, made once for all its tries. What cannot be sent at all is the
   * caller's mistake, not a failure of the network: a body JSON cannot write (a BigInt, a cycle),
   * a header value fetch refuses (a line break in an Idempotency-Key or an API key). It is thrown
   * as a TypeError before anything is sent, and never tried again; the value (perhaps the API key)
   * is not repeated in the message.
   */
  private prepare(
    method: string,
    path: string,
    o: SendOptions,
  ): { headers: Record<string, string>; body?: string } {
    // Each header once, by its name in any case: two names that differ only in case (a caller's
    // `Accept` and the client's `accept`) would be sent by fetch as one, the values joined
    // ("text/plain, application/json", "Bearer a, Bearer b"), which the server refuses or misreads.
    // The rule (docs/API.md, "Headers"): a header in `headers` replaces the client's default of
    // that name (Accept, Content-Type); an option replaces a header (the client's `key` is the
    // Authorization, the `idempotencyKey` option the Idempotency-Key).
    const headers: Record<string, string> = { accept: 'application/json' };
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    for (const [name, value] of Object.entries(o.headers ?? {})) headers[name.toLowerCase()] = value;
    if (this.options.key !== undefined) headers.authorization = `Bearer ${this.options.key}`;
    if (o.idempotencyKey !== undefined) headers['idempotency-key'] = o.idempotencyKey;
    const checked = new Headers();
    for (const [name, value] of Object.entries(headers)) {
      try {
        checked.set(name, value); // as fetch would, which throws the same for a value it cannot send
      } catch {
        throw new TypeError(
          `${method} ${path}: the ${name} header cannot be sent (its value has a line break, a control character or a character outside Latin-1)`,
        );
      }
    }
    if (o.body === undefined) return { headers };
    let body: string;
    try {
      body = JSON.stringify(o.body);
    } catch (err) {
      throw new TypeError(`${method} ${path}: the body cannot be sent as JSON (${(err as Error).message})`);
    }
    return { headers, body };
  }

  /** One try: no retry. Throws a SwitchboardError when no answer came. */
  private async once(
    base: string,
    method: string,
    path: string,
    o: SendOptions,
    prepared: { headers: Record<string, string>; body?: string },
  ): Promise<Omit<Answer, 'attempts'>> {
    const timeoutMs = o.timeoutMs ?? this.options.timeoutMs ?? 15_000;
    const timeout = new AbortController();
    // A limit past what a timer holds (2^31 - 1 ms, about 24.8 days; Infinity) is no limit: a
    // timer given more fires at once, which would time every try out in a millisecond.
    const timer = timeoutMs <= MAX_TIMER_MS ? setTimeout(() => timeout.abort(), timeoutMs) : undefined;
    const onAbort = () => timeout.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const doFetch = this.options.fetch ?? fetch;
    try {
      let res: Response;
      try {
        res = await doFetch(`${base}${path}${queryString(o.query, path)}`, {
          method,
          // A write is never sent on to where a redirect points: fetch would send a 301 or 302 of a
          // POST (and a 303 of any write) on as a GET without its body, the command lost or turned
          // into a query. The 3xx is the answer (request() throws it, naming the Location).
          ...(method === 'GET' || method === 'HEAD' ? {} : { redirect: 'manual' as const }),
          headers: prepared.headers,
          ...(prepared.body !== undefined ? { body: prepared.body } : {}),
          signal: timeout.signal,
        });
      } catch (err) {
        if (o.signal?.aborted)
          throw new SwitchboardError({ status: 'network', method, path, detail: 'aborted' });
        if (timeout.signal.aborted)
          throw new SwitchboardError({
            status: 'timeout',
            method,
            path,
            detail: `no answer within ${timeoutMs} ms`,
          });
        throw new SwitchboardError({ status: 'network', method, path, detail: networkDetail(err as Error) });
      }
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        throw new SwitchboardError({
          status: timeout.signal.aborted ? 'timeout' : 'network',
          method,
          path,
          detail: `the answer broke off: ${networkDetail(err as Error)}`,
        });
      }
      let body: unknown = text;
      if (/json/.test(res.headers.get('content-type') ?? '') && text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          /* keep the text */
        }
      }
      return {
        status: res.status,
        headers: res.headers,
        body,
        ...(res.redirected && res.url ? { redirectedTo: res.url } : {}),
      };
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    }
  }
}

const enc = encodeURIComponent;

/** `{signal}` when one is given, for SendOptions. */
const signalOf = (o: CallOptions): { signal?: AbortSignal } => (o.signal ? { signal: o.signal } : {});

/** The longest delay a timer holds (setTimeout fires at once past it). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A time as the API reads it: ISO 8601 (a Date as its UTC ISO string, a string as given). An
 * Invalid Date (`new Date(undefined)`, a date parsed from nothing) has no ISO string: it is the
 * caller's mistake, a TypeError naming the range's end (`name`), as the call's rejection.
 */
function isoTime(t: string | Date, name: string): string {
  if (typeof t === 'string') return t;
  if (Number.isNaN(t.getTime()))
    throw new TypeError(
      `GET /stats/intervals: the range's ${name} is an Invalid Date: it takes a valid Date or an ISO 8601 time`,
    );
  return t.toISOString();
}

/** `query` as a query string: `?a=1&b=2`, or `&a=1&b=2` after a `path` that has one already. */
function queryString(q: SendOptions['query'], path: string): string {
  if (!q) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(',') : String(v);
    parts.push(`${enc(k)}=${enc(value)}`);
  }
  if (!parts.length) return '';
  const joiner = !path.includes('?') ? '?' : path.endsWith('?') || path.endsWith('&') ? '' : '&';
  return `${joiner}${parts.join('&')}`;
}

/**
 * What the client knows of a redirect behind an answer outside 2xx. A write's is not followed (see
 * once()): the note says where it points (a browser hides that: an opaque answer, status 0). A
 * GET's that was followed to another origin went there without the API key (fetch sends no
 * Authorization across origins): a 401 from there is told as such, not only "No API key was given".
 * `keyed`: the call carried an Authorization (the client's `key`, or one in its `headers`).
 */
function redirectNote(method: string, a: Answer, keyed: boolean): { note?: string } {
  if (a.redirectedTo !== undefined)
    return {
      note: `redirected to ${a.redirectedTo}${keyed && a.status === 401 ? ": fetch sends no Authorization header on a redirect to another origin; set the client's url to the server's own address" : ''}`,
    };
  if (method === 'GET' || method === 'HEAD') return {};
  if (a.status !== 0 && (a.status < 300 || a.status >= 400)) return {};
  const location = a.headers.get('location');
  return {
    note: `redirected${location ? ` to ${location}` : ''}: the client does not follow a redirect of a ${method} (fetch would send a 301, 302 or 303 on as a GET without its body); set the client's url to the server's own address`,
  };
}

/**
 * What the server asked to wait: `Retry-After` (seconds or a date), or a problem's `retryAfterMs`;
 * at most `capMs` (the `maxRetryAfterMs` option).
 */
function retryAfterMs(a: Omit<Answer, 'attempts'>, capMs: number): number {
  return retryAfterMsOf(a.headers.get('retry-after'), a.body, capMs);
}

/**
 * A call's Idempotency-Key: the `idempotencyKey` option, else an `Idempotency-Key` header given in
 * `headers` (the name in any case), as sent (fetch drops the value's leading and trailing blanks).
 */
function idempotencyKeyOf(o: SendOptions): string | undefined {
  if (o.idempotencyKey !== undefined) return o.idempotencyKey;
  // The last of that name, as prepare() sends it (one header per name, the last given in any case).
  let key: string | undefined;
  for (const [name, value] of Object.entries(o.headers ?? {}))
    if (name.toLowerCase() === 'idempotency-key') key = value.replace(/^[ \t]+|[ \t]+$/g, '');
  return key;
}

/**
 * Whether `path` is a workspace command's route (`/v1/workspaces/{ws}/agents...`, `/contacts...`,
 * `/settings`): the only writes whose Idempotency-Key the server reads, so that sending one again
 * (the same key) applies it once. The other writes (POST /keys, DELETE /keys/{id}, POST
 * /ws-tickets) ignore the key: sent again, each is made again.
 */
function isCommandPath(path: string): boolean {
  return /^\/v1\/workspaces\/[^/?#]+\/(?:agents|contacts|settings)(?:[/?#]|$)/.test(path);
}

/** The most agents GET /agents answers in one page (its `limit`'s bound). */
const MAX_AGENTS_PAGE = 10_000;

/** Whether `body` is a problem document of the type `/problems/<slug>`. */
function isProblem(body: unknown, slug: string): boolean {
  return (
    typeof body === 'object' && body !== null && (body as { type?: unknown }).type === `/problems/${slug}`
  );
}

/** The useful part of a fetch failure: "connect ECONNREFUSED 127.0.0.1:8080" rather than "fetch failed". */
export function networkDetail(err: Error): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message) return cause.message;
  if (cause?.code) return cause.code;
  return err.message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    // A wait past what one timer holds (an onRetry's number) is made of several: one timer given
    // more would fire at once.
    const end = Date.now() + ms;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      const left = end - Date.now();
      if (left <= 0) return done();
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
    arm();
  });
}
