/**
 * GET /contacts/{id} while its contacts are being assigned: the document and its place in the queue
 * (queuePosition, estimatedWaitMs) are one read, so every `queued` answer has a queuePosition and
 * no answer of another state has one. Many contacts queue with no agent free, then agents become
 * available while the test polls every contact concurrently.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = 'contact-read-race';
const api = inProcessApi([WS]);
const N = 100;

describe('GET /contacts/{id} during assignments', () => {
  it('never answers queued without a queuePosition, nor another state with one', async () => {
    const ids = Array.from({ length: N }, (_, i) => `c-${i}`);
    const agents = Array.from({ length: N }, (_, i) => `a-${i}`);
    await Promise.all(agents.map((id) => api.ok('POST', WS, '/agents', { id, skills: ['S'] })));
    await Promise.all(ids.map((id) => api.ok('POST', WS, '/contacts', { id, skills: ['S'] })));
    await api.until(WS, '/stats', (s) => s.queued === N);

    const bad: Json[] = [];
    let answers = 0;
    let queuedSeen = 0;
    let done = false;
    const poll = async (id: string): Promise<void> => {
      while (!done) {
        const r = await api.call('GET', `/v1/workspaces/${WS}/contacts/${id}`);
        expect(r.status).toBe(200);
        answers++;
        const c = r.body;
        if (c.state === 'queued') queuedSeen++;
        if ((c.state === 'queued') !== (c.queuePosition !== undefined)) bad.push(c);
        if (c.state !== 'queued') return;
      }
    };
    const polls = ids.map(poll);
    // The agents become available together, each taking a contact while the polls go on.
    const available = Promise.all(
      agents.map((id) => api.ok('POST', WS, `/agents/${id}/state`, { state: 'available' })),
    );
    await available;
    await api.until(WS, '/stats', (s) => s.queued === 0, 10_000);
    done = true;
    await Promise.all(polls);
    expect(queuedSeen).toBeGreaterThanOrEqual(N / 2);
    expect(answers).toBeGreaterThan(N);
    expect(
      bad.map((c) => ({ id: c.id, state: c.state, queuePosition: c.queuePosition })),
      `${bad.length} of ${answers} answers`,
    ).toEqual([]);
  });
});
