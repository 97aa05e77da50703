/**
 * Historical statistics in 15-minute intervals, computed from the event log alone (a projection of
 * it): the same events always give the same intervals, so they can be rebuilt from history, the
 * archive included, at any time. Pure: `IntervalStats` is fed events in log order. What each event
 * adds is one rule, `intervalEffect`, which the live projection (src/projections/intervals.ts)
 * follows too: it only adds the tallies up in Redis.
 */

/** An interval's length, ms. */
export const INTERVAL_MS = 15 * 60_000;

/**
 * How long the live projection keeps an interval's tallies after its end (35 days: a month of
 * reports and its reconciliation); an older range is computed from the log.
 */
export const INTERVALS_KEPT_MS = 35 * 24 * 3600_000;

/** What an interval counts: its contacts' events. */
export interface IntervalCounts {
  /** ContactQueued. */
  queued: number;
  /** First decisions (AssignmentMade of a contact's first offer, or its assignment). */
  assigned: number;
  abandoned: number;
  expired: number;
  completed: number;
  transferred: number;
}

export interface IntervalFigures extends IntervalCounts {
  /** Mean wait to the first decision, ms (null: none). */
  meanWaitMs: number | null;
  /** Share of first decisions made within the threshold of arrival (null: none). */
  serviceLevel: number | null;
  /** Mean time from assignment to completion, ms (null: none completed). */
  meanHandleMs: number | null;
}

export interface Interval extends IntervalFigures {
  /** ISO times: [from, to). */
  readonly from: string;
  readonly to: string;
  /** The same figures per queue: "<channel> <skills as JSON>". */
  readonly queues: Record<string, IntervalFigures>;
}

/**
 * What an interval holds before its figures are made: counts and sums only, so tallies of the same
 * interval add up (the live projection keeps them in Redis and only adds to them).
 */
export interface Tally extends IntervalCounts {
  waitSum: number;
  within: number;
  handleSum: number;
}

export const TALLY_FIELDS: readonly (keyof Tally)[] = [
  'queued',
  'assigned',
  'abandoned',
  'expired',
  'completed',
  'transferred',
  'waitSum',
  'within',
  'handleSum',
];

export const emptyTally = (): Tally => ({
  queued: 0,
  assigned: 0,
  abandoned: 0,
  expired: 0,
  completed: 0,
  transferred: 0,
  waitSum: 0,
  within: 0,
  handleSum: 0,
});

export function figures(t: Tally): IntervalFigures {
  return {
    queued: t.queued,
    assigned: t.assigned,
    abandoned: t.abandoned,
    expired: t.expired,
    completed: t.completed,
    transferred: t.transferred,
    meanWaitMs: t.assigned > 0 ? Math.round(t.waitSum / t.assigned) : null,
    serviceLevel: t.assigned > 0 ? Math.round((t.within / t.assigned) * 1000) / 1000 : null,
    meanHandleMs: t.completed > 0 ? Math.round(t.handleSum / t.completed) : null,
  };
}

/** One interval's tallies: the workspace's and each queue's. */
export interface IntervalTallies {
  readonly all: Tally;
  readonly queues: ReadonlyMap<string, Tally>;
}

/**
 * A live interval hash (`<tally>`, `<tally> <queue>` → integer, as the live projection keeps it) as
 * the workspace's and each queue's tallies; fields of no tally are left out.
 */
export function talliesOfHash(
  hash: Record<string, string>,
): IntervalTallies & { queues: Map<string, Tally> } {
  const all = emptyTally();
  const queues = new Map<string, Tally>();
  for (const [field, value] of Object.entries(hash)) {
    const space = field.indexOf(' ');
    const name = (space < 0 ? field : field.slice(0, space)) as keyof Tally;
    if (!(name in all)) continue;
    if (space < 0) {
      all[name] = Number(value);
      continue;
    }
    const queue = field.slice(space + 1);
    let t = queues.get(queue);
    if (!t) {
      t = emptyTally();
      queues.set(queue, t);
    }
    t[name] = Number(value);
  }
  return { all, queues };
}

/** The start of the interval holding `ms`. */
export const intervalStart = (ms: number): number => Math.floor(ms / INTERVAL_MS) * INTERVAL_MS;

/**
 * The intervals from `from` to `to` (ms, `from` rounded down to an interval bound), each listed even
 * when empty, from the tallies `tallies` gives by interval start. A `to` inside an interval ends the
 * last one there: its tallies count the events before `to` only, and its `to` says so.
 */
export function intervalsOf(
  from: number,
  to: number,
  tallies: (start: number) => IntervalTallies | undefined,
): Interval[] {
  const out: Interval[] = [];
  for (let start = intervalStart(from); start < to; start += INTERVAL_MS) {
    const i = tallies(start);
    const queues: Record<string, IntervalFigures> = {};
    for (const [q, t] of [...(i?.queues ?? new Map<string, Tally>())].sort(([a], [b]) => (a < b ? -1 : 1)))
      queues[q] = figures(t);
    out.push({
      from: new Date(start).toISOString(),
      to: new Date(Math.min(start + INTERVAL_MS, to)).toISOString(),
      ...figures(i?.all ?? emptyTally()),
      queues,
    });
  }
  return out;
}

/** An event as the log holds it: its position's time (ms), type and data. */
export interface LoggedEvent {
  readonly ms: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

/**
 * An event stream entry's fields as the log holds them (its `type`, and its envelope as JSON in
 * `event`), as a LoggedEvent; undefined for an entry that is not an event.
 */
export function loggedEventOf(
  position: string,
  type: string | undefined,
  envelope: string | undefined,
): LoggedEvent | undefined {
  if (!type || envelope === undefined) return undefined;
  try {
    const data = (JSON.parse(envelope) as { data?: Record<string, unknown> }).data ?? {};
    return { ms: Number(position.slice(0, position.indexOf('-'))), type, data };
  } catch {
    return undefined;
  }
}

/**
 * What one event changes in the intervals: what it adds to the tally of its interval (the
 * workspace's, and its contact's queue's when known), and what it teaches about the queue each
 * contact is in. The one rule both readings of the log follow (IntervalStats, in memory, and the
 * live projection, src/projections/intervals.ts, in Redis).
 */
export interface IntervalEffect {
  /** What the event adds, to the interval starting at `start`, and to `queue`'s when known. */
  readonly count?: {
    readonly start: number;
    readonly add: Partial<Tally>;
    readonly queue: string | undefined;
  };
  /** The contact's queue from this event on, and whether its first decision has been counted. */
  readonly learn?: { readonly contactId: string } & ContactPlace;
  /** Contacts nothing more will be counted for (they left or were forgotten): their queue goes. */
  readonly forget?: readonly string[];
}

/**
 * What the intervals keep of a contact that may still count: the queue it counts under, and whether
 * its first decision was counted (`decided`): a contact decided, transferred and decided again, or
 * offered after a direct assignment, has no second first decision.
 */
export interface ContactPlace {
  /** '' when not known (moved before the queue it left was known: `movedTo`). */
  readonly queue: string;
  readonly decided: boolean;
}

/**
 * A ContactPlace as one string (the live projection keeps it in a hash): its queue, after a "+"
 * once decided. A queue starts with its channel, which never starts with "+"; a queue kept before
 * `decided` was kept reads as not decided.
 */
export const placeText = (p: ContactPlace): string => (p.decided ? `+${p.queue}` : p.queue);
export const placeOfText = (text: string): ContactPlace =>
  text.startsWith('+') ? { queue: text.slice(1), decided: true } : { queue: text, decided: false };

const queueName = (skills: unknown, channel: unknown) =>
  `${typeof channel === 'string' ? channel : 'voice'} ${JSON.stringify(skills ?? [])}`;

/**
 * The queue a contact moves to (a transfer, a step) on the channel of the queue it was in; '' (no
 * queue) when that one is not known (a contact queued before what the log's reading looks back at):
 * the events of a move do not give the channel, and a guessed one would count a chat contact under
 * a voice queue. A decision (AssignmentMade, which gives it) teaches its queue again.
 */
const movedTo = (skills: unknown, before: string | undefined): string =>
  before ? queueName(skills, before.slice(0, before.indexOf(' '))) : '';

/**
 * A wait or handle time as the log gives it (the intervals' sums, the wait histogram): none unless
 * a number no larger, either way, than the event's own time (no wait that ended at it began before
 * 1970). An entry something else wrote with `1e20` would be summed by Redis's integer increments,
 * which refuse it: the live projection would stop on its batch, the histogram's fold at every
 * scrape. A real one a little below 0 (the clock stepped back between the arrival and the
 * decision: a failover to a replica behind) is one, as it always was.
 */
export function durationOf(v: unknown, ms: number): number | undefined {
  return typeof v === 'number' && Math.abs(v) <= ms ? v : undefined;
}

/** `durationOf`, none counted as 0 (the intervals' sums). */
export const durationAt = (v: unknown, ms: number): number => durationOf(v, ms) ?? 0;

/**
 * The effect of `e`, given where each contact is so far (`placeOf`: its queue, and whether its
 * first decision was counted). A contact is counted under the queue it was queued (or transferred,
 * or stepped) to last; a decision under the queue it was made for; a transfer under the queue it
 * leaves. A contact has one first decision: its first offer or direct assignment, never one after
 * it was decided (a later offer, or a decision after a transfer, whatever the offer setting).
 */
export function intervalEffect(
  e: LoggedEvent,
  placeOf: (contactId: string) => ContactPlace | undefined,
  serviceLevelMs: number,
): IntervalEffect {
  const d = e.data;
  const contactId = typeof d.contactId === 'string' ? d.contactId : undefined;
  // '' is a contact whose queue is not known (movedTo): counted in the workspace's figures only.
  const queueOf = (id: string) => placeOf(id)?.queue || undefined;
  const start = intervalStart(e.ms);
  switch (e.type) {
    case 'ContactQueued': {
      const id = typeof d.id === 'string' ? d.id : undefined;
      if (!id) return {};
      const queue = queueName(d.skills, d.channel);
      return { learn: { contactId: id, queue, decided: false }, count: { start, add: { queued: 1 }, queue } };
    }
    case 'AssignmentMade': {
      if (!contactId) return {};
      const offer = d.offer as { id?: number } | undefined;
      if (offer && offer.id !== 1) return {}; // a later offer of the same contact: not its first decision
      if (placeOf(contactId)?.decided) return {}; // decided before (then transferred): not its first
      const queue = queueName(d.skills, d.channel);
      const waited = durationAt(d.waitedMs, e.ms);
      return {
        learn: { contactId, queue, decided: true },
        count: {
          start,
          add: { assigned: 1, waitSum: waited, within: waited <= serviceLevelMs ? 1 : 0 },
          queue,
        },
      };
    }
    case 'ContactAbandoned':
    case 'ContactExpired':
    case 'ContactCompleted': {
      if (!contactId) return {};
      const add: Partial<Tally> =
        e.type === 'ContactAbandoned'
          ? { abandoned: 1 }
          : e.type === 'ContactExpired'
            ? { expired: 1 }
            : { completed: 1, handleSum: durationAt(d.handledMs, e.ms) };
      // Each ends the contact: no later event of it counts (its id is taken until it is forgotten).
      return { count: { start, add, queue: queueOf(contactId) }, forget: [contactId] };
    }
    case 'ContactTransferred': {
      if (!contactId) return {};
      const before = queueOf(contactId);
      // Only an assigned contact is transferred: it was decided.
      return {
        count: { start, add: { transferred: 1 }, queue: before },
        learn: { contactId, queue: movedTo(d.skills, before), decided: true },
      };
    }
    case 'ContactStepped': {
      if (!contactId) return {};
      const before = placeOf(contactId);
      return {
        learn: {
          contactId,
          queue: movedTo(d.skills, before?.queue || undefined),
          decided: before?.decided ?? false,
        },
      };
    }
    case 'ContactsForgotten':
      // A list that is none (an entry something else wrote) forgets nothing: `.filter` of it threw.
      return {
        forget: Array.isArray(d.contactIds)
          ? d.contactIds.filter((id): id is string => typeof id === 'string')
          : [],
      };
    default:
      return {};
  }
}

/** Adds `add` to `t`. */
export function addTo(t: Tally, add: Partial<Tally>): void {
  for (const f of TALLY_FIELDS) t[f] += add[f] ?? 0;
}

export class IntervalStats {
  private readonly intervals = new Map<number, { all: Tally; queues: Map<string, Tally> }>();
  /** Each contact's queue, as it was queued (or transferred, or stepped) last, and whether it was decided. */
  private readonly placeOf = new Map<string, ContactPlace>();

  constructor(private readonly serviceLevelMs: number) {}

  /**
   * An event of the log, in order. Events before the range asked for only teach where each
   * contact is (`count: false`): its queue, so a contact's completion is counted under its queue,
   * and whether it was decided, so a decision after its transfer is not counted as a first one.
   */
  add(e: LoggedEvent, count = true): void {
    const effect = intervalEffect(e, (id) => this.placeOf.get(id), this.serviceLevelMs);
    if (count && effect.count) {
      const { start, add, queue } = effect.count;
      let i = this.intervals.get(start);
      if (!i) {
        i = { all: emptyTally(), queues: new Map() };
        this.intervals.set(start, i);
      }
      addTo(i.all, add);
      if (queue !== undefined) {
        let t = i.queues.get(queue);
        if (!t) {
          t = emptyTally();
          i.queues.set(queue, t);
        }
        addTo(t, add);
      }
    }
    for (const id of effect.forget ?? []) this.placeOf.delete(id);
    if (effect.learn) {
      const { contactId, queue, decided } = effect.learn;
      this.placeOf.set(contactId, { queue, decided });
    }
  }

  /** The intervals from `from` (rounded down to an interval bound) to `to` (ms), each listed even when empty. */
  result(from: number, to: number): Interval[] {
    return intervalsOf(from, to, (start) => this.intervals.get(start));
  }

  /** The tallies of the interval starting at `start` (undefined: nothing counted in it). */
  tallies(start: number): IntervalTallies | undefined {
    return this.intervals.get(start);
  }

  /** The starts of the intervals something was counted in, in order. */
  starts(): number[] {
    return [...this.intervals.keys()].sort((a, b) => a - b);
  }
}
