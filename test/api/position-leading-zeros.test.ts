/**
 * A position's parts are decimal integers (docs/API.md, "Positions and limits"): one written with
 * leading zeros ("0001732200000000-00") names the same position as Redis' own form, in `at`,
 * `after` and `minPosition` alike. Some readers compare positions digit by digit, so the API reads
 * a given position in Redis' form: `GET /state?at=` with a zero in front of the last event's
 * position once answered 409 position-ahead, and `at=00000000000000000001-0` (before any event)
 * the same.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'position-zeros';
const api = inProcessApi([WS]);

describe('positions written with leading zeros', () => {
  it('name the same position as without them', async () => {
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['x'] });
    const command = (await api.ok('POST', WS, '/agents', { id: 'a2', skills: ['x'] })).position as string;
    // The last event's position (`at` is an event position; a command's answer gives its own).
    const events = (await api.until(WS, '/events', (p) => (p.events as unknown[]).length === 2)).events as {
      position: string;
    }[];
    const last = events[1]!.position;
    const pad = (p: string) => `000${p.replace('-', '-00')}`;
    const padded = pad(last);

    const state = await api.ok('GET', WS, `/state?at=${padded}`);
    expect(state.position).toBe(last);
    expect((state.agents as { id: string }[]).map((a) => a.id)).toEqual(['a1', 'a2']);

    const before = await api.ok('GET', WS, '/state?at=00000000000000000001-0');
    expect(before.position).toBeNull();
    expect(before.agents).toEqual([]);

    const page = await api.ok('GET', WS, `/events?after=${padded}`);
    expect(page.events).toEqual([]);
    const from = await api.ok('GET', WS, '/events?after=0000-0');
    expect(from.events).toEqual(events);

    expect((await api.ok('GET', WS, `/agents/a2?minPosition=${pad(command)}`)).id).toBe('a2');
  });
});
