/**
 * `GET /agents?state=available&skill=x` lists the available agents holding skill x in LAA order,
 * those with a capacity per channel too (`{"chat": 2}`): they are `available` in their documents
 * and in `GET /agents?skill=x`. Routing keeps them in the availability order of each channel they
 * take ("chat/x"), which the listing once did not read: it left them out.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { sleep } from '../support/wait.ts';

const WS = 'agents-available-channels';
const api = inProcessApi([WS]);
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
});
