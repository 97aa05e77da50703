/**
 * Each kind of timer's event carries a time at or a little after its due time, never before, and
 * comes once (docs/API.md, "Offers, wrap-up and maximum wait", "Timers"): an offer's expiry, a
 * wrap-up's end, a routing step, a preference's end and a maximum wait, all run by one in-process
 * Switchboard's dispatcher against a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { sleep } from '../support/wait.ts';

const WS = 'timers-edges-2';
const api = inProcessApi([WS]);
const post = (path: string, payload?: unknown) => api.ok('POST', WS, path, payload);
const ms = (iso: unknown): number => Date.parse(String(iso));
/** How late a timer's event may be here (the clock's alarm, the stream, a loaded test machine). */
const LATE_MS = 1000;

interface Envelope {
  readonly type: string;
  readonly data: Json;
}

describe('timer events and their due times', () => {
  it('every timer fires once, at or a little after its due time', async () => {
    await api.ok('PUT', WS, '/settings', { offerTimeoutMs: 300, wrapUpMs: 300 });
    await post('/agents', { id: 'a', skills: ['A'] });
    await post('/agents', { id: 'b', skills: ['B'] });
    await post('/agents/a/state', { state: 'available' });
    await post('/agents/b/state', { state: 'available' });

    // An offer nobody answers.
    await post('/contacts', { id: 'o1', skills: ['A'] });
    const offered = await api.until(WS, '/contacts/o1', (c) => c.state === 'offered');
    const offerDue = ms(offered.offerExpiresAt);
    // A wrap-up after an accepted offer.
    await post('/contacts', { id: 'w1', skills: ['B'] });
    await api.until(WS, '/contacts/w1', (c) => c.state === 'offered');
    await post('/contacts/w1/accept', { agentId: 'b' });
    await post('/contacts/w1/complete');
    const wrapping = await api.ok('GET', WS, '/agents/b');
    const wrapDue = ms(wrapping.wrapUpUntil);
    // A contact nobody can take: a step, a preference's end, then its maximum wait.
    const m1 = await post('/contacts', {
      id: 'm1',
      skills: ['Nobody'],
      maxWaitMs: 500,
      preferredAgents: ['zz'],
      preferredForMs: 250,
      steps: [{ afterMs: 100, skills: ['Nobody2'] }],
    });
    const queuedAt = ms(m1.queuedAt);

    await api.until(WS, '/contacts/m1', (c) => c.state === 'expired');
    await api.until(WS, '/agents/b', (a) => a.state === 'available');
    await api.until(WS, '/contacts/o1', (c) => c.state === 'queued');
    await sleep(200); // anything fired twice would show by now
    const events = ((await api.ok('GET', WS, '/events?limit=1000')).events as Envelope[]).filter((e) =>
      ['AssignmentExpired', 'WrapUpEnded', 'ContactStepped', 'PreferenceEnded', 'ContactExpired'].includes(
        e.type,
      ),
    );
    const only = (type: string): Json => {
      const of = events.filter((e) => e.type === type);
      expect(of, type).toHaveLength(1);
      return of[0]!.data;
    };
    const lateness = {
      offer: ms(only('AssignmentExpired').expiredAt) - offerDue,
      wrapUp: ms(only('WrapUpEnded').endedAt) - wrapDue,
      step: ms(only('ContactStepped').steppedAt) - (queuedAt + 100),
      preference: ms(only('PreferenceEnded').endedAt) - (queuedAt + 250),
      maxWait: ms(only('ContactExpired').expiredAt) - (queuedAt + 500),
    };
    console.log(JSON.stringify(lateness));
    for (const [timer, late] of Object.entries(lateness)) {
      expect(late, timer).toBeGreaterThanOrEqual(0);
      expect(late, timer).toBeLessThan(LATE_MS);
    }
    expect(only('WrapUpEnded').early).toBe(false);
    const expired = only('ContactExpired');
    expect(expired.waitedMs).toBe(ms(expired.expiredAt) - queuedAt);
    expect(events).toHaveLength(5);
  });
});
