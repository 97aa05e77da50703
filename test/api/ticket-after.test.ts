/**
 * `POST /ws-tickets {after}`: the position a page will open its feed from, checked with the ticket.
 * A browser cannot read the status of a refused WebSocket upgrade, so a saved position past the
 * log's last event (a Redis that lost its data, another Redis) showed only as a socket failing
 * again and again. The ticket route answers that with `409 position-ahead` and `lastPosition`,
 * which a page can read and resume from; a position in the log gets its ticket as before.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'ticket-after';
const api = inProcessApi([WS]);

describe('a ticket asked with the position the feed will open from', () => {
  it('is refused 409 position-ahead with lastPosition when the position is past the log, and issued otherwise', async () => {
    const created = await api.ok('POST', WS, '/agents', { id: 'ta1', skills: ['s'] });
    const page = await api.ok('GET', WS, '/events?limit=1000');
    const last = (page.events as { position: string }[]).at(-1)!.position;
    expect(typeof created.position).toBe('string');

    const ahead = `${Number(last.split('-')[0]) + 60_000}-0`;
    const refused = await api.problem('POST', WS, '/ws-tickets', { after: ahead }, 409, 'position-ahead');
    expect(refused.lastPosition).toBe(last);
    expect(String(refused.detail)).toContain(ahead);

    // At the last event, before it, from the start, or with no position: a ticket.
    for (const after of [last, '0-0', '1-0'])
      expect((await api.call('POST', `/v1/workspaces/${WS}/ws-tickets`, { after })).status).toBe(201);
    expect((await api.call('POST', `/v1/workspaces/${WS}/ws-tickets`, {})).status).toBe(201);

    // A position that is none is a 400 naming `after`.
    const bad = await api.problem('POST', WS, '/ws-tickets', { after: 'yesterday' }, 400, 'invalid-request');
    expect((bad.errors as { path: string }[]).map((e) => e.path)).toEqual(['after']);
  });

  it('in a workspace with no event yet, any position but 0-0 is ahead (lastPosition null)', async () => {
    const refused = await api.problem(
      'POST',
      'ticket-after-empty',
      '/ws-tickets',
      { after: '5-0' },
      409,
      'position-ahead',
    );
    expect(refused.lastPosition).toBeNull();
    expect(
      (await api.call('POST', '/v1/workspaces/ticket-after-empty/ws-tickets', { after: '0-0' })).status,
    ).toBe(201);
  });
});
