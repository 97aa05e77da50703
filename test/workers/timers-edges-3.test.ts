/**
 * A contact that stops waiting (assigned, with or without an offer; abandoned; expired) takes its
 * routing step's and its preference's timers out with its maximum wait's. They stayed in the
 * timers set and fired later as commands that changed nothing: log entries for no reason, and a
 * discovered workspace kept marked active until the last of them. The auditor now reports such a
 * timer as one the state does not need (test/audit/timers-audit.test.ts), as it does an offer's,
 * a wrap-up's or a maximum wait's.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';
import { sleep } from '../support/wait.ts';

const WS = 'timers-edges-3';
const OFFERS = 'timers-edges-3-offers';
const AUDITED = 'timers-edges-3-audited';
const api = inProcessApi([WS, OFFERS, AUDITED]);

/** A contact with a routing step, a preference and a maximum wait, all far off. */
const waiting = (id: string, skills: string[]) => ({
  id,
  skills,
  maxWaitMs: 60_000,
  steps: [
    { afterMs: 30_000, skills: ['Later'] },
    { afterMs: 40_000, skills: ['Latest'] },
  ],
  preferredAgents: ['a1'],
  preferredForMs: 20_000,
});

const timersOf = async (ws: string, contactId: string): Promise<string[]> =>
  (await api.running.redis.zrange(workspaceKeys(ws).timers, 0, -1)).filter((m) =>
    m.startsWith(`${m.charAt(0)}|${contactId}|`),
  );

const commandTypes = async (ws: string): Promise<string[]> =>
  (await api.running.redis.xrange(workspaceKeys(ws).commands, '-', '+')).map(
    ([, f]) => f[f.indexOf('type') + 1]!,
  );

describe('a contact that stops waiting takes its timers out', () => {
  it('assigned at once, abandoned, expired: no timer of it is left', async () => {
    // Queued while nobody can take it: its timers are set.
    await api.ok('POST', WS, '/contacts', waiting('assigned', ['Loans']));
    expect((await timersOf(WS, 'assigned')).sort()).toEqual([
      'f|assigned|1',
      'm|assigned|1',
      'r|assigned|1|1',
    ]);
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['Loans'] });
    await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
    await api.until(WS, '/contacts/assigned', (c) => c.state === 'assigned');
    expect(await timersOf(WS, 'assigned')).toEqual([]);

    await api.ok('POST', WS, '/contacts', waiting('abandoned', ['Nobody']));
    expect(await timersOf(WS, 'abandoned')).toHaveLength(3);
    await api.ok('POST', WS, '/contacts/abandoned/abandon');
    expect(await timersOf(WS, 'abandoned')).toEqual([]);

    await api.ok('POST', WS, '/contacts', { ...waiting('expired', ['Nobody']), maxWaitMs: 300 });
    await api.until(WS, '/contacts/expired', (c) => c.state === 'expired');
    expect(await timersOf(WS, 'expired')).toEqual([]);
  });

  it('an accepted offer, and one after a routing step: no timer of it is left', async () => {
    await api.ok('PUT', OFFERS, '/settings', { offerTimeoutMs: 30_000 });
    await api.ok('POST', OFFERS, '/agents', { id: 'a1', skills: ['Later'] });
    await api.ok('POST', OFFERS, '/agents/a1/state', { state: 'available' });
    // Its first step comes soon: the second step's timer is the one pending when it is accepted.
    await api.ok('POST', OFFERS, '/contacts', {
      ...waiting('c1', ['Nobody']),
      steps: [
        { afterMs: 100, skills: ['Later'] },
        { afterMs: 40_000, skills: ['Latest'] },
      ],
    });
    await api.until(OFFERS, '/contacts/c1', (c) => c.state === 'offered');
    expect((await timersOf(OFFERS, 'c1')).sort()).toEqual(['f|c1|1', 'm|c1|1', 'o|c1|1', 'r|c1|1|2']);
    await api.ok('POST', OFFERS, '/contacts/c1/accept', { agentId: 'a1' });
    expect(await timersOf(OFFERS, 'c1')).toEqual([]);
  });

  it('no timer command comes for a contact once it is assigned', async () => {
    await api.ok('POST', AUDITED, '/agents', { id: 'a1', skills: ['Loans'] });
    await api.ok('POST', AUDITED, '/agents/a1/state', { state: 'available' });
    await api.ok('POST', AUDITED, '/contacts', {
      ...waiting('c1', ['Loans']),
      steps: [{ afterMs: 400, skills: ['Cards'] }],
      preferredAgents: ['a1'],
      preferredForMs: 300,
    });
    await api.until(AUDITED, '/contacts/c1', (c) => c.state === 'assigned');
    await sleep(900);
    expect(await commandTypes(AUDITED)).toEqual(['RegisterAgent', 'ChangeAgentState', 'QueueContact']);
    expect((await auditWorkspace(api.running.redis, AUDITED, { idle: true })).violations).toEqual([]);
  });
});
