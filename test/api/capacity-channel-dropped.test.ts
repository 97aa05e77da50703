/**
 * A `PATCH` giving an agent a capacity per channel that leaves out the channel of a contact it
 * holds: the agent keeps that contact (a lowered capacity never takes work away), takes no new
 * contact of that channel, and its completion gives nothing back on a channel it no longer has:
 * the agent's document and routing stay as the capacity says, and an audit of the log finds
 * nothing.
 */
import { expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'capdrop';
const api = inProcessApi([WS]);
const { ok, until } = api;

it('an agent whose new per-channel capacity leaves out a held contact’s channel keeps it, then takes only what the capacity names', async () => {
  await ok('PUT', WS, '/settings', { channels: ['voice', 'chat'] });
  await ok('POST', WS, '/agents', { id: 'a1', skills: ['Billing'], capacity: { voice: 1, chat: 1 } });
  await ok('POST', WS, '/agents/a1/state', { state: 'available' });
  await ok('POST', WS, '/contacts', { id: 'chat-1', skills: ['Billing'], channel: 'chat' });
  await until(WS, '/contacts/chat-1', (c) => c.state === 'assigned' && c.agentId === 'a1');

  await ok('PATCH', WS, '/agents/a1', { capacity: { voice: 2 } });
  const held = await until(WS, '/agents/a1', (a) => JSON.stringify(a.capacity) === '{"voice":2}');
  expect(held.activeContacts).toEqual(['chat-1']);

  await ok('POST', WS, '/contacts/chat-1/complete');
  const after = await until(WS, '/agents/a1', (a) => (a.activeContacts as string[]).length === 0);
  expect(Object.keys((after.availableSinceByChannel as Record<string, string>) ?? {})).toEqual(['voice']);

  // No chat for a1 any more; voice, up to 2.
  await ok('POST', WS, '/contacts', { id: 'chat-2', skills: ['Billing'], channel: 'chat' });
  for (const id of ['v1', 'v2', 'v3']) await ok('POST', WS, '/contacts', { id, skills: ['Billing'] });
  await until(WS, '/contacts/v2', (c) => c.state === 'assigned');
  await new Promise((r) => setTimeout(r, 300));
  const states = await Promise.all(
    ['chat-2', 'v1', 'v2', 'v3'].map(async (id) => [id, (await ok('GET', WS, `/contacts/${id}`)).state]),
  );
  expect(Object.fromEntries(states)).toEqual({
    'chat-2': 'queued',
    v1: 'assigned',
    v2: 'assigned',
    v3: 'queued',
  });

  const report = await auditWorkspace(api.running.redis, WS, { idle: true });
  expect(report.violations).toEqual([]);
});
