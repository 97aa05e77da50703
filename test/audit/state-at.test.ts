/**
 * GET /v1/workspaces/{ws}/state?at=<event position>: the state right after an event, computed
 * from the log by the domain model (src/audit/state-at.ts). During a simulator-like run (agents
 * registering and changing state, contacts queued, offered and assigned by the real dispatcher,
 * offers accepted, rejected and let expire, wrap-ups, contacts completed, abandoned and expired
 * past their maximum wait, with the real projector and the dispatcher's clock), the live state is sampled atomically several times
 * (one MULTI: the documents and the last event); asked later for each sampled position, the
 * route answers exactly the documents Redis held then. At rest, the state at the last event is
 * the live state and the rebuild finds the log clean; a bad `at` is a 400 naming it, and a
 * position after the last event the documented position-ahead problem.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { publicDocument } from '../../src/adapters/redis/projection-reads.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import type { Command } from '../../src/domain/commands.ts';
import { comparePositions } from '../../src/domain/values.ts';
import { type ArchivingSwitchboard, archivingSwitchboard } from '../support/archive-log.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'state-at';
const SKILLS = ['English', 'Spanish', 'Billing', 'Support'];
let sb: ArchivingSwitchboard | undefined;
let main: Running;

type Doc = Record<string, unknown> & { id: string };
interface Sample {
  readonly position: string;
  readonly agents: Doc[];
  readonly contacts: Doc[];
}

const byId = (a: Doc, b: Doc) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The live state in one MULTI: every document and the last event (the documents' cut). */
async function sample(r: RedisClient): Promise<Sample> {
  const k = workspaceKeys(WS);
  const res = await r
    .multi()
    .hgetall(k.agents)
    .hgetall(k.contacts)
    .xrevrange(k.events, '+', '-', 'COUNT', 1)
    .exec();
  if (!res) throw new Error('aborted');
  const docs = (h: unknown) =>
    Object.values(h as Record<string, string>)
      .map((t) => publicDocument<Doc>(t)!)
      .sort(byId);
  return {
    position: (res[2]![1] as StreamEntry[])[0]![0],
    agents: docs(res[0]![1]),
    contacts: docs(res[1]![1]),
  };
}

async function stateAt(at: string) {
  return main.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/state?at=${encodeURIComponent(at)}` });
}

beforeAll(async () => {
  sb = await archivingSwitchboard('sb-state-at-', { ROLES: 'api,projector,dispatcher', WORKSPACES: WS });
  main = sb.main;
}, 30_000);

afterAll(async () => sb?.stop());

describe('GET /state?at=', () => {
  const samples: Sample[] = [];
  let rest: Sample;

  it('equals the live state sampled during a run, at each sampled position', async () => {
    const r = main.redis;
    const rng = seededRandom(11);
    const skills = () => {
      const s = SKILLS.filter(() => rng() < 0.4).slice(0, 2);
      return s.length > 0 ? s : ['English'];
    };
    const send = (commands: Command[]) =>
      Promise.all(commands.map((command) => appendCommand(r, { workspace: WS, command })));
    await send(
      Array.from({ length: 10 }, (_, i) => ({
        type: 'RegisterAgent' as const,
        agentId: `agent-${i}`,
        skills: skills(),
        capacity: 1 + (i % 2),
      })),
    );
    let contact = 0;
    const hasOffer = (s: Sample) => s.contacts.some((c) => c.state === 'offered');
    for (let round = 0; round < 40; round++) {
      const live = await sample(r).catch(() => undefined);
      // An offer lasts 150 ms at most: on a loaded machine the periodic samples below may all
      // fall between offers, so the first round-start sample that holds one is kept as well.
      if (live && hasOffer(live) && !samples.some(hasOffer)) samples.push(live);
      const commands: Command[] = [];
      // From round 8 on, contacts are offered first, agents wrap up, and contacts wait at most 1.5 s.
      if (round === 8)
        commands.push({
          type: 'ChangeSettings',
          offerTimeoutMs: 150,
          wrapUpMs: 30,
          missedOfferPresence: 'away',
          maxWaitMs: 1500,
        });
      for (let i = 0; i < 10; i++)
        if (rng() < 0.3)
          commands.push({
            type: 'ChangeAgentState',
            agentId: `agent-${i}`,
            state: rng() < 0.75 ? 'available' : rng() < 0.5 ? 'away' : 'offline',
          });
      for (let i = 0; i < 3; i++)
        commands.push({
          type: 'QueueContact',
          contactId: `contact-${contact++}`,
          skills: skills(),
          priority: Math.floor(rng() * 4),
        });
      for (const c of live?.contacts ?? []) {
        const agentId = c.agentId as string;
        if (c.state === 'offered') {
          const dice = rng();
          if (dice < 0.6) commands.push({ type: 'AcceptOffer', contactId: c.id, agentId });
          else if (dice < 0.8) commands.push({ type: 'RejectOffer', contactId: c.id, agentId });
          // else: left to expire
        } else if (c.state === 'assigned' && rng() < 0.5)
          commands.push({ type: 'CompleteContact', contactId: c.id });
        else if (c.state === 'queued' && rng() < 0.08)
          commands.push({ type: 'AbandonContact', contactId: c.id });
      }
      if (rng() < 0.1)
        commands.push({ type: 'UpdateAgent', agentId: `agent-${Math.floor(rng() * 10)}`, skills: skills() });
      await send(commands);
      // Sampled while the projector and the dispatcher are at work.
      if (round % 5 === 2) samples.push(await sample(r));
      await new Promise((resolve) => setTimeout(resolve, Math.floor(rng() * 15)));
    }
    // The 8 periodic samples, and perhaps the one holding an offer.
    expect(samples.length).toBeGreaterThanOrEqual(8);
    expect(samples.length).toBeLessThanOrEqual(9);
    // The samples saw contacts in the states of the lifecycle (expired ones at rest, below).
    const states = new Set(samples.flatMap((s) => s.contacts.map((c) => c.state)));
    for (const state of ['abandoned', 'assigned', 'completed', 'queued', 'offered'])
      expect(states).toContain(state);

    for (const s of samples) {
      const res = await stateAt(s.position);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body.position).toBe(s.position);
      expect(body.workspace).toBe(WS);
      expect(body.at).toBe(s.position);
      expect(body.snapshot).toBeNull();
      expect(body.agents).toEqual(s.agents);
      expect(body.contacts).toEqual(s.contacts);
      // The queue: the queued contacts, priority first, then arrival.
      const queued = s.contacts.filter((c) => c.state === 'queued');
      expect(body.queue.map((q: { contactId: string }) => q.contactId).sort()).toEqual(
        queued.map((c) => c.id).sort(),
      );
      for (const q of body.queue) {
        const c = queued.find((x) => x.id === q.contactId)!;
        expect(q).toEqual({ contactId: c.id, skills: c.skills, priority: c.priority, queuedAt: c.queuedAt });
      }
      for (let i = 1; i < body.queue.length; i++) {
        const [p, q] = [body.queue[i - 1], body.queue[i]];
        expect(p.priority > q.priority || (p.priority === q.priority && p.queuedAt <= q.queuedAt)).toBe(true);
      }
    }
  }, 40_000);

  it('at rest: the state at the last event is the live state, and the rebuild finds the log clean', async () => {
    const r = main.redis;
    const k = workspaceKeys(WS);
    // At rest: every command applied, and nothing more appended or decided for a while (the
    // clock's timers, offers and wrap-ups, and the contacts' maximum wait, have all fired).
    const tip = async () => {
      const res = await r
        .multi()
        .xrevrange(k.commands, '+', '-', 'COUNT', 1)
        .xrevrange(k.events, '+', '-', 'COUNT', 1)
        .hget(k.meta, 'applied')
        .exec();
      const [c, e, applied] = res!.map(([, v]) => v) as [StreamEntry[], StreamEntry[], string];
      return { command: c[0]![0], event: e[0]![0], applied };
    };
    let seen = '';
    await waitFor(
      'the log to settle',
      async () => {
        const t = await tip();
        const now = JSON.stringify(t);
        const still = now === seen && t.applied === t.command;
        seen = now;
        return still;
      },
      { timeoutMs: 20_000, everyMs: 2000 },
    );
    const lastCommand = (await tip()).command;
    rest = await sample(r);
    const res = await stateAt(rest.position);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.agents).toEqual(rest.agents);
    expect(body.contacts).toEqual(rest.contacts);
    // Every command up to the last one met by an event (those after it change nothing: a timer
    // no longer current, a state set to itself).
    expect(comparePositions(body.checkpoint, lastCommand)).toBeLessThanOrEqual(0);
    expect(body.replayed.events).toBe(await r.xlen(k.events));
    expect(body.replayed.commands).toBeLessThanOrEqual(await r.xlen(k.commands));

    const rebuilt = await rebuildWorkspace(r, WS);
    expect(rebuilt.differences).toEqual([]);
    expect(rebuilt.compared).toBe(true);
  }, 30_000);

  it('an `at` between two events answers the state after the earlier one', async () => {
    const events = ((await main.redis.xrange(workspaceKeys(WS).events, '-', '+')) as StreamEntry[]).map(
      (e) => e[0],
    );
    const i = events.indexOf(samples[3]!.position);
    const next = events[i + 1]!;
    const [ms, seq] = next.split('-').map(Number) as [number, number];
    const between = seq > 0 ? `${ms}-${seq - 1}` : `${ms - 1}-99999`;
    if (between === samples[3]!.position) return; // adjacent: no position between them
    const body = (await stateAt(between)).json();
    expect(body.position).toBe(samples[3]!.position);
    expect(body.at).toBe(between);
    expect(body.contacts).toEqual(samples[3]!.contacts);
  });

  it('a missing or bad `at` is a 400 naming it; a position after the last event is position-ahead', async () => {
    for (const url of [
      `/v1/workspaces/${WS}/state`,
      `/v1/workspaces/${WS}/state?at=yesterday`,
      `/v1/workspaces/${WS}/state?at=1-2-3`,
    ]) {
      const res = await main.api!.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      const p = res.json();
      expect(p.type).toBe('/problems/invalid-request');
      expect(p.errors.map((e: { path: string }) => e.path)).toEqual(['at']);
    }
    const [ms] = rest.position.split('-');
    const ahead = await stateAt(`${Number(ms) + 60_000}-0`);
    expect(ahead.statusCode).toBe(409);
    expect(ahead.headers['content-type']).toContain('application/problem+json');
    expect(ahead.json()).toMatchObject({
      type: '/problems/position-ahead',
      status: 409,
      lastPosition: rest.position,
    });
    expect(ahead.json().detail).toMatch(/wait or ask for an earlier position/);
    // A workspace with no event: nothing is there yet, except the state before everything.
    const none = await main.api!.inject({ method: 'GET', url: '/v1/workspaces/nothing-here/state?at=5-0' });
    expect(none.json()).toMatchObject({ type: '/problems/position-ahead', lastPosition: null });
    const empty = await main.api!.inject({ method: 'GET', url: '/v1/workspaces/nothing-here/state?at=0-0' });
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toMatchObject({
      position: null,
      agents: [],
      contacts: [],
      queue: [],
      snapshot: null,
    });
  });
});
