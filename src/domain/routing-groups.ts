import {
  type Agent,
  type AgentSelection,
  type Contact,
  canTakeWork,
  channelOf,
  lastExcluded,
  type Workspace,
} from './model.ts';
import { type Assignment, occupancy, skillScore } from './routing.ts';
import { canonicalSkills } from './values.ts';

/**
 * Rule 1 (`nextAssignment` in routing.ts) kept incrementally, for replaying long logs.
 *
 * `nextAssignment` sorts every queued contact and scans every agent: O(contacts × agents) per
 * decision. Here available agents are grouped by their whole skill set (each group ordered by
 * available-since, then id) and queued contacts by their skill set (each group in routing order).
 * Every contact of a group has the same eligible agents, so the first contact with an eligible
 * agent is the best head among the groups that some superset agent group can serve, and its LAA
 * is the best head among those agent groups: a decision costs about the number of skill-set
 * pairs, not the number of contacts or agents.
 *
 * Channels: contacts are grouped by channel and skill set. An agent with one capacity number
 * takes any channel: it has one slot, in a group of no channel that serves the contact groups
 * of every channel. An agent with capacity per channel has one slot per channel it has room on,
 * each with that channel's available-since, in groups that serve their own channel only.
 *
 * The caller reports every change: `setAgent`/`removeAgent`, `setContact` (membership follows
 * `canTakeWork` and `state === 'queued'`). Removals are lazy (a stale slot is dropped when it
 * reaches the front), so each change costs O(log n).
 */
interface AgentSlot {
  /** The agent. */
  readonly id: string;
  /** The slot's key: the agent's id, or "<id>|<channel>" for one channel of its capacity. */
  readonly key: string;
  readonly since: number;
  /** Its share of capacity in use (`occupancy`): first in the order under least-occupied. */
  readonly occ: number;
}

interface ContactSlot {
  readonly id: string;
  readonly priority: number;
  readonly seq: number;
}

/**
 * A contact's place in routing order: priority and arrival; under priority aging one priority
 * (0) and its routing key in place of the arrival (`contactOrder`).
 */
function slotOf(c: Contact): ContactSlot {
  return c.key !== undefined
    ? { id: c.id, priority: 0, seq: c.key }
    : { id: c.id, priority: c.priority, seq: c.seq };
}

/**
 * LAA order: lowest available-since, ties by id in byte order (as `agentOrder`); under
 * least-occupied the lowest share in use first.
 */
function agentBefore(a: AgentSlot, b: AgentSlot, leastOccupied: boolean): boolean {
  if (leastOccupied && a.occ !== b.occ) return a.occ < b.occ;
  return a.since < b.since || (a.since === b.since && a.id < b.id);
}

/** Within a priority: arrival, or the routing key, ties (keys only) by id (as `contactOrder`). */
function seqBefore(a: ContactSlot, b: ContactSlot): boolean {
  return a.seq < b.seq || (a.seq === b.seq && a.id < b.id);
}

/** Routing order: priority descending, then arrival (as `contactOrder`). */
function contactBefore(a: ContactSlot, b: ContactSlot): boolean {
  return a.priority > b.priority || (a.priority === b.priority && seqBefore(a, b));
}

/** A queued contact kept apart (`RoutingGroups.apart`). */
interface Apart {
  readonly slot: ContactSlot;
  /** The group of its skill set and channel: its servers are the agents that may take it. */
  readonly group: ContactGroup;
  /** The agents it is not offered to (`lastExcluded`). */
  readonly excluded: ReadonlySet<string>;
  /** While it waits for them: the only agents that may take it. */
  readonly preferred: readonly string[] | undefined;
}

const longestAvailableFirst = (a: AgentSlot, b: AgentSlot): boolean => agentBefore(a, b, false);
const leastOccupiedFirst = (a: AgentSlot, b: AgentSlot): boolean => agentBefore(a, b, true);

/** Adds `x` to the binary heap `h` (its first item the one `before` puts first). */
function heapPush<T>(h: T[], x: T, before: (a: T, b: T) => boolean): void {
  h.push(x);
  for (let i = h.length - 1; i > 0; ) {
    const parent = (i - 1) >> 1;
    if (!before(h[i]!, h[parent]!)) break;
    [h[i], h[parent]] = [h[parent]!, h[i]!];
    i = parent;
  }
}

/** Removes the first item of the binary heap `h`, and returns it. */
function heapPop<T>(h: T[], before: (a: T, b: T) => boolean): T | undefined {
  const first = h[0];
  const last = h.pop();
  if (h.length === 0) return first;
  h[0] = last!;
  for (let i = 0; ; ) {
    const l = 2 * i + 1;
    let m = i;
    if (l < h.length && before(h[l]!, h[m]!)) m = l;
    if (l + 1 < h.length && before(h[l + 1]!, h[m]!)) m = l + 1;
    if (m === i) return first;
    [h[i], h[m]] = [h[m]!, h[i]!];
    i = m;
  }
}

class AgentGroup {
  readonly heap: AgentSlot[] = [];
  live = 0;
  /** Its heap's order: least-occupied or not (the workspace's selection). */
  leastOccupied = false;
  constructor(
    readonly name: string,
    readonly skills: ReadonlySet<string>,
    /** The one channel its agents take here; undefined: any channel. */
    readonly channel: string | undefined,
  ) {}

  push(slot: AgentSlot): void {
    heapPush(this.heap, slot, this.leastOccupied ? leastOccupiedFirst : longestAvailableFirst);
  }

  pop(): void {
    heapPop(this.heap, this.leastOccupied ? leastOccupiedFirst : longestAvailableFirst);
  }
}

/** One priority of a contact group: slots in arrival order, consumed from `head`. */
interface Bucket {
  items: ContactSlot[];
  head: number;
}

class ContactGroup {
  readonly buckets = new Map<number, Bucket>();
  /** The priorities present, highest first. */
  priorities: number[] = [];
  live = 0;
  /** The agent groups whose skills hold every skill of this group, on its channel. */
  readonly servers: AgentGroup[] = [];
  /** Most-skilled: each server's `skillScore` on this group's skills. */
  readonly scores = new Map<AgentGroup, number>();
  constructor(
    readonly name: string,
    readonly skills: readonly string[],
    readonly channel: string,
  ) {}

  insert(slot: ContactSlot): void {
    let b = this.buckets.get(slot.priority);
    if (!b) {
      b = { items: [], head: 0 };
      this.buckets.set(slot.priority, b);
      this.priorities = [...this.buckets.keys()].sort((x, y) => y - x);
    }
    const items = b.items;
    // Arrival numbers only grow, so a new contact goes last; a rebuilt index may come unsorted.
    if (items.length === b.head || seqBefore(items[items.length - 1]!, slot)) {
      items.push(slot);
      return;
    }
    let lo = b.head;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seqBefore(items[mid]!, slot)) lo = mid + 1;
      else hi = mid;
    }
    items.splice(lo, 0, slot);
  }
}

/** A skill set's name; skills arrive in canonical order (sorted, no repeats), so mostly a join. */
function nameOf(skills: readonly string[]): string {
  for (let i = 1; i < skills.length; i++)
    if (skills[i - 1]! >= skills[i]!) return canonicalSkills(skills).join(',');
  return skills.join(',');
}

export class RoutingGroups {
  private readonly agentGroups = new Map<string, AgentGroup>();
  private readonly contactGroups = new Map<string, ContactGroup>();
  /** By slot key. */
  private readonly agents = new Map<string, { group: AgentGroup; slot: AgentSlot }>();
  /** Each agent's slot keys. */
  private readonly seats = new Map<string, readonly string[]>();
  private readonly contacts = new Map<string, { group: ContactGroup; slot: ContactSlot }>();
  /** Contact groups with at least one queued contact. */
  private readonly queued = new Set<ContactGroup>();
  /**
   * Queued contacts some agents may no longer be offered (they rejected it or let it expire), or
   * that only their preferred agents may take while they wait for them: the agents of a group no
   * longer all serve them, so they are kept apart and looked at one by one. Each costs its own
   * agents (its preferred ones, looked up), or the slots ahead of its first agent left in each group
   * that serves it (`firstAllowed`), not the whole group.
   */
  private readonly apart = new Map<string, Apart>();

  /** The groups of a whole state (for a replay that starts from a snapshot, and for tests). */
  static of(ws: Workspace): RoutingGroups {
    const g = new RoutingGroups();
    g.setSelection(ws.settings.agentSelection);
    for (const a of ws.agents.values()) g.setAgent(a);
    for (const c of ws.contacts.values()) g.setContact(c);
    return g;
  }

  private selection: AgentSelection = 'longest-available';

  /**
   * The workspace's agent selection. The settings change to or from least-occupied only while no
   * agent can take work, so the heaps hold only stale slots then: they are emptied and reordered.
   */
  setSelection(selection: AgentSelection | undefined): void {
    const next = selection ?? 'longest-available';
    if (next === this.selection) return;
    this.selection = next;
    for (const g of this.agentGroups.values()) {
      g.leastOccupied = next === 'least-occupied';
      this.rebuild(g);
    }
  }

  setAgent(agent: Agent): void {
    if (!canTakeWork(agent)) {
      this.removeAgent(agent.id);
      return;
    }
    const skills = nameOf(agent.skills);
    const wanted: { key: string; channel: string | undefined; since: number }[] =
      typeof agent.capacity === 'number'
        ? [{ key: agent.id, channel: undefined, since: agent.availableSince ?? 0 }]
        : Object.entries(agent.channelSince ?? {}).map(([channel, since]) => ({
            key: `${agent.id}|${channel}`,
            channel,
            since,
          }));
    const occ = occupancy(agent);
    const keys = wanted.map((w) => w.key);
    for (const key of this.seats.get(agent.id) ?? []) if (!keys.includes(key)) this.dropSlot(key);
    this.seats.set(agent.id, keys);
    for (const w of wanted) {
      const name = `${w.channel ?? ''}|${skills}`;
      const cur = this.agents.get(w.key);
      if (cur && cur.group.name === name && cur.slot.since === w.since && cur.slot.occ === occ) continue;
      if (cur) this.dropSlot(w.key);
      const group = this.agentGroup(name, agent.skills, w.channel);
      const slot = { id: agent.id, key: w.key, since: w.since, occ };
      group.push(slot);
      group.live++;
      this.agents.set(w.key, { group, slot });
      // Stale slots of agents that left sink to the front and are dropped there; rebuild if they pile up.
      if (group.heap.length > 2 * group.live + 64) this.rebuild(group);
    }
  }

  removeAgent(id: string): void {
    for (const key of this.seats.get(id) ?? []) this.dropSlot(key);
    this.seats.delete(id);
  }

  private dropSlot(key: string): void {
    const cur = this.agents.get(key);
    if (!cur) return;
    this.agents.delete(key);
    cur.group.live--;
  }

  setContact(contact: Contact): void {
    const cur = this.contacts.get(contact.id);
    if (contact.state !== 'queued') {
      this.removeContact(contact.id);
      return;
    }
    if ((contact.excluded !== undefined && contact.excluded.length > 0) || contact.preferred !== undefined) {
      this.removeContact(contact.id);
      const channel = channelOf(contact);
      this.apart.set(contact.id, {
        slot: slotOf(contact),
        group: this.contactGroup(`${channel}|${nameOf(contact.skills)}`, contact.skills, channel),
        excluded: new Set(lastExcluded(contact.excluded)),
        preferred: contact.preferred?.agents,
      });
      return;
    }
    this.apart.delete(contact.id);
    const channel = channelOf(contact);
    const name = `${channel}|${nameOf(contact.skills)}`;
    const slot = slotOf(contact);
    if (cur && cur.group.name === name && cur.slot.priority === slot.priority && cur.slot.seq === slot.seq)
      return;
    if (cur) this.removeContact(contact.id);
    const group = this.contactGroup(name, contact.skills, channel);
    group.insert(slot);
    if (group.live++ === 0) this.queued.add(group);
    this.contacts.set(contact.id, { group, slot });
  }

  removeContact(id: string): void {
    this.apart.delete(id);
    const cur = this.contacts.get(id);
    if (!cur) return;
    this.contacts.delete(id);
    if (--cur.group.live === 0) this.queued.delete(cur.group);
  }

  /** Rule 1's next decision, as `nextAssignment` gives it; undefined when no pair is due. */
  next(): Assignment | undefined {
    let best: ContactSlot | undefined;
    let bestAgent: AgentSlot | undefined;
    for (const group of this.queued) {
      const head = this.contactHead(group);
      if (!head || (best && !contactBefore(head, best))) continue;
      let laa: AgentSlot | undefined;
      let laaScore = 0;
      for (const server of group.servers) {
        const top = this.agentHead(server);
        const score = this.scoreOf(group, server);
        if (top && (!laa || this.beats(top, score, laa, laaScore))) [laa, laaScore] = [top, score];
      }
      if (laa) {
        best = head;
        bestAgent = laa;
      }
    }
    for (const { slot, group, excluded, preferred } of this.apart.values()) {
      if (best && !contactBefore(slot, best)) continue;
      let laa: AgentSlot | undefined;
      let laaScore = 0;
      if (preferred) {
        // Only its preferred agents (at most MAX_PREFERRED): their own slots, looked up.
        for (const id of preferred) {
          if (excluded.has(id)) continue;
          for (const key of this.seats.get(id) ?? []) {
            const cur = this.agents.get(key);
            if (!cur || !serves(cur.group, group)) continue;
            const score = this.scoreOf(group, cur.group);
            if (!laa || this.beats(cur.slot, score, laa, laaScore)) [laa, laaScore] = [cur.slot, score];
          }
        }
      } else {
        for (const server of group.servers) {
          const top = this.firstAllowed(server, excluded);
          const score = this.scoreOf(group, server);
          if (top && (!laa || this.beats(top, score, laa, laaScore))) [laa, laaScore] = [top, score];
        }
      }
      if (laa) {
        best = slot;
        bestAgent = laa;
      }
    }
    return best && bestAgent ? { contactId: best.id, agentId: bestAgent.id } : undefined;
  }

  /** Most-skilled: an agent group's skill score on a contact group's skills (0 otherwise). */
  private scoreOf(contacts: ContactGroup, agents: AgentGroup): number {
    if (this.selection !== 'most-skilled') return 0;
    let score = contacts.scores.get(agents);
    if (score === undefined) {
      score = skillScore([...agents.skills], contacts.skills);
      contacts.scores.set(agents, score);
    }
    return score;
  }

  /** Whether agent `a` (with skill score `as`) comes before `b` (score `bs`) for a contact. */
  private beats(a: AgentSlot, as: number, b: AgentSlot, bs: number): boolean {
    if (as !== bs) return as > bs;
    return agentBefore(a, b, this.selection === 'least-occupied');
  }

  private agentGroup(name: string, skills: readonly string[], channel: string | undefined): AgentGroup {
    let g = this.agentGroups.get(name);
    if (g) return g;
    g = new AgentGroup(name, new Set(skills), channel);
    g.leastOccupied = this.selection === 'least-occupied';
    this.agentGroups.set(name, g);
    for (const cg of this.contactGroups.values()) if (serves(g, cg)) cg.servers.push(g);
    return g;
  }

  private contactGroup(name: string, skills: readonly string[], channel: string): ContactGroup {
    let g = this.contactGroups.get(name);
    if (g) return g;
    g = new ContactGroup(name, canonicalSkills(skills), channel);
    this.contactGroups.set(name, g);
    for (const ag of this.agentGroups.values()) if (serves(ag, g)) g.servers.push(ag);
    return g;
  }

  private agentHead(g: AgentGroup): AgentSlot | undefined {
    for (;;) {
      const top = g.heap[0];
      if (!top || this.agents.get(top.key)?.slot === top) return top;
      g.pop();
    }
  }

  /**
   * A group's first live slot in its order whose agent is not in `excluded`: the heap walked best
   * first from its root, so it looks at the slots ahead of that one (at most the excluded agents
   * and stale slots) and their children, not the whole group.
   */
  private firstAllowed(g: AgentGroup, excluded: ReadonlySet<string>): AgentSlot | undefined {
    const h = g.heap;
    if (h.length === 0) return undefined;
    const before = (i: number, j: number) => agentBefore(h[i]!, h[j]!, g.leastOccupied);
    // A binary heap of heap indices, ordered as the slots they hold.
    const open: number[] = [0];
    while (open.length > 0) {
      const i = heapPop(open, before)!;
      const s = h[i]!;
      if (this.agents.get(s.key)?.slot === s && !excluded.has(s.id)) return s;
      for (const c of [2 * i + 1, 2 * i + 2]) if (c < h.length) heapPush(open, c, before);
    }
    return undefined;
  }

  private contactHead(g: ContactGroup): ContactSlot | undefined {
    for (const p of g.priorities) {
      const b = g.buckets.get(p)!;
      while (b.head < b.items.length && this.contacts.get(b.items[b.head]!.id)?.slot !== b.items[b.head])
        b.head++;
      if (b.head > 1024 && b.head * 2 > b.items.length) {
        b.items = b.items.slice(b.head);
        b.head = 0;
      }
      if (b.head < b.items.length) return b.items[b.head];
    }
    return undefined;
  }

  private rebuild(g: AgentGroup): void {
    const live = g.heap.filter((s) => this.agents.get(s.key)?.slot === s);
    g.heap.length = 0;
    for (const s of live) g.push(s);
  }
}

function serves(agents: AgentGroup, contacts: ContactGroup): boolean {
  if (agents.channel !== undefined && agents.channel !== contacts.channel) return false;
  return contacts.skills.every((s) => agents.skills.has(s));
}
