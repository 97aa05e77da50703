/**
 * An agent's document in every state (offline, available, reserved with an offer out, busy,
 * wrapup with a contact still held, away) and with a capacity per channel with one channel full,
 * as every read gives it: `GET /agents/{id}`, `GET /agents`, the `AgentRegistered`/`AgentUpdated`
 * facts and `GET /state?at=` (the domain model's replay, which must give the same document).
 * Each is valid against the OpenAPI document's `Agent` schema, and that schema says which fields
 * are always there: those docs/API.md ("Documents") lists without `?`. It once required none, so
 * a client built on it had to treat `state`, `position` or `activeContacts` as possibly missing.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { componentValidator, doc, getAnswerSchema, getAnswerValidator } from '../support/openapi-schemas.ts';
import { sleep } from '../support/wait.ts';

const WS = 'agent-document-edges-1';
const api = inProcessApi([WS]);
const { ok, until } = api;

const validAgent = componentValidator('Agent');
const validList = getAnswerValidator('/v1/workspaces/{ws}/agents');

/** docs/API.md's agent fields, each with whether it is optional (`name?`). */
const documentedFields = (): { name: string; optional: boolean }[] => {
  const text = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
  const docs = text.slice(text.indexOf('### Documents'), text.indexOf('### Events'));
  const at = docs.indexOf('- Agent: `');
  const body = docs.slice(docs.indexOf('{', at) + 1, docs.indexOf('}`', at));
  return body
    .split(',')
    .map((f) => f.trim())
    .filter((f) => /^[A-Za-z]/.test(f))
    .map((f) => {
      const name = f.split(/[?:\s]/)[0]!;
      return { name, optional: f.startsWith(`${name}?`) };
    });
};

const sorted = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sorted)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.entries(v)
            .sort(([x], [y]) => (x < y ? -1 : 1))
            .map(([k, x]) => [k, sorted(x)]),
        )
      : v;

const checkValid = (label: string, d: unknown) => {
  expect(validAgent(d), `${label}: ${JSON.stringify(validAgent.errors)} in ${JSON.stringify(d)}`).toBe(true);
};

describe('the agent document against the OpenAPI schema, in every state', () => {
  it('requires the fields docs/API.md lists as always present, and nothing optional', () => {
    const fields = documentedFields();
    expect(fields.map((f) => f.name)).toEqual(
      expect.arrayContaining(['id', 'state', 'position', 'wrapUpUntil']),
    );
    const required = doc.components.schemas.Agent!.required;
    expect(required).toEqual(fields.filter((f) => !f.optional).map((f) => f.name));
    expect(getAnswerSchema('/v1/workspaces/{ws}/agents').required).toEqual(['agents']);
  });

  it('gives documents valid against it from each read, the replay the same as the projection', async () => {
    await ok('PUT', WS, '/settings', {
      channels: ['voice', 'chat'],
      offerTimeoutMs: 60_000,
      wrapUpMs: 60_000,
    });
    await ok('POST', WS, '/agents', {
      id: 'a',
      name: 'Ana',
      skills: [{ name: 'S', level: 3 }],
      capacity: { voice: 1, chat: 2 },
    });
    await ok('POST', WS, '/agents', { id: 'b', skills: ['S'], capacity: 2 });
    const seen: Json[] = [];
    const moments: { label: string; at: string; agents: Json[] }[] = [];
    const read = async (label: string) => {
      const list = await ok('GET', WS, '/agents');
      expect(validList(list), `${label}: ${JSON.stringify(validList.errors)}`).toBe(true);
      for (const d of list.agents as Json[]) {
        checkValid(`${label} GET /agents`, d);
        const one = await ok('GET', WS, `/agents/${d.id as string}`);
        checkValid(`${label} GET /agents/${d.id as string}`, one);
        seen.push(one);
      }
      // The replay at the last event gives the same documents as the projection.
      const events = (await ok('GET', WS, '/events?limit=1000')).events as Json[];
      const state = await ok('GET', WS, `/state?at=${events.at(-1)!.position as string}`);
      for (const d of state.agents as Json[]) checkValid(`${label} GET /state`, d);
      expect(sorted(state.agents), label).toEqual(sorted(list.agents));
      moments.push({ label, at: events.at(-1)!.position as string, agents: list.agents as Json[] });
      return list.agents as Json[];
    };
    const agent = (agents: Json[], id: string) => agents.find((x) => x.id === id)!;

    let now = await read('offline');
    expect(agent(now, 'a').state).toBe('offline');

    await ok('POST', WS, '/agents/a/state', { state: 'available' });
    await sleep(5);
    await ok('POST', WS, '/agents/b/state', { state: 'available' });
    now = await read('available');
    expect(Object.keys(agent(now, 'a').availableSinceByChannel as object).sort()).toEqual(['chat', 'voice']);

    // An offer out on voice: `a` is reserved, voice full, chat left.
    await ok('POST', WS, '/contacts', { id: 'v1', skills: ['S'], channel: 'voice' });
    await until(WS, '/agents/a', (d) => d.state === 'reserved');
    now = await read('reserved');
    expect(agent(now, 'a').availableSinceByChannel).toEqual({ chat: agent(now, 'a').availableSince });
    await ok('POST', WS, '/contacts/v1/accept', { agentId: 'a' });

    // `b` (capacity 2) takes two: busy.
    for (const id of ['k1', 'k2']) {
      await ok('POST', WS, '/contacts', { id, skills: ['S'], channel: 'voice' });
      await until(WS, `/contacts/${id}`, (c) => c.state === 'offered');
      await ok('POST', WS, `/contacts/${id}/accept`, { agentId: 'b' });
    }
    now = await read('busy');
    expect(agent(now, 'b').state).toBe('busy');
    expect(agent(now, 'a').state).toBe('available');

    // `b` completes one: wrapping up while it still holds the other.
    await ok('POST', WS, '/contacts/k1/complete');
    now = await read('wrapup');
    expect(agent(now, 'b')).toMatchObject({ state: 'wrapup', activeContacts: ['k2'], availableSince: null });
    expect(agent(now, 'b').wrapUpUntil).toEqual(expect.any(String));

    await ok('PATCH', WS, '/agents/a', { name: 'Ana B', wrapUpMs: 0 });
    await ok('POST', WS, '/agents/b/state', { state: 'away' });
    now = await read('away');
    expect(agent(now, 'b').state).toBe('away');

    const facts = ((await ok('GET', WS, '/events?limit=1000')).events as Json[]).filter(
      (e) => e.type === 'AgentRegistered' || e.type === 'AgentUpdated',
    );
    expect(facts.length).toBe(3);
    for (const e of facts) checkValid(`${e.type as string} data`, e.data);
    expect(seen.length).toBeGreaterThan(10);
    // Read again once the log has gone on: each moment's state is still what the reads gave then.
    for (const m of moments)
      expect(sorted((await ok('GET', WS, `/state?at=${m.at}`)).agents), `${m.label}, replayed later`).toEqual(
        sorted(m.agents),
      );
  });
});
