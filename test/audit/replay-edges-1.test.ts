/**
 * The rebuild, the audit and GET /state?at= on a log with what the simpler runs leave out:
 * settings changed mid-log (offers, wrap-ups, maximum waits, priority aging, agent selection),
 * transfers, capacity changes, agents removed, contacts with routing steps and preferred agents,
 * and Idempotency-Key repeats, with the real projector, dispatcher and clock. The live documents
 * sampled during the run must be what /state?at= answers for their positions; at rest the
 * rebuild and the audit find nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { publicDocument } from '../../src/adapters/redis/projection-reads.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import type { Command } from '../../src/domain/commands.ts';
import { type ArchivingSwitchboard, archivingSwitchboard } from '../support/archive-log.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'replay-edges-1';
const SKILLS = ['English', 'Spanish', 'Billing'];
let sb: ArchivingSwitchboard | undefined;
let main: Running;

type Doc = Record<string, unknown> & { id: string };
interface Sample {
  readonly position: string;
  readonly agents: Doc[];
  readonly contacts: Doc[];
  /** Each skill-set queue's contacts in the routing index's order. */
  readonly queues: Map<string, string[]>;
}
const byId = (a: Doc, b: Doc) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

async function sample(r: RedisClient): Promise<Sample> {
  const k = workspaceKeys(WS);
  const res = await r
    .multi()
    .hgetall(k.agents)
    .hgetall(k.contacts)
    .xrevrange(k.events, '+', '-', 'COUNT', 1)
    .zrange(k.skillSetQueues, 0, -1)
    .exec();
  if (!res) throw new Error('aborted');
  const docs = (h: unknown) =>
    Object.values(h as Record<string, string>)
      .map((t) => publicDocument<Doc>(t)!)
      .sort(byId);
  const queues = new Map<string, string[]>();
  for (const m of res[3]![1] as string[]) {
    const parts = m.split('|');
    queues.set(parts[0]!, [...(queues.get(parts[0]!) ?? []), parts[3]!]);
  }
  return {
    queues,
    position: (res[2]![1] as StreamEntry[])[0]![0],
    agents: docs(res[0]![1]),
    contacts: docs(res[1]![1]),
  };
}

/** /state's queue, in routing order, holds each skill-set queue's contacts in the index's order. */
function sameOrder(queue: { contactId: string }[], queues: Map<string, string[]>): void {
  const order = queue.map((q) => q.contactId);
  for (const [name, ids] of queues)
    expect(
      order.filter((id) => ids.includes(id)),
      name,
    ).toEqual(ids);
  expect(order.length).toBe([...queues.values()].flat().length);
}

beforeAll(async () => {
  sb = await archivingSwitchboard('sb-replay-edges-1-', {
    ROLES: 'api,projector,dispatcher',
    WORKSPACES: WS,
  });
  main = sb.main;
}, 30_000);
afterAll(async () => sb?.stop());

describe('rebuild, audit and state?at= over settings changes, transfers, steps, removals and repeats', () => {
  it('agree with the live state', async () => {
    const r = main.redis;
    const rng = seededRandom(5);
    const skills = () => {
      const s = SKILLS.filter(() => rng() < 0.45).slice(0, 2);
      return s.length > 0 ? s.sort() : ['English'];
    };
    const send = (commands: Command[], key?: string) =>
      Promise.all(
        commands.map((command, i) =>
          appendCommand(r, { workspace: WS, command, ...(key ? { idempotencyKey: `${key}-${i}` } : {}) }),
        ),
      );
    await send(
      Array.from({ length: 8 }, (_, i) => ({
        type: 'RegisterAgent' as const,
        agentId: `agent-${i}`,
        skills: i % 3 === 0 ? ['Billing', 'English#3'] : skills(),
        capacity: 1 + (i % 2),
      })),
    );
    const samples: Sample[] = [];
    let contact = 0;
    for (let round = 0; round < 40; round++) {
      const live = await sample(r).catch(() => undefined);
      const commands: Command[] = [];
      if (round === 0)
        commands.push({
          type: 'ChangeSettings',
          offerTimeoutMs: 120,
          wrapUpMs: 40,
          missedOfferPresence: 'away',
          maxWaitMs: 2500,
          priorityWeightMs: 150,
          agentSelection: 'most-skilled',
        });
      // The agent selection changes only while no agent is available.
      if (round === 20)
        for (let i = 0; i < 8; i++)
          commands.push({ type: 'ChangeAgentState', agentId: `agent-${i}`, state: 'away' });
      if (round === 20)
        commands.push({
          type: 'ChangeSettings',
          offerTimeoutMs: 0,
          wrapUpMs: 60,
          missedOfferPresence: 'offline',
          maxWaitMs: null,
          priorityWeightMs: 150,
          agentSelection: 'least-occupied',
        });
      if (round === 30)
        commands.push({
          type: 'ChangeSettings',
          offerTimeoutMs: 100,
          wrapUpMs: 0,
          missedOfferPresence: 'away',
          maxWaitMs: 1500,
          priorityWeightMs: 150,
          agentSelection: 'least-occupied',
        });
      for (let i = 0; i < 8; i++)
        if (rng() < 0.3)
          commands.push({
            type: 'ChangeAgentState',
            agentId: `agent-${i}`,
            state: rng() < 0.8 ? 'available' : rng() < 0.5 ? 'away' : 'offline',
          });
      for (let i = 0; i < 3; i++) {
        const id = `contact-${contact++}`;
        const dice = rng();
        commands.push({
          type: 'QueueContact',
          contactId: id,
          skills: skills(),
          priority: Math.floor(rng() * 4),
          ...(dice < 0.3
            ? { steps: [{ afterMs: 60 + Math.floor(rng() * 100), skills: skills(), priority: 5 }] }
            : {}),
          ...(dice > 0.85
            ? { preferredAgents: [`agent-${Math.floor(rng() * 8)}`], preferredForMs: 100 }
            : {}),
          ...(dice > 0.5 && dice < 0.6 ? { maxWaitMs: 300 } : {}),
        });
      }
      for (const c of live?.contacts ?? []) {
        const agentId = c.agentId as string;
        if (c.state === 'offered') {
          const d = rng();
          if (d < 0.5) commands.push({ type: 'AcceptOffer', contactId: c.id, agentId });
          else if (d < 0.7) commands.push({ type: 'RejectOffer', contactId: c.id, agentId });
        } else if (c.state === 'assigned') {
          const d = rng();
          if (d < 0.35) commands.push({ type: 'CompleteContact', contactId: c.id });
          else if (d < 0.5)
            commands.push({
              type: 'TransferContact',
              contactId: c.id,
              skills: skills(),
              ...(d < 0.42 ? { priority: 7 } : {}),
            });
        } else if (c.state === 'queued' && rng() < 0.08)
          commands.push({ type: 'AbandonContact', contactId: c.id });
      }
      if (rng() < 0.25)
        commands.push({
          type: 'UpdateAgent',
          agentId: `agent-${Math.floor(rng() * 8)}`,
          ...(rng() < 0.5 ? { capacity: 1 + Math.floor(rng() * 3) } : { skills: skills() }),
          ...(rng() < 0.3 ? { wrapUpMs: rng() < 0.5 ? null : 30 } : {}),
        });
      // An agent no contact needs: registered, made available, changed, removed.
      if (round === 1)
        commands.push({ type: 'RegisterAgent', agentId: 'spare', skills: ['Zulu'], capacity: 1 });
      if (round === 3) commands.push({ type: 'ChangeAgentState', agentId: 'spare', state: 'available' });
      if (round === 5) commands.push({ type: 'UpdateAgent', agentId: 'spare', capacity: 3 });
      if (round === 7) commands.push({ type: 'RemoveAgent', agentId: 'spare' });
      // A contact no agent serves any more: its preference ends, it steps, and it expires.
      if (round === 10)
        commands.push({
          type: 'QueueContact',
          contactId: 'stuck',
          skills: ['Zulu'],
          priority: 1,
          maxWaitMs: 400,
          steps: [{ afterMs: 150, skills: ['Yankee', 'Zulu'], priority: 6 }],
          preferredAgents: ['agent-2'],
          preferredForMs: 50,
        });
      if (round === 12 || round === 26) {
        const victim = `agent-${round === 12 ? 1 : 6}`;
        commands.push({ type: 'ChangeAgentState', agentId: victim, state: 'offline' });
        commands.push({ type: 'RemoveAgent', agentId: victim });
      }
      if (round === 16 || round === 33)
        commands.push({
          type: 'RegisterAgent',
          agentId: `agent-${round === 16 ? 1 : 6}`,
          skills: skills(),
          capacity: 2,
        });
      // Some rounds sent twice with the same keys: the repeats append nothing.
      const key = round % 7 === 3 ? `round-${round}` : undefined;
      await send(commands, key);
      if (key) await send(commands, key);
      if (round % 4 === 2) samples.push(await sample(r));
      await new Promise((resolve) => setTimeout(resolve, Math.floor(rng() * 25)));
    }
    expect(samples.length).toBe(10);
    // Some queue held several contacts when sampled: their order is compared.
    expect(samples.some((x) => [...x.queues.values()].some((ids) => ids.length >= 3))).toBe(true);

    const failures: string[] = [];
    for (const s of samples) {
      const res = await main.api!.inject({
        method: 'GET',
        url: `/v1/workspaces/${WS}/state?at=${s.position}`,
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      try {
        expect(body.agents).toEqual(s.agents);
        expect(body.contacts).toEqual(s.contacts);
        sameOrder(body.queue, s.queues);
      } catch (e) {
        failures.push(`${s.position}: ${(e as Error).message.slice(0, 3000)}`);
      }
    }

    const k = workspaceKeys(WS);
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
      { timeoutMs: 20_000, everyMs: 800 },
    );
    const rest = await sample(r);
    const res = await main.api!.inject({
      method: 'GET',
      url: `/v1/workspaces/${WS}/state?at=${rest.position}`,
    });
    const body = res.json();
    try {
      expect(body.agents).toEqual(rest.agents);
      expect(body.contacts).toEqual(rest.contacts);
      sameOrder(body.queue, rest.queues);
    } catch (e) {
      failures.push(`rest ${rest.position}: ${(e as Error).message.slice(0, 3000)}`);
    }
    const rebuilt = await rebuildWorkspace(r, WS);
    const audit = await auditWorkspace(r, WS);
    // The log holds what this suite is about.
    const types = new Set(((await r.xrange(k.events, '-', '+')) as StreamEntry[]).map((e) => e[1][1]));
    for (const t of [
      'SettingsChanged',
      'ContactTransferred',
      'AgentRemoved',
      'AssignmentExpired',
      'WrapUpEnded',
      'ContactExpired',
      'ContactStepped',
      'PreferenceEnded',
    ])
      expect(types, t).toContain(t);
    expect(failures).toEqual([]);
    expect(rebuilt.differences).toEqual([]);
    expect(audit.violations).toEqual([]);
  }, 60_000);
});
