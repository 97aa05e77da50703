/**
 * `GET /agents?state=available&skill=x` lists the available agents holding skill x in LAA order,
 * those with a capacity per channel too (`{"chat": 2}`): they are `available` in their documents
 * and in `GET /agents?skill=x`. Routing keeps them in the availability order of each channel they
 * take ("chat/x"), which the listing once did not read: it left them out.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'agents-available-channels';
const LIMIT_WS = 'agents-available-limit';
const api = inProcessApi([WS, LIMIT_WS]);
const { ok } = api;

const ids = async (query: string) =>
  ((await ok('GET', WS, `/agents?${query}`)).agents as { id: string }[]).map((a) => a.id);

describe('GET /agents?state=available&skill= and capacity per channel', () => {
  it('lists agents with a capacity per channel among the others, longest available first, once each', async () => {
    await ok('PUT', WS, '/settings', { channels: ['voice', 'chat'] });
    await ok('POST', WS, '/agents', { id: 'both', skills: ['Sales'], capacity: { voice: 1, chat: 2 } });
    await ok('POST', WS, '/agents', { id: 'any', skills: ['Sales'] });
    await ok('POST', WS, '/agents', { id: 'chat-only', skills: ['Sales', 'English'], capacity: { chat: 3 } });
    for (const id of ['chat-only', 'any', 'both']) {
      await ok('POST', WS, `/agents/${id}/state`, { state: 'available' });
      await sleep(5);
    }
    expect(await ids('skill=Sales')).toEqual(['any', 'both', 'chat-only']);
    expect(await ids('state=available&skill=Sales')).toEqual(['chat-only', 'any', 'both']);
    expect(await ids('state=available&skill=Sales&limit=2')).toEqual(['chat-only', 'any']);
    expect(await ids('state=available&skill=English')).toEqual(['chat-only']);
  });

  it('counts available agents only toward limit, not the reserved ones before them', async () => {
    const ws = LIMIT_WS;
    await ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await ok('POST', ws, '/agents', { id: 'first', skills: ['a'], capacity: 2 });
    await ok('POST', ws, '/agents', { id: 'second', skills: ['a'] });
    await ok('POST', ws, '/agents/first/state', { state: 'available' });
    await sleep(5);
    await ok('POST', ws, '/agents/second/state', { state: 'available' });
    // An offer to the longest available: reserved, with room left (still first in the pools).
    await ok('POST', ws, '/contacts', { id: 'c1', skills: ['a'] });
    await waitFor(
      'the first agent reserved',
      async () => (await ok('GET', ws, '/agents/first')).state === 'reserved',
    );
    const list = async (query: string) =>
      ((await ok('GET', ws, `/agents?${query}`)).agents as { id: string }[]).map((a) => a.id);
    expect(await list('state=available&skill=a&limit=1')).toEqual(['second']);
    expect(await list('state=available&skill=a')).toEqual(['second']);
  });
});
