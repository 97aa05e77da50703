/**
 * Switchboard as it is deployed: one Redis and two processes of each role, as separate OS
 * processes. Commands enter through API #1 only; a WebSocket subscriber listens on API #2. Proves
 * that any instance serves any subscriber (every AssignmentMade in the log reaches API #2's
 * subscriber, in order, once), and, by the auditor (src/audit), that two dispatchers never assign a
 * contact twice, nor to an agent without its skills or at its capacity, and decide by rule 1.
 */
import { randomUUID } from 'node:crypto';
import { type EventEnvelope, type Status, SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { auditWorkspace } from '../../src/audit/read.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import { Fleet } from '../support/fleet.ts';
import type { SwitchboardProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const LANGUAGES = ['English', 'Spanish'] as const;
const AREAS = ['Support', 'Disputes', 'Billing'] as const;
const AGENTS = 20;
const CONTACTS = 100;

describe('two processes of each role on one Redis', () => {
  let fleet: Fleet;
  const ws = `mp-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    fleet = await Fleet.start({ api: 2, projector: 2, dispatcher: 2, env: { WORKSPACES: ws } });
  }, 60_000);

  afterAll(async () => {
    if (!fleet) return;
    const codes = await fleet.stop();
    // A clean stop is part of the contract: every process exits 0 on SIGTERM.
    expect(codes).toEqual(Array(6).fill(0));
  }, 60_000);

  it('delivers every assignment to a subscriber on the other API, once each, in order', async () => {
    const [api1, api2] = fleet.api as [SwitchboardProcess, SwitchboardProcess];
    // Commands and queries through API #1; no retries, so every answer asserted is the first one.
    const client1 = new SwitchboardClient({ url: api1.url!, workspace: ws, retries: 0 });
    const client2 = new SwitchboardClient({ url: api2.url!, workspace: ws, retries: 0 });
    // The simulator's seeded generator, so a failing run can be repeated.
    const random = seededRandom(20_241_122);

    // The subscriber on API #2, live only (no `after`): it must be subscribed before any traffic.
    const received: EventEnvelope[] = [];
    const socket = new WebSocket(
      `${api2.url!.replace('http', 'ws')}/v1/workspaces/${ws}/events/live?type=AssignmentMade`,
    );
    socket.on('message', (data) => {
      const e = JSON.parse(String(data)) as EventEnvelope;
      if (!('heartbeat' in e)) received.push(e); // heartbeats (docs/API.md) are no events
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    await waitFor('the subscriber to be registered on API #2', async () => {
      const s = (await client2.status()) as Status & { subscribers: number };
      return s.subscribers >= 1;
    });

    // Agents: one language each and one or two areas, so every (language, area) pair is served.
    const agentSkills = new Map<string, string[]>();
    for (let i = 0; i < AGENTS; i++) {
      const lang = LANGUAGES[i % 2]!;
      const areaIndex = Math.floor(i / 2) % AREAS.length;
      const areas = [AREAS[areaIndex]!];
      if (i % 4 >= 2) areas.push(AREAS[(areaIndex + 1) % AREAS.length]!);
      const id = `agent-${String(i).padStart(2, '0')}`;
      agentSkills.set(id, [lang, ...areas]);
      const r = await client1.registerAgent({ id, name: `Agent ${i}`, skills: [lang, ...areas] });
      expect(r.status, JSON.stringify(r)).toBe(201);
    }
    for (const id of agentSkills.keys()) {
      const r = await client1.setAgentState(id, 'available');
      expect(r.status, JSON.stringify(r)).toBe(200);
    }

    // Agents cycle: every assignment (read by paging GET /events on API #1) is completed soon after.
    let stopCycling = false;
    const completed = new Set<string>();
    const failures: string[] = [];
    const completions: Promise<void>[] = [];
    const cycle = (async () => {
      let after: string | undefined;
      while (!stopCycling) {
        const page = await client1.events({
          types: ['AssignmentMade'],
          limit: 1000,
          ...(after ? { after } : {}),
        });
        for (const e of page.events) {
          after = e.position;
          const contactId = String(e.data.contactId);
          completions.push(
            sleep(20 + Math.floor(random() * 80))
              .then(() => client1.completeContact(contactId))
              .then((r) => {
                if (r.status === 200) completed.add(contactId);
                else failures.push(`complete ${contactId}: ${r.status} ${JSON.stringify(r)}`);
              })
              .catch((err: Error) => {
                failures.push(`complete ${contactId}: ${err.message}`);
              }),
          );
        }
        if (page.events.length === 0) await sleep(50);
      }
    })();

    // Contacts: a language and an area each, queued a few at a time.
    const contactIds: string[] = [];
    for (let i = 0; i < CONTACTS; i += 10) {
      const batch = [];
      for (let j = i; j < Math.min(i + 10, CONTACTS); j++) {
        const id = `contact-${String(j).padStart(3, '0')}`;
        contactIds.push(id);
        const skills = [LANGUAGES[Math.floor(random() * 2)]!, AREAS[Math.floor(random() * AREAS.length)]!];
        batch.push(
          client1
            .queueContact({ id, skills, priority: Math.floor(random() * 3) })
            .then((r) => expect(r.status, JSON.stringify(r)).toBe(201)),
        );
      }
      await Promise.all(batch);
    }

    await waitFor(
      'every contact to be assigned and completed',
      () => {
        if (failures.length > 0) throw new Error(failures.join('\n'));
        return completed.size === CONTACTS;
      },
      { timeoutMs: 30_000 },
    );
    stopCycling = true;
    await cycle;
    await Promise.all(completions);

    // The whole log, paged through API #1.
    const log: EventEnvelope[] = [];
    for await (const e of client1.allEvents({ limit: 500 })) log.push(e);
    const assignments = log.filter((e) => e.type === 'AssignmentMade');

    // The subscriber on API #2 got exactly the log's assignments, in log order, with no duplicate.
    await waitFor('the subscriber to catch up', () => received.length >= assignments.length, {
      timeoutMs: 10_000,
    });
    await sleep(200);
    socket.close();
    expect(received.map((e) => e.position)).toEqual(assignments.map((e) => e.position));
    expect(new Set(received.map((e) => e.position)).size).toBe(received.length);
    expect(received.every((e) => e.type === 'AssignmentMade')).toBe(true);

    // The auditor (src/audit) on the streams, documents and routing index: every command applied
    // once with the model's facts, every assignment rule 1's, possible (the agent holds every skill,
    // is below capacity; the contact was queued, so never assigned twice).
    const audit = await auditWorkspace(fleet.client, ws, { idle: true });
    expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
    expect(audit).toMatchObject({ state: 'compared', pendingCommands: 0, assignments: CONTACTS });
    expect(audit.assignmentPositions).toEqual(assignments.map((e) => e.position));
    expect(contactIds.filter((id) => audit.replay.contacts.get(id)?.state !== 'completed')).toEqual([]);
    expect([...audit.replay.agents.values()].filter((a) => a.activeContacts.length > 0)).toEqual([]);
  }, 90_000);
});
