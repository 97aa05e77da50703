/**
 * `GET /events?after=<position>` with a position past the workspace's last event (a Redis that lost
 * its data, another Redis, or a position saved from another deployment) names no event: it is a
 * `409` `/problems/position-ahead` with `lastPosition`, as the live feed's upgrade, `POST
 * /ws-tickets` and `GET /state?at=` answer it. Before, it answered an empty page with `next: null`,
 * the answer of a reader that is done: a poller kept asking from its position and never learned
 * that the events it waited for went to positions before it. A position the log holds (the last
 * event, `0-0`, one between two events) still reads, with or without `type`.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'events-ahead';
const EMPTY = 'events-ahead-none';
const api = inProcessApi([WS, EMPTY]);

interface Page {
  readonly events: { position: string }[];
  readonly next: string | null;
}

describe('GET /events after a position past the last event', () => {
  it('is a 409 position-ahead naming the last event, with type or not; positions the log holds still read', async () => {
    await api.ok('POST', WS, '/agents', { id: 'a1', name: 'A', skills: ['x'] });
    const all = (await api.until(
      WS,
      '/events',
      (v) => (v as unknown as Page).events.length > 0,
    )) as unknown as Page;
    const last = all.events.at(-1)!.position;
    const [ms] = last.split('-');

    for (const ahead of [`${Number(ms) + 60_000}-0`, `${ms}-${Number(last.split('-')[1]) + 1}`]) {
      for (const query of [
        `after=${ahead}`,
        `after=${ahead}&type=AgentRegistered`,
        `after=${ahead}&limit=5`,
      ]) {
        const body = await api.problem('GET', WS, `/events?${query}`, undefined, 409, 'position-ahead');
        expect(body.lastPosition, query).toBe(last);
        expect(String(body.detail), query).toContain(ahead);
      }
    }

    // The log's own positions: the last event (an empty page, the end), the start, one between.
    expect(await api.ok('GET', WS, `/events?after=${last}`)).toEqual({ events: [], next: null });
    expect(((await api.ok('GET', WS, '/events?after=0-0')) as unknown as Page).events.at(-1)?.position).toBe(
      last,
    );
    expect(await api.ok('GET', WS, `/events?after=${last}&type=ContactQueued`)).toEqual({
      events: [],
      next: null,
    });
  });

  it('a workspace with no event: any position but 0-0 is ahead (lastPosition null)', async () => {
    const body = await api.problem('GET', EMPTY, '/events?after=1-0', undefined, 409, 'position-ahead');
    expect(body.lastPosition).toBeNull();
    expect(await api.ok('GET', EMPTY, '/events?after=0-0')).toEqual({ events: [], next: null });
    expect(await api.ok('GET', EMPTY, '/events')).toEqual({ events: [], next: null });
  });
});
