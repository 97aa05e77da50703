/**
 * GET /agents by id pages on with `after` and the answer's `next` (null after the last page): a
 * workspace of any size is listed whole, a page at a time, each page read from the agent ids'
 * index (src/adapters/redis/agent-ids.ts) rather than from every agent's document. The
 * longest-available listing (`state=available&skill`) is one page: it takes no `after` (a 400
 * naming it) and answers no `next`. A workspace whose index was never made (agents from a version
 * before it) is listed whole as well, its index made by that first listing.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const WS = 'agents-list-edges-1';
const OLD = 'agents-list-edges-1-old';
const api = inProcessApi([WS, OLD]);
const ids = Array.from({ length: 23 }, (_, i) => `agent-${String((i * 7) % 23).padStart(2, '0')}`);
const sorted = [...ids].sort();

async function registerAll(ws: string): Promise<void> {
  for (const id of ids) await api.ok('POST', ws, '/agents', { id, skills: ['sales'] });
}

/** Every page of `query` (without `after`), by `next`. */
async function pages(ws: string, query: string): Promise<{ ids: string[]; nexts: (string | null)[] }> {
  const out: string[] = [];
  const nexts: (string | null)[] = [];
  let after = '';
  for (let i = 0; i < 50; i++) {
    const page = await api.ok('GET', ws, `/agents?${query}${after}`);
    out.push(...(page.agents as Json[]).map((a) => a.id as string));
    nexts.push(page.next as string | null);
    if (page.next === null) return { ids: out, nexts };
    after = `&after=${encodeURIComponent(page.next as string)}`;
  }
  throw new Error('more than 50 pages');
}

describe('GET /agents by pages', () => {
  it('pages by id with after and next, to a next of null', async () => {
    await registerAll(WS);
    const first = await api.ok('GET', WS, '/agents?limit=5');
    expect((first.agents as Json[]).map((a) => a.id)).toEqual(sorted.slice(0, 5));
    expect(first.next).toBe(sorted[4]);
    const all = await pages(WS, 'limit=5');
    expect(all.ids).toEqual(sorted);
    expect(all.nexts).toEqual([sorted[4], sorted[9], sorted[14], sorted[19], null]);
    // Without limit: all 23 in one page, none after.
    expect(await api.ok('GET', WS, '/agents')).toMatchObject({ next: null });
    // After an id that is no agent's: the agents after it.
    const between = await api.ok('GET', WS, '/agents?after=agent-10a&limit=2');
    expect((between.agents as Json[]).map((a) => a.id)).toEqual(['agent-11', 'agent-12']);
  });

  it('by state: fewer than limit where few match, the pages still reaching every one', async () => {
    await api.ok('POST', WS, '/agents/agent-03/state', { state: 'away' });
    await api.ok('POST', WS, '/agents/agent-17/state', { state: 'away' });
    const away = await pages(WS, 'state=away&limit=1&minPosition=0-1');
    expect(away.ids).toEqual(['agent-03', 'agent-17']);
  });

  it('the longest-available listing takes no after and answers no next', async () => {
    await api.ok('POST', WS, '/agents/agent-05/state', { state: 'available' });
    const laa = await api.ok('GET', WS, '/agents?state=available&skill=sales');
    expect((laa.agents as Json[]).map((a) => a.id)).toEqual(['agent-05']);
    expect('next' in laa).toBe(false);
    const refused = await api.problem(
      'GET',
      WS,
      '/agents?state=available&skill=sales&after=agent-01',
      undefined,
      400,
      'invalid-request',
    );
    expect(refused.errors).toEqual([
      { path: 'after', message: 'is not taken with state=available and skill' },
    ]);
    const bad = await api.problem('GET', WS, '/agents?after=a%20b', undefined, 400, 'invalid-request');
    expect((bad.errors as Json[]).map((e) => e.path)).toEqual(['after']);
  });

  it('agents from before the index are listed whole, the index made by the first listing', async () => {
    await registerAll(OLD);
    const k = workspaceKeys(OLD);
    const admin: RedisClient = api.running.redis;
    await admin.del(k.agentIds);
    await admin.hdel(k.meta, 'agentIds');
    const all = await pages(OLD, 'limit=10');
    expect(all.ids).toEqual(sorted);
    expect(await admin.zcard(k.agentIds)).toBe(23);
    // Marked whole through the projections' checkpoint.
    const [markedAt, applied] = await admin.hmget(k.meta, 'agentIds', 'applied');
    expect(markedAt).toBe(applied);
  });
});
