/**
 * `GET /agents?skill=x` (and `state=available&skill=x`, in LAA order) lists the agents holding
 * skill x: at any level, as routing counts them. An agent given the skill with a level
 * (`{"name": "Billing", "level": 3}`) shows it so in its document, and the filter once compared the
 * name with the document's entries as strings, which left out every agent holding the skill above
 * level 1 (even from the availability order, which routing reads and which held it).
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'agents-skill-level';
const api = inProcessApi([WS]);
const { ok } = api;

const ids = async (query: string) =>
  ((await ok('GET', WS, `/agents?${query}`)).agents as { id: string }[]).map((a) => a.id);

describe('GET /agents?skill= and skill levels', () => {
  it('lists an agent holding the skill at a level above 1', async () => {
    await ok('POST', WS, '/agents', { id: 'expert', skills: [{ name: 'Billing', level: 3 }, 'English'] });
    await ok('POST', WS, '/agents', { id: 'novice', skills: ['Billing'] });
    await ok('POST', WS, '/agents', { id: 'other', skills: ['English'] });
    for (const id of ['expert', 'novice', 'other'])
      await ok('POST', WS, `/agents/${id}/state`, { state: 'available' });
    expect(await ids('skill=Billing')).toEqual(['expert', 'novice']);
    expect(await ids('state=available&skill=Billing')).toEqual(['expert', 'novice']);
    expect(await ids('state=available&skill=English')).toEqual(['expert', 'other']);
    expect(await ids('skill=Billing&limit=1')).toEqual(['expert']);
  });
});
