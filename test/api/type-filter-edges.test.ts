/**
 * Edges of the `type=` filter of `GET /events` and of the live feed, against docs/API.md ("Events:
 * audit and live": each item of `type` is a known event type; a `400` names the query field). An
 * empty item (`type=AssignmentMade,,ContactQueued`, `type=,AssignmentMade`, `type=AssignmentMade,`)
 * was passed over: a typo in a list (a stray comma, an item lost as a client built the list) was
 * taken, and the filter kept whatever the other items named. `type=` alone, or `type=,`, names no
 * type at all: it was a `400` saying the items must be event types, with no word of what was wrong.
 * Now each is a `400` naming `type` and saying it holds an empty item, or names no type. The
 * TypeScript client sends no `type` for an empty list (all types, as documented), and an empty
 * string in its list reaches the server and is refused naming `type`, as a caller's mistake.
 * One real instance, its own redis-server, a real `ws` client.
 */
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { SwitchboardClient, SwitchboardError } from '../../src/client/index.ts';
import type { EventType } from '../../src/client/types.ts';
import { inProcessApi } from '../support/api.ts';
import { type LiveOpen, tryLiveOpen } from '../support/live-open.ts';

const WS = 'type-filter-edges';
const api = inProcessApi([WS]);

type Problem = { type: string; detail: string; errors?: { path: string; message: string }[] };
type Outcome = LiveOpen;

/** Opens the feed with `query`: `{open: true}` (then closed), or the refusal as answered. */
const tryOpen = (query: string): Promise<Outcome> =>
  tryLiveOpen(api.running.url!, `/v1/workspaces/${WS}/events/live?${query}`);

const EMPTY_ITEM = ['type=AssignmentMade,,ContactQueued', 'type=,AssignmentMade', 'type=AssignmentMade,'];
const NO_TYPE = ['type=', 'type=,', 'type=,,'];

function expectRefusal(status: number, body: Problem, words: RegExp): void {
  expect(status).toBe(400);
  expect(body.type).toBe('/problems/invalid-request');
  expect(body.errors).toHaveLength(1);
  expect(body.errors![0]!.path).toBe('type');
  expect(body.errors![0]!.message).toMatch(words);
}

describe('GET /events ?type=', () => {
  it.each(EMPTY_ITEM)('%s is a 400 naming `type` and its empty item', async (query) => {
    const r = await api.call('GET', `/v1/workspaces/${WS}/events?${query}`);
    expectRefusal(r.status, r.body as Problem, /an empty item/);
  });

  it.each(NO_TYPE)('%s names no type: a 400 naming `type`', async (query) => {
    const r = await api.call('GET', `/v1/workspaces/${WS}/events?${query}`);
    expectRefusal(r.status, r.body as Problem, /names no event type/);
  });

  it('a list of known types is taken; an unknown one is still named', async () => {
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['x'] });
    const page = await api.until(WS, '/events?type=AgentRegistered,ContactQueued', (v) =>
      (v.events as unknown[]).some((e) => (e as { type: string }).type === 'AgentRegistered'),
    );
    expect((page.events as { type: string }[]).every((e) => e.type === 'AgentRegistered')).toBe(true);
    const r = await api.call('GET', `/v1/workspaces/${WS}/events?type=AgentRegistered,Nope`);
    expectRefusal(r.status, r.body as Problem, /unknown: Nope/);
  });
});

describe('live feed ?type=', () => {
  it.each([...EMPTY_ITEM, ...NO_TYPE])(
    '%s is refused with a 400 naming `type` before the upgrade',
    async (query) => {
      const out = await tryOpen(query);
      expect('status' in out).toBe(true);
      if (!('status' in out)) return;
      expectRefusal(out.status, out.body, query.match(/[A-Z]/) ? /an empty item/ : /names no event type/);
    },
  );

  it('a list of known types opens', async () => {
    expect(await tryOpen('type=AssignmentMade,ContactQueued')).toEqual({ open: true });
  });
});

describe('the TypeScript client', () => {
  it('sends no `type` for an empty list, and an empty string in its list is refused naming `type`', async () => {
    const client = new SwitchboardClient({ url: api.running.url!, workspace: WS, retries: 0 });
    const all = await client.events({ types: [] });
    expect(all.events.length).toBeGreaterThan(0);
    for (const types of [['AgentRegistered', ''], ['']] as EventType[][]) {
      const err = await client.events({ types }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SwitchboardError);
      expect((err as SwitchboardError).status).toBe(400);
      expect((err as SwitchboardError).errors.map((e) => e.path)).toEqual(['type']);
    }
  });
});

describe('the OpenAPI document', () => {
  it("the `type` parameter's pattern refuses what the server refuses, on both routes", () => {
    const paths = openapi.paths as unknown as Record<
      string,
      { get: { parameters: { name: string; schema: { pattern?: string; description?: string } }[] } }
    >;
    for (const route of ['/v1/workspaces/{ws}/events', '/v1/workspaces/{ws}/events/live']) {
      const schema = paths[route]!.get.parameters.find((p) => p.name === 'type')!.schema;
      expect(schema.description).toMatch(/empty item/);
      const pattern = new RegExp(schema.pattern!);
      for (const q of [...EMPTY_ITEM, ...NO_TYPE, 'type=AssignmentMade,Nope'])
        expect(pattern.test(q.slice('type='.length)), q).toBe(false);
      expect(pattern.test('AssignmentMade,ContactQueued')).toBe(true);
      expect(pattern.test('CommandRejected')).toBe(true);
    }
  });
});
