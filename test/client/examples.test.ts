/** the README's and docs/API.md's client examples, run as written (a key and URL of a real instance). */
import { type EventEnvelope, SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';

let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture(['default']);
}, 30_000);
afterAll(async () => p?.stop());

describe('the examples', () => {
  it("docs/API.md's", async () => {
    const logged: unknown[][] = [];
    const console = { log: (...a: unknown[]) => logged.push(a) };
    const process = { env: { SB_KEY: p.keys.default } };
    // --- as in docs/API.md, "The client"
    const sb = new SwitchboardClient({ url: p.main.url!, workspace: 'default', key: process.env.SB_KEY });
    await sb.registerAgent({ id: 'ana', skills: ['English', { name: 'Billing', level: 4 }] });
    await sb.setAgentState('ana', 'available');
    const queued = await sb.queueContact({ id: 'call-1', skills: ['Billing'], priority: 5 });
    if (queued.applied) console.log(queued.value.state); // "queued": the command's outcome; the dispatcher gives it to ana just after
    const call = await sb.getContact('call-1', { minPosition: queued.position }); // reads its own write

    const sub = sb.subscribe({ types: ['AssignmentMade'], after: '0-0' }, (e) =>
      console.log(e.position, e.data),
    );
    // ... sub.position is the last event handed on; sub.close() ends it.

    try {
      await sb.getAgent('nobody');
    } catch (err) {
      if (err instanceof SwitchboardError) console.log(err.status, err.type, err.detail); // 404 /problems/agent-not-found
    }
    // ---
    await new Promise((r) => setTimeout(r, 500));
    sub.close();
    globalThis.console.log(JSON.stringify(logged), call.state);
    // It said "assigned": ana took it. The answer is the projector's outcome, before any dispatch.
    expect(logged[0]).toEqual(['queued']);
    expect(logged.some((l) => l[0] === 404 && l[1] === '/problems/agent-not-found')).toBe(true);
    expect(logged.some((l) => typeof l[0] === 'string' && /^\d+-\d+$/.test(l[0]))).toBe(true);
  });

  it("the README's", async () => {
    const logged: unknown[][] = [];
    const console = { log: (...a: unknown[]) => logged.push(a) };
    const process = { env: { SB_KEY: p.keys.default } };
    // --- as in README.md, "Client"
    const sb = new SwitchboardClient({ url: p.main.url!, key: process.env.SB_KEY });
    await sb.registerAgent({ id: 'bob', skills: ['English', 'Billing'] });
    await sb.setAgentState('bob', 'available');
    const sub = sb.subscribe({ types: ['AssignmentMade'] }, (e: EventEnvelope) =>
      console.log(e.data.contactId, '->', e.data.agentId),
    );
    await sub.ready; // without `after`, the feed starts once open: what happens before is not on it
    const queued = await sb.queueContact({ skills: ['Billing'], priority: 5 }); // retried safely if Redis blips
    console.log(await sb.stats({ minPosition: queued.position }));
    // ... the AssignmentMade comes a moment after the contact is queued; sub.close() ends the feed.
    // ---
    // As it was (no `await sub.ready`, sub.close() right after stats) nothing was ever logged: the
    // contact was queued and assigned before the feed opened.
    await new Promise((r) => setTimeout(r, 500));
    sub.close();
    globalThis.console.log(JSON.stringify(logged.map((l) => (typeof l[0] === 'object' ? 'stats' : l))));
    expect(logged.some((l) => l[1] === '->' && l[2] === 'bob')).toBe(true);
  });
});
