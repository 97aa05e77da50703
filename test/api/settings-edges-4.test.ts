/**
 * A PUT /settings that meets both of its conflicts, priority aging set while contacts are queued
 * and least-occupied chosen while agents are available, is one 409 naming both fields in `errors`,
 * where it named only priorityWeightMs and the client learned of agentSelection on its next try.
 * The title and detail stay the first conflict's (as logs have always held them: an older log
 * audits as it did). Nothing changes; the audit re-checks the refusal.
 */
import { describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'settings-edges-4';
const api = inProcessApi([WS]);
const { ok, problem } = api;

describe('PUT /settings with two conflicts', () => {
  it('is one 409 naming priorityWeightMs and agentSelection; nothing changes', async () => {
    await ok('POST', WS, '/agents', { id: 'a1', skills: ['s'] });
    await ok('POST', WS, '/agents/a1/state', { state: 'available' });
    await ok('POST', WS, '/contacts', { id: 'c1', skills: ['t'] });
    const before = await ok('GET', WS, '/settings');

    const body = await problem(
      'PUT',
      WS,
      '/settings',
      { priorityWeightMs: 1000, agentSelection: 'least-occupied' },
      409,
      'settings-conflict',
    );
    expect(body.title).toBe('Contacts are queued');
    expect(body.detail).toMatch(/^priorityWeightMs can be set only while no contact is queued/);
    const errors = body.errors as { path: string; message: string }[];
    expect(errors.map((e) => e.path)).toEqual(['priorityWeightMs', 'agentSelection']);
    expect(errors[1]!.message).toMatch(/^can become "least-occupied" only while no agent can take work/);
    expect(await ok('GET', WS, '/settings')).toEqual(before);

    // One of them alone: named alone, as before.
    const one = await problem('PUT', WS, '/settings', { priorityWeightMs: 1000 }, 409, 'settings-conflict');
    expect(one.title).toBe('Contacts are queued');
    expect((one.errors as { path: string }[]).map((e) => e.path)).toEqual(['priorityWeightMs']);

    const report = await auditWorkspace(api.running.redis, WS, { idle: true });
    expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  });
});
