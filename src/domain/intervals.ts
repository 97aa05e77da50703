/**
 * Historical statistics in 15-minute intervals, computed from the event log alone (a projection of
 * it): the same events always give the same intervals, so they can be rebuilt from history, the
 * archive included, at any time. Pure: `IntervalStats` is fed events in log order.
 */

/** An interval's length, ms. */
export const INTERVAL_MS = 15 * 60_000;

export interface IntervalFigures {
  /** ContactQueued. */
  queued: number;
  /** First decisions (AssignmentMade of a contact's first offer, or its assignment). */
  assigned: number;
  abandoned: number;
  expired: number;
  completed: number;
  transferred: number;
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

interface Tally {
  queued: number;
  assigned: number;
  abandoned: number;
  expired: number;
  completed: number;
  transferred: number;
  waitSum: number;
  within: number;
  handleSum: number;
}

const empty = (): Tally => ({
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

function figures(t: Tally): IntervalFigures {
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

/** An event as the log holds it: its position's time (ms), type and data. */
export interface LoggedEvent {
  readonly ms: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export class IntervalStats {
  private readonly intervals = new Map<number, { all: Tally; queues: Map<string, Tally> }>();
  /** Each contact's queue, as it was queued (or transferred, or stepped) last. */
  private readonly queueOf = new Map<string, string>();

  constructor(private readonly serviceLevelMs: number) {}

  /**
   * An event of the log, in order. Events before the range asked for only teach which queue each
   * contact is in (`count: false`), so a contact's completion is counted under its queue.
   */
  add(e: LoggedEvent, count = true): void {
    if (!count) {
      this.learn(e);
      return;
    }
    const d = e.data;
    const contactId = typeof d.contactId === 'string' ? d.contactId : undefined;
    const queue = (skills: unknown, channel: unknown) =>
      `${typeof channel === 'string' ? channel : 'voice'} ${JSON.stringify(skills ?? [])}`;
    switch (e.type) {
      case 'ContactQueued': {
        const id = typeof d.id === 'string' ? d.id : undefined;
        if (!id) return;
        this.queueOf.set(id, queue(d.skills, d.channel));
        this.count(e.ms, id, (t) => t.queued++);
        return;
      }
      case 'AssignmentMade': {
        if (!contactId) return;
        const offer = d.offer as { id?: number } | undefined;
        if (offer && offer.id !== 1) return; // a later offer of the same contact: not its first decision
        this.queueOf.set(contactId, queue(d.skills, d.channel));
        const waited = typeof d.waitedMs === 'number' ? d.waitedMs : 0;
        this.count(e.ms, contactId, (t) => {
          t.assigned++;
          t.waitSum += waited;
          if (waited <= this.serviceLevelMs) t.within++;
        });
        return;
      }
      case 'ContactAbandoned':
        if (contactId) this.count(e.ms, contactId, (t) => t.abandoned++);
        return;
      case 'ContactExpired':
        if (contactId) this.count(e.ms, contactId, (t) => t.expired++);
        return;
      case 'ContactCompleted': {
        const handled = typeof d.handledMs === 'number' ? d.handledMs : 0;
        if (contactId)
          this.count(e.ms, contactId, (t) => {
            t.completed++;
            t.handleSum += handled;
          });
        return;
      }
      case 'ContactTransferred':
        if (!contactId) return;
        this.count(e.ms, contactId, (t) => t.transferred++);
        this.queueOf.set(contactId, queue(d.skills, this.channelOf(contactId)));
        return;
      case 'ContactStepped':
        if (contactId) this.queueOf.set(contactId, queue(d.skills, this.channelOf(contactId)));
        return;
      case 'ContactsForgotten':
        for (const id of (d.contactIds as string[] | undefined) ?? []) this.queueOf.delete(id);
        return;
    }
  }

  /** The intervals from `from` to `to` (ms, rounded out to interval bounds), each listed even when empty. */
  result(from: number, to: number): Interval[] {
    const out: Interval[] = [];
    for (let start = Math.floor(from / INTERVAL_MS) * INTERVAL_MS; start < to; start += INTERVAL_MS) {
      const i = this.intervals.get(start);
      const queues: Record<string, IntervalFigures> = {};
      for (const [q, t] of [...(i?.queues ?? new Map<string, Tally>())].sort(([a], [b]) => (a < b ? -1 : 1)))
        queues[q] = figures(t);
      out.push({
        from: new Date(start).toISOString(),
        to: new Date(start + INTERVAL_MS).toISOString(),
        ...figures(i?.all ?? empty()),
        queues,
      });
    }
    return out;
  }

  private learn(e: LoggedEvent): void {
    const d = e.data;
    if (e.type === 'ContactQueued' && typeof d.id === 'string')
      this.queueOf.set(
        d.id,
        `${typeof d.channel === 'string' ? d.channel : 'voice'} ${JSON.stringify(d.skills ?? [])}`,
      );
    else if (
      (e.type === 'ContactTransferred' || e.type === 'ContactStepped') &&
      typeof d.contactId === 'string'
    )
      this.queueOf.set(d.contactId, `${this.channelOf(d.contactId)} ${JSON.stringify(d.skills ?? [])}`);
  }

  private channelOf(contactId: string): string {
    const q = this.queueOf.get(contactId);
    return q ? q.slice(0, q.indexOf(' ')) : 'voice';
  }

  private count(ms: number, contactId: string, f: (t: Tally) => void): void {
    const start = Math.floor(ms / INTERVAL_MS) * INTERVAL_MS;
    let i = this.intervals.get(start);
    if (!i) {
      i = { all: empty(), queues: new Map() };
      this.intervals.set(start, i);
    }
    f(i.all);
    const q = this.queueOf.get(contactId);
    if (q === undefined) return;
    let t = i.queues.get(q);
    if (!t) {
      t = empty();
      i.queues.set(q, t);
    }
    f(t);
  }
}
