import { publicFields } from '../adapters/redis/projection-reads.ts';
import type { RoutingIndex } from '../adapters/redis/routing-index.ts';
import {
  canTakeWork,
  channelOf,
  lastExcluded,
  type Settings,
  settingsWithDefaults,
  type Workspace,
} from '../domain/model.ts';
import { type Auditor, COUNTED_EVENTS } from './auditor.ts';
import { agentDocument, contactDocument, differences, iso, jsonEqual } from './expected.ts';
import { positionBefore, type Violation } from './violations.ts';

/**
 * The end of the audit: the live documents and routing index must be the replayed state. Fed a
 * page of documents at a time (the hashes can be large), as stored (JSON text); mismatches are
 * collected, not reported, until `violations()`: the caller reports them only if the workspace did
 * not move while it read. Documents are compared on their public fields: internal `_` fields
 * are left out, the attributes (kept as the client's text in `_attrs`) parsed and a contact's
 * `excludedAgents` read by its last MAX_EXCLUDED_AGENTS, as src/adapters/redis/projection-reads.ts
 * `publicDocument` does for queries.
 */
export class StateCheck {
  private readonly found: Violation[] = [];
  private readonly seenAgents = new Set<string>();
  /** Marks contacts seen (in their ContactMeta: no set of a million ids to build). */
  private readonly mark = ++checks;

  constructor(private readonly audit: Auditor) {}

  private flag(message: string, kind: 'state' | 'index' | 'timer' = 'state'): void {
    this.found.push({ kind, stream: 'state', position: this.audit.lastEvent ?? '0-0', message });
  }

  agent(id: string, text: string): void {
    if (this.seenAgents.has(id)) return; // HSCAN may return a field twice
    this.seenAgents.add(id);
    const a = this.audit.state.agents.get(id);
    if (!a) this.flag(`agent ${id} has a document but the replay has no such agent`);
    else this.compare(`agent ${id}`, text, agentDocument(a, this.audit.agentPositions.get(id) ?? ''));
  }

  contact(id: string, text: string): void {
    const meta = this.audit.contactMeta.get(id);
    if (meta?.checked === this.mark) return;
    const c = this.audit.state.contacts.get(id);
    if (!c || !meta) {
      this.flag(`contact ${id} has a document but the replay has no such contact`);
      return;
    }
    meta.checked = this.mark;
    this.compare(`contact ${id}`, text, contactDocument(c, meta.position));
  }

  private compare(what: string, text: string, want: Record<string, unknown>): void {
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.flag(`${what}: its document is not JSON`);
      return;
    }
    // A contact's list written before the bound: held by its last ones, as the dispatcher reads it.
    const excluded = raw.excludedAgents;
    if (Array.isArray(excluded)) raw.excludedAgents = lastExcluded(excluded as string[]);
    if (!samePublic(raw, want)) this.flag(`${what} differs: ${differences(publicFields(raw), want)}`);
  }

  index(index: RoutingIndex): void {
    const state = this.audit.state;
    const byId = <T extends object>(xs: T[], id: (x: T) => string) =>
      xs.map((x) => [id(x), JSON.stringify(x)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const wantAvailable = [...state.agents.values()]
      .filter(canTakeWork)
      .flatMap((a) =>
        a.channelSince === undefined
          ? [{ agentId: a.id, since: a.availableSince ?? 0 }]
          : Object.entries(a.channelSince).map(([channel, since]) => ({ agentId: a.id, since, channel })),
      );
    const wantQueued = [...state.contacts.values()]
      .filter((c) => c.state === 'queued')
      .map((c) =>
        c.key !== undefined
          ? { contactId: c.id, key: c.key, channel: channelOf(c) }
          : { contactId: c.id, priority: c.priority, seq: c.seq, channel: channelOf(c) },
      );
    const seat = (x: { agentId: string; channel?: string }) =>
      x.channel === undefined ? x.agentId : `${x.agentId}|${x.channel}`;
    this.compareIndex('available agents', byId(index.available, seat), byId(wantAvailable, seat));
    this.compareIndex(
      'queued contacts',
      byId(index.queued, (x) => x.contactId),
      byId(wantQueued, (x) => x.contactId),
    );
  }

  /**
   * The agent ids' index (GET /agents's order: src/adapters/redis/agent-ids.ts) against the
   * replay's agents, while meta `agentIds` says it holds every agent (`ids` null: not marked, as a
   * workspace from before the index has it until its first listing makes it whole).
   */
  agentIds(ids: readonly string[] | null): void {
    if (ids === null) return;
    const agents = this.audit.state.agents;
    const listed = new Set(ids);
    const diffs = [
      ...[...agents.keys()].filter((id) => !listed.has(id)).map((id) => `${id} missing`),
      ...ids.filter((id) => !agents.has(id)).map((id) => `${id} should not be there (no such agent)`),
    ];
    if (diffs.length > 0)
      this.flag(
        `routing index, agent ids: ${diffs.slice(0, 5).join('; ')}${diffs.length > 5 ? `; and ${diffs.length - 5} more` : ''}`,
        'index',
      );
  }

  /**
   * The lifecycle timers in Redis (member → due ms) against those the replayed state needs
   * (`timersNeeded`). A needed timer the clock already fired is gone from the set: its command,
   * after the checkpoint, is in `fired` (`timer:<member>:<due>`). The step that makes a timer
   * moot takes it out (an offer's answer, a wrap-up's end, a contact that stops waiting), so one
   * the state does not need is reported.
   */
  timers(live: ReadonlyMap<string, number>, fired: ReadonlySet<string>): void {
    const diffs: string[] = [];
    const needed = timersNeeded(this.audit.state);
    for (const [member, due] of needed) {
      const got = live.get(member);
      if (got === due || (got === undefined && fired.has(`timer:${member}:${due}`))) continue;
      diffs.push(
        got === undefined
          ? `${member} (due ${iso(due)}) missing`
          : `${member} due at ${iso(got)}, the replay's ${iso(due)}`,
      );
    }
    for (const [member, due] of live)
      if (!needed.has(member) && REMOVED_WHEN_MOOT.has(member.charAt(0)))
        diffs.push(`${member} (due ${iso(due)}) should not be there: nothing the replay holds needs it`);
    if (diffs.length > 0)
      this.flag(
        `timers: ${diffs.slice(0, 5).join('; ')}${diffs.length > 5 ? `; and ${diffs.length - 5} more` : ''}`,
        'timer',
      );
  }

  /**
   * The counters of /stats (the stats hash as stored) against the events replayed: each is the
   * number of its events in the log, and the hash holds no other field.
   */
  counters(stored: Readonly<Record<string, string>>): void {
    const diffs: string[] = [];
    const fields = new Set([...Object.values(COUNTED_EVENTS), ...Object.keys(stored)]);
    for (const field of fields) {
      const got = Number(stored[field] ?? 0);
      const want = this.audit.counters.get(field) ?? 0;
      if (got !== want) diffs.push(`${field} ${stored[field] ?? 0}, the log ${want}`);
    }
    if (diffs.length > 0) this.flag(`counters (/stats): ${diffs.join('; ')}`);
  }

  /**
   * The routing's count of queued contacts not every agent of their queue may take (meta
   * `excluded`: turned down by some agent, or waiting for their preferred agents; absent is 0)
   * against the replayed queue. An agent who becomes available looks at such contacts again only
   * while it is above 0: one that fell short would leave them queued beside agents who may take them.
   */
  excluded(stored: string | null): void {
    let want = 0;
    for (const c of this.audit.state.contacts.values())
      if (c.state === 'queued' && ((c.excluded?.length ?? 0) > 0 || c.preferred !== undefined)) want++;
    const got = Number(stored ?? 0);
    if (got !== want)
      this.flag(
        `routing index: the count of queued contacts some agent turned down or that wait for their preferred agents (meta excluded) is ${stored ?? 'absent'}, the replay's ${want}`,
        'index',
      );
  }

  /**
   * The projector's own state in the meta hash (as stored: null when absent) against the replay:
   * the settings (`settings`, JSON; GET /settings, and what decides every later offer, wrap-up,
   * wait limit, routing order and choice of agent), compared with their defaults filled in as
   * readers fill them; and the arrival counter and tick (`seq`, `tick`), the next contact's place
   * in its queue: those of the last ContactQueued (absent before the first).
   */
  meta(settings: string | null, seq: string | null, tick: string | null): void {
    const state = this.audit.state;
    let stored: unknown;
    try {
      stored = settings === null ? {} : JSON.parse(settings);
    } catch {
      stored = undefined;
    }
    if (typeof stored !== 'object' || stored === null || Array.isArray(stored))
      this.flag('settings (meta settings) are not a JSON object');
    else {
      const got = withDefaults(stored as Partial<Settings>);
      const want = withDefaults(state.settings);
      if (!jsonEqual(got, want)) this.flag(`settings differ: ${differences(got, want)}`);
    }
    if (Number(seq ?? 0) !== state.seq || (seq !== null && !/^\d+$/.test(seq)))
      this.flag(`the arrival counter (meta seq) is ${seq ?? 'absent'}, the log's ${state.seq}`);
    const wantTick = state.tick === undefined ? null : String(state.tick);
    if (
      tick !== wantTick &&
      !(tick !== null && wantTick !== null && /^\d+$/.test(tick) && Number(tick) === state.tick)
    )
      this.flag(`the arrival tick (meta tick) is ${tick ?? 'absent'}, the log's ${wantTick ?? 'absent'}`);
  }

  /**
   * The Idempotency-Key records (key → `{position, commandId, ...}`) and the answers recorded for
   * repeats (key → `{status, body}`), as stored: a repeated request is told the command its record
   * names and answered the outcome recorded, so a record of a command applied (at or before the
   * checkpoint; later ones are appended and not applied yet) must name the last command the log has
   * with its key, and its answer, when recorded, must have that command's status, and the body its
   * outcome had in the outcome stream when the stream still holds it.
   */
  idempotency(records: ReadonlyMap<string, string>, answers: ReadonlyMap<string, string>): void {
    const checkpoint = this.audit.checkpoint;
    for (const [key, text] of records) {
      const name = `Idempotency-Key ${JSON.stringify(key)}`;
      const rec = parseObject(text);
      const position = rec?.position;
      const commandId = rec?.commandId;
      if (typeof position !== 'string' || typeof commandId !== 'string') {
        this.flag(`${name}: its record is not {position, commandId}`);
        continue;
      }
      const applied = checkpoint !== undefined && !positionBefore(checkpoint, position);
      const answer = answers.get(key);
      if (!applied) {
        if (answer !== undefined)
          this.flag(
            `${name}: an answer is recorded for a repeat, yet its record names command ${commandId} at ${position}, not applied yet`,
          );
        continue;
      }
      const last = this.audit.keyedCommand(key);
      const named = `its record names command ${commandId} at ${position}`;
      if (!last) {
        this.flag(`${name}: ${named}, no command in the log carries the key`);
        continue;
      }
      if (last.position !== position || last.commandId !== commandId) {
        this.flag(
          `${name}: ${named}, the log's last command with the key is ${last.commandId} at ${last.position}`,
        );
        continue;
      }
      // The projector records the outcome's own text (project-23.lua): the same text needs no parse.
      if (answer === undefined || answer === last.outcome) continue;
      const got = parseObject(answer);
      const of = `the outcome of command ${commandId} at ${position}`;
      if (!got || got.status !== last.status)
        this.flag(
          `${name}: the answer recorded for a repeat has status ${got ? String(got.status) : '(not {status, body})'}, ${of} has ${last.status}`,
        );
      else if (last.outcome !== undefined) {
        const want = parseObject(last.outcome);
        if (!jsonEqual(got.body, want?.body))
          this.flag(
            `${name}: the answer recorded for a repeat is not ${of}: ${differences(got.body, want?.body)}`,
          );
      }
    }
  }

  /** The mismatches found, with documents the replay has and Redis lacks. */
  violations(): Violation[] {
    for (const id of this.audit.state.agents.keys())
      if (!this.seenAgents.has(id)) this.flag(`agent ${id} has no document`);
    for (const [id, meta] of this.audit.contactMeta)
      if (meta.checked !== this.mark) this.flag(`contact ${id} has no document`);
    return this.found;
  }

  /** Two lists of [id, entry JSON] sorted by id: each difference named (the first few). */
  private compareIndex(
    what: string,
    got: readonly (readonly [string, string])[],
    want: readonly (readonly [string, string])[],
  ) {
    const log = new Map(got);
    const model = new Map(want);
    const diffs: string[] = [];
    for (const [id, entry] of want) {
      const g = log.get(id);
      if (g === undefined) diffs.push(`${id} missing (the replay has ${entry})`);
      else if (g !== entry) diffs.push(`${id}: index ${g}, the replay ${entry}`);
    }
    for (const [id, entry] of got) if (!model.has(id)) diffs.push(`${id} should not be there (${entry})`);
    if (got.length !== log.size) diffs.push(`${got.length - log.size} entries listed twice`);
    if (diffs.length > 0)
      this.flag(
        `routing index, ${what}: ${diffs.slice(0, 5).join('; ')}${diffs.length > 5 ? `; and ${diffs.length - 5} more` : ''}`,
        'index',
      );
  }
}

let checks = 0;

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Settings with every default filled in, the optional ones too (absent: no aging, longest-available). */
function withDefaults(s: Partial<Settings>): Record<string, unknown> {
  const all = settingsWithDefaults(s);
  return {
    ...all,
    priorityWeightMs: all.priorityWeightMs ?? null,
    agentSelection: all.agentSelection ?? 'longest-available',
  };
}

/** Timer kinds (the member's first letter) the steps take out when they become moot. */
const REMOVED_WHEN_MOOT = new Set(['o', 'w', 'm', 'f', 'r']);

/**
 * The lifecycle timers a workspace's state needs, member → due time (ms), named as the steps name
 * them (src/adapters/redis/lua/includes/documents.lua): an outstanding offer's expiry
 * (`o|<contact>|<offer>`), a running wrap-up's end (`w|<agent>|<wrap-up>`), and for a contact that
 * waits (queued or offered) its maximum wait (`m|<contact>|<arrival>`), the end of its preference
 * (`f|<contact>|<arrival>`) and its next routing step (`r|<contact>|<arrival>|<step>`).
 */
export function timersNeeded(ws: Workspace): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of ws.agents.values()) if (a.wrapUp) out.set(`w|${a.id}|${a.wrapUp.n}`, a.wrapUp.until);
  for (const c of ws.contacts.values()) {
    if (c.state !== 'queued' && c.state !== 'offered') continue;
    if (c.state === 'offered' && c.offer) out.set(`o|${c.id}|${c.offer.id}`, c.offer.expiresAt);
    if (c.deadline !== undefined) out.set(`m|${c.id}|${c.seq}`, c.deadline);
    if (c.preferred) out.set(`f|${c.id}|${c.seq}`, c.preferred.until);
    const step = c.step ?? 0;
    const next = c.steps?.[step];
    if (next) out.set(`r|${c.id}|${c.seq}|${step + 1}`, c.queuedAt + next.afterMs);
  }
  return out;
}

/**
 * `jsonEqual(publicDocument(raw), want)` without building the public document: the fields that
 * do not start with "_", and the attributes from `_attrs` when it is there.
 */
function samePublic(raw: Record<string, unknown>, want: Record<string, unknown>): boolean {
  // Skills with levels and steps are stored as routing strings: compare their public form.
  if (
    Array.isArray(raw.steps) ||
    (Array.isArray(raw.skills) && raw.skills.some((s) => String(s).includes('#')))
  )
    return jsonEqual(publicFields(raw), want);
  const attrs = raw._attrs;
  let n = 0;
  for (const k in raw) {
    if (k.charCodeAt(0) === 95 || (k === 'attributes' && typeof attrs === 'string')) continue;
    if (raw[k] === undefined) continue;
    n++;
    if (!jsonEqual(raw[k], want[k])) return false;
  }
  if (typeof attrs === 'string') {
    n++;
    try {
      if (!jsonEqual(JSON.parse(attrs), want.attributes)) return false;
    } catch {
      return false;
    }
  }
  for (const k in want) if (want[k] !== undefined) n--;
  return n === 0;
}
