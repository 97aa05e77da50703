/**
 * GET /agents by id answers a page with `next` (a page by `state` or `skill` looks at 10,000 ids at
 * most, and may hold fewer than `limit`, or none): the client's `listAgents` reads on by `next`
 * until `limit` agents are found or none follow, so a filtered listing of a large workspace still
 * answers the first `limit` that match; `listAgentsPage` answers one page with its `next`. Against
 * a fake fetch answering pages as the server does.
 */
import { SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { expect, it } from 'vitest';

const agent = (id: string) => ({ id, state: 'away', presence: 'away', skills: ['s'], activeContacts: [] });

it('listAgents reads on by next until limit agents or no next; listAgentsPage one page', async () => {
  const asked: string[] = [];
  // Three pages of a filtered listing: none, two, one (and no next).
  const pages: Record<string, unknown> = {
    '': { agents: [], next: 'a-09999' },
    'a-09999': { agents: [agent('a-12000'), agent('a-15000')], next: 'a-19999' },
    'a-19999': { agents: [agent('a-20001')], next: null },
  };
  const fetch = (async (input: string | URL | Request) => {
    const url = new URL(String(input));
    asked.push(url.search);
    const body = pages[url.searchParams.get('after') ?? ''];
    return new Response(JSON.stringify(body), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof globalThis.fetch;
  const c = new SwitchboardClient({ url: 'http://a.invalid', workspace: 'w', fetch });

  expect((await c.listAgents({ state: 'away', limit: 10 })).map((a) => a.id)).toEqual([
    'a-12000',
    'a-15000',
    'a-20001',
  ]);
  expect(asked).toEqual([
    '?state=away&limit=10',
    '?state=away&limit=10&after=a-09999',
    '?state=away&limit=8&after=a-19999',
  ]);

  asked.length = 0;
  expect((await c.listAgents({ state: 'away', limit: 2 })).map((a) => a.id)).toEqual(['a-12000', 'a-15000']);
  expect(asked.length).toBe(2);

  asked.length = 0;
  expect(await c.listAgentsPage({ state: 'away', limit: 10 })).toEqual({ agents: [], next: 'a-09999' });
  expect(asked.length).toBe(1);
});

it('a next that does not move on (a server answering the same page again) is thrown, not read for ever', async () => {
  let asked = 0;
  const fetch = (async () => {
    asked++;
    return new Response(JSON.stringify({ agents: [], next: 'a' }), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof globalThis.fetch;
  const c = new SwitchboardClient({ url: 'http://a.invalid', workspace: 'w', fetch });
  const err = await c.listAgents({ state: 'away' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SwitchboardError);
  expect((err as SwitchboardError).detail).toMatch(/next \(a\) is not past the page's after \(a\)/);
  expect(asked).toBe(2);
});

it('a limit past one page (10,000) is read page after page, each asking at most 10,000', async () => {
  const asked: string[] = [];
  const fetch = (async (input: string | URL | Request) => {
    const url = new URL(String(input));
    asked.push(url.searchParams.get('limit') ?? '');
    const from = Number(url.searchParams.get('after') ?? -1) + 1;
    const n = Math.min(Number(url.searchParams.get('limit')), 25_000 - from);
    const agents = Array.from({ length: n }, (_, i) => agent(String(from + i).padStart(5, '0')));
    const next = from + n < 25_000 ? String(from + n - 1).padStart(5, '0') : null;
    return new Response(JSON.stringify({ agents, next }), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof globalThis.fetch;
  const c = new SwitchboardClient({ url: 'http://a.invalid', workspace: 'w', fetch });
  const all = await c.listAgents({ limit: 22_000 });
  expect(all.length).toBe(22_000);
  expect(all.at(-1)!.id).toBe('21999');
  expect(asked).toEqual(['10000', '10000', '2000']);
});

it('the longest-available listing is one page: its limit is sent as asked, never cut to 10,000', async () => {
  const asked: string[] = [];
  const fetch = (async (input: string | URL | Request) => {
    asked.push(new URL(String(input)).search);
    return new Response(JSON.stringify({ agents: [agent('a')] }), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof globalThis.fetch;
  const c = new SwitchboardClient({ url: 'http://a.invalid', workspace: 'w', fetch });
  expect((await c.listAgents({ state: 'available', skill: 'x', limit: 20_000 })).length).toBe(1);
  expect(asked).toEqual(['?state=available&skill=x&limit=20000']);
});
