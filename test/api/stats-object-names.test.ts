/**
 * GET /stats keys `queueBySkills` and `queueByChannel` by names clients choose: a skill or channel
 * may be any name its pattern allows, those of Object.prototype's members included (`constructor`,
 * `toString`, `__proto__`). Each is a queue like any other: counted as a number under its own name,
 * and nothing outside the answer is touched (a channel `constructor` once made the count of its
 * queue a property of `Object` itself: a skill `keys` on it replaced `Object.keys`, and the process
 * died on its next request).
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'stats-object-names';
const api = inProcessApi([WS]);

describe('GET /stats with skills and channels named as Object.prototype members', () => {
  it('counts each queue under its name, and changes nothing outside the answer', async () => {
    await api.ok('PUT', WS, '/settings', { channels: ['voice', 'constructor'] });
    await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['polluted'], channel: 'constructor' });
    await api.ok('POST', WS, '/contacts', { id: 'c2', skills: ['constructor'] });
    await api.ok('POST', WS, '/contacts', { id: 'c3', skills: ['toString'] });
    await api.ok('POST', WS, '/contacts', { id: 'c4', skills: ['__proto__'] });
    await api.ok('POST', WS, '/contacts', { id: 'c5', skills: ['__proto__'], channel: 'constructor' });
    const stats = await api.until(WS, '/stats', (s) => s.queued === 5);
    expect('polluted' in Object).toBe(false);
    expect(JSON.parse(JSON.stringify(stats.queueBySkills))).toEqual(
      JSON.parse('{"polluted": 1, "constructor": 1, "toString": 1, "__proto__": 2}'),
    );
    expect(JSON.parse(JSON.stringify(stats.queueByChannel))).toEqual(
      JSON.parse(
        '{"voice": {"constructor": 1, "toString": 1, "__proto__": 1}, "constructor": {"polluted": 1, "__proto__": 1}}',
      ),
    );
    // The instance serves on.
    const again = await api.call('GET', `/v1/workspaces/${WS}/agents`);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  });
});
