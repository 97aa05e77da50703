/**
 * A channel is any name of `[a-z0-9_-]` starting with a letter, `constructor` too, which plain
 * JavaScript objects also answer (Object.prototype.constructor). The domain model keeps an agent's
 * capacity, contacts and available-since per channel in such objects: it once read the prototype's
 * member for a channel with none of its own, so an agent with capacity {"constructor": 2} was at
 * capacity after one contact (busyOn["constructor"] counted from the function Object), and the
 * audit flagged the dispatcher's second, correct assignment; `GET /state?at=` answered it queued.
 */
import { describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'channel-object-names';
const api = inProcessApi([WS]);
const { ok, until } = api;

describe('a channel named constructor', () => {
  it('is routed, audited and replayed like any other channel', async () => {
    await ok('PUT', WS, '/settings', { channels: ['voice', 'constructor'] });
    await ok('POST', WS, '/agents', { id: 'per-channel', skills: ['s'], capacity: { constructor: 2 } });
    await ok('POST', WS, '/agents', { id: 'voice-only', skills: ['t'], capacity: { voice: 1 } });
    await ok('POST', WS, '/agents/per-channel/state', { state: 'available' });
    await ok('POST', WS, '/agents/voice-only/state', { state: 'available' });
    await ok('POST', WS, '/contacts', { id: 'c1', skills: ['s'], channel: 'constructor' });
    await ok('POST', WS, '/contacts', { id: 'c2', skills: ['s'], channel: 'constructor' });
    // voice-only takes no contact of a channel its capacity does not name.
    await ok('POST', WS, '/contacts', { id: 'c3', skills: ['t'], channel: 'constructor' });
    const agent = await until(WS, '/agents/per-channel', (a) => (a.activeContacts as string[]).length === 2);
    expect(agent.state).toBe('busy');
    expect((await ok('GET', WS, '/contacts/c3')).state).toBe('queued');

    const audit = await auditWorkspace(api.running.redis, WS, { idle: true });
    expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);

    const events = (await ok('GET', WS, '/events?limit=1000')).events as { position: string }[];
    const state = await ok('GET', WS, `/state?at=${events.at(-1)!.position}`);
    const contacts = state.contacts as { id: string; state: string }[];
    expect(contacts.map((c) => [c.id, c.state])).toEqual([
      ['c1', 'assigned'],
      ['c2', 'assigned'],
      ['c3', 'queued'],
    ]);
  });
});
