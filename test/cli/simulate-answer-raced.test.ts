/**
 * An agent's answer that crossed the offer's end: the offer expired and the contact was offered to
 * another agent before the answer arrived. The server answers 409 offer-not-yours; the run counts
 * it as an answer that raced the offer's end, as it does contact-not-offered, not as an error.
 */
import { SwitchboardClient } from 'switchboard/client';
import { describe, expect, it } from 'vitest';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { inProcessApi } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';
import { simOptions } from './sim-support.ts';

const WS = `sim-raced-${Date.now()}`;
const api = inProcessApi([WS]);

/** The private answer step, as the run calls it when an agent's accept or reject is due. */
interface Answering {
  answer(c: unknown, offer: unknown, kind: 'accept' | 'reject'): Promise<void>;
  answerRaced: number;
  errors: number;
  errorSamples: string[];
}

describe('simulate, an answer that crossed its offer', () => {
  it('counts an accept answered offer-not-yours (the contact re-offered to another agent) as raced, not as an error', async () => {
    const client = new SwitchboardClient({ url: api.running.url!, workspace: WS, retries: 0 });
    const path = `/v1/workspaces/${WS}`;
    const send = async (method: string, p: string, body?: unknown) => {
      const r = await client.send(method, `${path}${p}`, body !== undefined ? { body } : {});
      expect(r.status, `${method} ${p}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
      return r.body as Record<string, unknown>;
    };
    await send('PUT', '/settings', {
      ...(await send('GET', '/settings')),
      position: undefined,
      offerTimeoutMs: 60_000,
    });
    for (const id of ['first', 'second']) await send('POST', '/agents', { id, skills: ['s'], capacity: 1 });
    // Only "second" can take it: the contact is offered to "second".
    await send('POST', '/agents/second/state', { state: 'available' });
    await send('POST', '/contacts', { id: 'c1', skills: ['s'] });
    await waitFor('the offer to second', async () => {
      const c = (await client.send('GET', `${path}/contacts/c1`)).body as {
        state?: string;
        agentId?: string;
      };
      return c.state === 'offered' && c.agentId === 'second';
    });

    const sim = new Simulator(simOptions({ url: api.running.url!, workspace: WS }));
    const run = sim as unknown as Answering;
    // The run last saw the contact offered to "first" (that offer has since expired, and the
    // contact went to "second"); first's accept arrives now.
    const offer = { id: 1, agentId: 'first', madeAt: Date.now() - 1000, waitedMs: 0 };
    const contact = {
      id: 'c1',
      skills: ['s'],
      priority: 0,
      handleMs: 1000,
      answers: [],
      offersSeen: 1,
      offer,
      state: 'offered',
      everAssigned: false,
    };
    await run.answer(contact, offer, 'accept');
    expect(run.errorSamples).toEqual([]);
    expect(run.errors).toBe(0);
    expect(run.answerRaced).toBe(1);
  });
});
