/**
 * Workspace settings changed while contacts wait or agents work, second part (docs/API.md, "Routing
 * policy", "Offers, wrap-up and maximum wait"): priority aging's weight changed with contacts
 * queued (a contact's key is computed when it enters its queue), a workspace maxWaitMs set after a
 * contact was queued, re-queued or transferred, and an agent's own wrap-up time against the
 * workspace's. Each workspace ends with the auditor finding no violation.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { ruleScenarios } from '../support/rule-scenarios.ts';

const WS = {
  weight: 'se2-weight',
  weightStep: 'se2-weight-step',
  laterWait: 'se2-later-wait',
  ownWrap: 'se2-own-wrap',
} as const;
const api = inProcessApi(Object.values(WS));
const { ok, until } = api;
const { sleep, events, audited, agentWith } = ruleScenarios(api, { settleMs: 200 });

describe.concurrent('settings and work in flight', () => {
  it('priorityWeightMs lowered with contacts queued: they keep their keys, so a later contact set by the new weight goes first', async () => {
    const ws = WS.weight;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 3_600_000 });
    await ok('POST', ws, '/contacts', { id: 'p0', skills: ['s'], priority: 0 });
    await sleep(20);
    // Under an hour a point, p1 goes before p0 (it arrived 20 ms later).
    await ok('POST', ws, '/contacts', { id: 'p1', skills: ['s'], priority: 1 });
    await ok('PUT', ws, '/settings', { priorityWeightMs: 1 });
    await sleep(20);
    // Keys are set when a contact enters its queue (docs/ROUTING.md): p0 and p1 keep theirs, 9 and
    // 8 hours after their arrival; p2's is 7 ms after its own.
    await ok('POST', ws, '/contacts', { id: 'p2', skills: ['s'], priority: 2 });
    const place = async (id: string) => (await ok('GET', ws, `/contacts/${id}`)).queuePosition;
    expect([await place('p2'), await place('p1'), await place('p0')]).toEqual([0, 1, 2]);
    const last = (await events(ws)).at(-1)?.position;
    const state = await ok('GET', ws, `/state?at=${last}`);
    expect((state.queue as { contactId: string }[]).map((q) => q.contactId)).toEqual(['p2', 'p1', 'p0']);
    await agentWith(ws, 'a1', { capacity: 3 });
    await until(ws, '/contacts/p0', (c) => c.state === 'assigned');
    const made = (await events(ws)).filter((e) => e.type === 'AssignmentMade').map((e) => e.data.contactId);
    expect(made).toEqual(['p2', 'p1', 'p0']);
    await audited(ws);
  });

  it('priorityWeightMs raised, then a routing step: the step sets the key by the weight in force then', async () => {
    const ws = WS.weightStep;
    await ok('PUT', ws, '/settings', { priorityWeightMs: 1 });
    await ok('POST', ws, '/contacts', {
      id: 'stepper',
      skills: ['s'],
      priority: 0,
      steps: [{ afterMs: 300, skills: ['s'], priority: 8 }],
    });
    await ok('PUT', ws, '/settings', { priorityWeightMs: 3_600_000 });
    await until(ws, '/contacts/stepper', (c) => c.step === 1, 3000);
    // The stepper's key: its arrival + 1 hour (the new weight), not + 1 ms; a later priority-9
    // contact (key: its arrival) goes first.
    await ok('POST', ws, '/contacts', { id: 'later', skills: ['s'], priority: 9 });
    expect((await ok('GET', ws, '/contacts/later')).queuePosition).toBe(0);
    expect((await ok('GET', ws, '/contacts/stepper')).queuePosition).toBe(1);
    await agentWith(ws, 'a1', { capacity: 2 });
    await until(ws, '/contacts/stepper', (c) => c.state === 'assigned');
    const made = (await events(ws)).filter((e) => e.type === 'AssignmentMade').map((e) => e.data.contactId);
    expect(made).toEqual(['later', 'stepper']);
    await audited(ws);
  });

  it('maxWaitMs set after a contact was queued gives it none; re-queued by a rejection or a transfer, still none', async () => {
    const ws = WS.laterWait;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000, maxWaitMs: 300 });
    await agentWith(ws, 'a1', { capacity: 2 });
    await until(ws, '/contacts/c2', (c) => c.state === 'offered');
    await ok('POST', ws, '/contacts/c1/reject', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/c2/accept', { agentId: 'a1' });
    await ok('POST', ws, '/contacts/c2/transfer', { skills: ['t'] });
    await ok('POST', ws, '/contacts', { id: 'c3', skills: ['t'] });
    await until(ws, '/contacts/c3', (c) => c.state === 'expired');
    await sleep(200);
    for (const id of ['c1', 'c2']) {
      const c = await ok('GET', ws, `/contacts/${id}`);
      expect(c.state, id).toBe('queued');
      expect(c, id).not.toHaveProperty('expiresAt');
    }
    await audited(ws);
  });

  it("an agent's own wrapUpMs stands over any workspace change; removed (null), the workspace's in force applies", async () => {
    const ws = WS.ownWrap;
    await ok('PUT', ws, '/settings', { wrapUpMs: 200 });
    await agentWith(ws, 'a1', { wrapUpMs: 0 });
    await ok('PUT', ws, '/settings', { wrapUpMs: 400 });
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['s'] });
    await until(ws, '/contacts/c1', (c) => c.state === 'assigned');
    await ok('POST', ws, '/contacts/c1/complete');
    expect((await ok('GET', ws, '/agents/a1')).state).toBe('available');
    await ok('PATCH', ws, '/agents/a1', { wrapUpMs: null });
    await ok('POST', ws, '/contacts', { id: 'c2', skills: ['s'] });
    await until(ws, '/contacts/c2', (c) => c.state === 'assigned');
    await ok('PUT', ws, '/settings', { wrapUpMs: 300 });
    await ok('POST', ws, '/contacts/c2/complete');
    const a = await ok('GET', ws, '/agents/a1');
    const started = (await events(ws)).filter((e) => e.type === 'WrapUpStarted');
    expect(started).toHaveLength(1);
    const completed = (await events(ws)).find(
      (e) => e.type === 'ContactCompleted' && e.data.contactId === 'c2',
    );
    expect(Date.parse(String(a.wrapUpUntil)) - Date.parse(String(completed?.data.completedAt))).toBe(300);
    await until(ws, '/agents/a1', (x) => x.state === 'available');
    await audited(ws);
  });
});
