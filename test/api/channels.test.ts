/**
 * Channels through the API (docs/API.md, "Channels"), in-process against a real Redis: the
 * settings declare channels, a contact names its channel, an agent's capacity is one number or per
 * channel. Malformed channel fields answer 400 naming the field and append nothing; undeclared
 * channels and removing a channel answer 422 with documented types and change no document; and
 * routing: each channel with its own room and available-since, agents of any channel beside them.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';

const WS = { malformed: 'api-ch-malformed', refused: 'api-ch-refused', routing: 'api-ch-routing' } as const;
const api = inProcessApi(Object.values(WS));
const { call, ok, problem } = api;
const at = (ws: string, path: string) => `/v1/workspaces/${ws}${path}`;

async function eventually<T>(read: () => Promise<T>, good: (v: T) => boolean): Promise<T> {
  let last: T | undefined;
  const r = await waitFor(
    () => `a read that satisfies the condition, last ${JSON.stringify(last)}`,
    async () => {
      last = await read();
      return good(last) ? { value: last } : undefined;
    },
    { timeoutMs: 5000, everyMs: 20 },
  );
  return r.value;
}

describe('malformed channel fields: 400 naming the field, nothing appended', () => {
  const cases: [string, 'POST' | 'PATCH' | 'PUT', string, unknown, string][] = [
    ['channels not a list', 'PUT', '/settings', { channels: 'chat' }, 'channels'],
    ['channels empty', 'PUT', '/settings', { channels: [] }, 'channels'],
    ['a channel with a capital', 'PUT', '/settings', { channels: ['Chat'] }, 'channels'],
    ['a channel starting with a digit', 'PUT', '/settings', { channels: ['1x'] }, 'channels'],
    [
      '17 channels',
      'PUT',
      '/settings',
      { channels: Array.from({ length: 17 }, (_, i) => `c${i}`) },
      'channels',
    ],
    ['a number as channel', 'POST', '/contacts', { skills: ['a'], channel: 3 }, 'channel'],
    ['a 33-character channel', 'POST', '/contacts', { skills: ['a'], channel: 'c'.repeat(33) }, 'channel'],
    ['an empty channel', 'POST', '/contacts', { skills: ['a'], channel: '' }, 'channel'],
    ['capacity as an empty object', 'POST', '/agents', { id: 'a1', skills: ['a'], capacity: {} }, 'capacity'],
    [
      'capacity 0 on a channel',
      'POST',
      '/agents',
      { id: 'a1', skills: ['a'], capacity: { chat: 0 } },
      'capacity',
    ],
    [
      'capacity naming a bad channel',
      'POST',
      '/agents',
      { id: 'a1', skills: ['a'], capacity: { 'C hat': 1 } },
      'capacity',
    ],
    ['capacity as a list', 'PATCH', '/agents/a1', { capacity: [1, 2] }, 'capacity'],
    ['capacity 2.5 on a channel', 'PATCH', '/agents/a1', { capacity: { voice: 2.5 } }, 'capacity'],
  ];
  for (const [name, method, path, body, field] of cases)
    it(`${method} ${path} with ${name}`, async () => {
      const before = await api.running.redis.xlen(workspaceKeys(WS.malformed).commands);
      const p = await problem(method, WS.malformed, path, body, 400, 'invalid-request');
      expect((p.errors as { path: string }[]).map((e) => e.path)).toContain(field);
      expect(await api.running.redis.xlen(workspaceKeys(WS.malformed).commands)).toBe(before);
    });
});

describe('undeclared channels and removing one: 422, nothing changed', () => {
  it('refuses a contact or a capacity on a channel not declared, and a settings change leaving one out', async () => {
    const ws = WS.refused;
    expect((await ok('GET', ws, '/settings')).channels).toEqual(['voice']);
    const p = await problem(
      'POST',
      ws,
      '/contacts',
      { id: 'c1', skills: ['a'], channel: 'chat' },
      422,
      'channel-not-declared',
    );
    expect(p.detail).toContain('"chat"');
    expect((await call('GET', at(ws, '/contacts/c1'))).status).toBe(404);
    await problem(
      'POST',
      ws,
      '/agents',
      { id: 'a1', skills: ['a'], capacity: { chat: 2 } },
      422,
      'channel-not-declared',
    );
    expect((await call('GET', at(ws, '/agents/a1'))).status).toBe(404);
    await ok('POST', ws, '/agents', { id: 'a2', skills: ['a'] });
    await problem(
      'PATCH',
      ws,
      '/agents/a2',
      { capacity: { voice: 1, email: 1 } },
      422,
      'channel-not-declared',
    );
    expect((await ok('GET', ws, '/agents/a2')).capacity).toBe(1);

    expect((await ok('PUT', ws, '/settings', { channels: ['voice', 'chat'] })).channels).toEqual([
      'chat',
      'voice',
    ]);
    const r = await problem('PUT', ws, '/settings', { channels: ['chat'] }, 422, 'channels-not-removable');
    expect(r.detail).toContain('"voice"');
    // Left out: the channels stay; the other fields take their defaults.
    expect(await ok('PUT', ws, '/settings', { wrapUpMs: 10 })).toMatchObject({
      wrapUpMs: 10,
      channels: ['chat', 'voice'],
    });
    expect((await ok('GET', ws, '/settings')).channels).toEqual(['chat', 'voice']);
  });
});

describe('routing by channel', () => {
  it('each channel has its own room and available-since; agents of any channel serve every channel', async () => {
    const ws = WS.routing;
    await ok('PUT', ws, '/settings', { channels: ['chat', 'voice'] });
    const multi = await ok('POST', ws, '/agents', {
      id: 'multi',
      skills: ['a'],
      capacity: { voice: 1, chat: 2 },
    });
    expect(multi.capacity).toEqual({ chat: 2, voice: 1 });
    await ok('POST', ws, '/agents', { id: 'phone', skills: ['a'] });
    await ok('POST', ws, '/agents', { id: 'chatty', skills: ['a'], capacity: { chat: 1 } });
    const m = await ok('POST', ws, '/agents/multi/state', { state: 'available' });
    expect(Object.keys(m.availableSinceByChannel as Json).sort()).toEqual(['chat', 'voice']);
    expect(m.availableSince).toBe((m.availableSinceByChannel as Json).chat);
    await ok('POST', ws, '/agents/phone/state', { state: 'available' });
    await ok('POST', ws, '/agents/chatty/state', { state: 'available' });

    const queue = async (id: string, channel?: string) =>
      ok('POST', ws, '/contacts', { id, skills: ['a'], ...(channel ? { channel } : {}) });
    const assignedTo = async (id: string) =>
      (
        await eventually(
          () => ok('GET', ws, `/contacts/${id}`),
          (c) => c.state === 'assigned',
        )
      ).agentId;

    expect((await queue('c1', 'chat')).channel).toBe('chat');
    expect(await assignedTo('c1')).toBe('multi'); // the longest available for chat
    await queue('c2', 'chat');
    expect(await assignedTo('c2')).toBe('multi'); // chat still has room: it kept its place
    await queue('c3', 'chat');
    expect(await assignedTo('c3')).toBe('phone'); // multi's chat is full; phone takes any channel
    await queue('c4', 'chat');
    expect(await assignedTo('c4')).toBe('chatty');
    await queue('c5', 'voice');
    expect(await assignedTo('c5')).toBe('multi'); // voice has its own room
    const full = await ok('GET', ws, '/agents/multi');
    expect(full).toMatchObject({ state: 'busy', availableSince: null });
    expect(full.availableSinceByChannel).toBeUndefined();

    // A chat waits: nobody has room on chat; stats count it by channel.
    await queue('c6', 'chat');
    const stats = await eventually(
      () => ok('GET', ws, '/stats'),
      (s) => s.queued === 1,
    );
    expect(stats.queueByChannel).toEqual({ chat: { a: 1 } });
    expect(stats.queueBySkills).toEqual({ a: 1 });
    // A completed chat gives multi's chat its room back: c6 goes there.
    await ok('POST', ws, '/contacts/c1/complete');
    expect(await assignedTo('c6')).toBe('multi');

    const { events } = await ok('GET', ws, '/events?limit=1000&type=AssignmentMade');
    const made = (events as { data: Json }[]).map((e) => `${e.data.contactId}:${e.data.channel}`);
    expect(made).toEqual(['c1:chat', 'c2:chat', 'c3:chat', 'c4:chat', 'c5:voice', 'c6:chat']);
  });
});
