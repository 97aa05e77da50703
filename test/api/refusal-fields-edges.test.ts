/**
 * The projector's refusals caused by one request field name it in `errors`, as a TypeScript 400
 * names its bad fields (`{path, message}`, the path as the request body names it, the message
 * saying what is wrong and what to do): the skills past the skill-set limit, the channels a
 * PUT /settings leaves out, the setting that cannot change now, an id already taken, an answer
 * from an agent the offer is not for. Through real requests, against a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { Command } from '../../src/domain/commands.ts';
import { MAX_SKILL_SETS_PER_SKILL } from '../../src/domain/model.ts';
import { inProcessApi } from '../support/api.ts';

const WS = { limit: 'rf-limit', channels: 'rf-channels', aging: 'rf-aging', pool: 'rf-pool', ids: 'rf-ids' };

describe('refusals of the projector name the request field at fault in errors', () => {
  const api = inProcessApi(Object.values(WS));

  it('skill-set-limit names skills, for POST /agents and PATCH /agents/{id}', async () => {
    const ws = WS.limit;
    // The limit filled through the command stream (the projector applies them), then real requests.
    const sets: Command[] = Array.from({ length: MAX_SKILL_SETS_PER_SKILL }, (_, i) => ({
      type: 'RegisterAgent',
      agentId: `a${i}`,
      skills: ['X', `s${String(i).padStart(5, '0')}`],
      capacity: 1,
    }));
    await Promise.all(sets.map((command) => appendCommand(api.running.redis, { workspace: ws, command })));
    await api.until(ws, `/agents/a${MAX_SKILL_SETS_PER_SKILL - 1}`, (a) => a.id !== undefined, 10_000);

    const posted = await api.problem(
      'POST',
      ws,
      '/agents',
      { id: 'over', skills: ['X', 'new'] },
      422,
      'skill-set-limit',
    );
    expect(posted.errors).toEqual([
      {
        path: 'skills',
        message: expect.stringMatching(
          /^"X" already belongs to 1024 distinct agent skill sets .*; give this agent a skill set another agent has/,
        ),
      },
    ]);
    await api.ok('POST', ws, '/agents', { id: 'other', skills: ['Y', 'new'] });
    const patched = await api.problem(
      'PATCH',
      ws,
      '/agents/other',
      { skills: ['X', 'new'] },
      422,
      'skill-set-limit',
    );
    expect(patched.errors).toEqual([
      { path: 'skills', message: expect.stringMatching(/^"X" already belongs/) },
    ]);
  });

  it('channels-not-removable names channels', async () => {
    const ws = WS.channels;
    await api.ok('PUT', ws, '/settings', { channels: ['voice', 'chat', 'email'] });
    const p = await api.problem(
      'PUT',
      ws,
      '/settings',
      { channels: ['voice'] },
      422,
      'channels-not-removable',
    );
    expect(p.errors).toEqual([
      {
        path: 'channels',
        message: expect.stringMatching(/^leaves out "chat", "email".*send every current channel too/),
      },
    ]);
  });

  it('settings-conflict names priorityWeightMs (set or removed while contacts are queued)', async () => {
    const ws = WS.aging;
    await api.ok('POST', ws, '/contacts', { id: 'waits', skills: ['nobody'] });
    const set = await api.problem(
      'PUT',
      ws,
      '/settings',
      { priorityWeightMs: 1000 },
      409,
      'settings-conflict',
    );
    expect(set.errors).toEqual([
      {
        path: 'priorityWeightMs',
        message: expect.stringMatching(/^can be set only while no contact is queued/),
      },
    ]);
    await api.ok('POST', ws, '/contacts/waits/abandon');
    await api.ok('PUT', ws, '/settings', { priorityWeightMs: 1000 });
    await api.ok('POST', ws, '/contacts', { id: 'waits-2', skills: ['nobody'] });
    // Left out, it would be removed: the field is named as a missing one of a 400 is.
    const removed = await api.problem('PUT', ws, '/settings', {}, 409, 'settings-conflict');
    expect(removed.errors).toEqual([
      {
        path: 'priorityWeightMs',
        message: expect.stringMatching(/^can be removed only while no contact is queued/),
      },
    ]);
  });

  it('settings-conflict names agentSelection (to or from least-occupied while agents can take work)', async () => {
    const ws = WS.pool;
    await api.ok('POST', ws, '/agents', { id: 'ann', skills: ['x'] });
    await api.ok('POST', ws, '/agents/ann/state', { state: 'available' });
    const p = await api.problem(
      'PUT',
      ws,
      '/settings',
      { agentSelection: 'least-occupied' },
      409,
      'settings-conflict',
    );
    expect(p.errors).toEqual([
      {
        path: 'agentSelection',
        message: expect.stringMatching(/^can become "least-occupied" only while no agent can take work/),
      },
    ]);
  });

  it('agent-exists and contact-exists name id; offer-not-yours names agentId', async () => {
    const ws = WS.ids;
    await api.ok('PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await api.ok('POST', ws, '/agents', { id: 'ann', skills: ['x'] });
    const agent = await api.problem('POST', ws, '/agents', { id: 'ann', skills: ['x'] }, 409, 'agent-exists');
    expect(agent.errors).toEqual([
      { path: 'id', message: expect.stringMatching(/^"ann" is registered already; .*PATCH/) },
    ]);
    await api.ok('POST', ws, '/agents/ann/state', { state: 'available' });
    await api.ok('POST', ws, '/contacts', { id: 'rings', skills: ['x'] });
    const contact = await api.problem(
      'POST',
      ws,
      '/contacts',
      { id: 'rings', skills: ['x'] },
      409,
      'contact-exists',
    );
    expect(contact.errors).toEqual([
      { path: 'id', message: expect.stringMatching(/^"rings" was queued before; use a new id/) },
    ]);
    await api.until(ws, '/contacts/rings', (c) => c.state === 'offered');
    const answer = await api.problem(
      'POST',
      ws,
      '/contacts/rings/accept',
      { agentId: 'bob' },
      409,
      'offer-not-yours',
    );
    expect(answer.errors).toEqual([
      {
        path: 'agentId',
        message: expect.stringMatching(/^"bob" is not the agent this contact is offered to; only that agent/),
      },
    ]);
  });
});
