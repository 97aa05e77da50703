/**
 * The timers a contact set when it was first queued (its maximum wait, its routing steps, its
 * preference's end) go when it is assigned; a transfer sets none of them again. Shown here: past all
 * of them, the transferred contact is still queued with the transfer's skills, no timer command was
 * appended after the transfer, no ContactExpired, ContactStepped or PreferenceEnded was recorded
 * for it, and an audit of the log finds nothing.
 */
import { expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'xfertimers';
const api = inProcessApi([WS]);
const { ok, until } = api;

it('the timers set before a transfer are gone and never fire', async () => {
  await ok('POST', WS, '/agents', { id: 'a1', skills: ['Loans'] });
  await ok('POST', WS, '/agents', { id: 'a2', skills: ['Loans'] });
  await ok('POST', WS, '/agents/a1/state', { state: 'available' });
  await ok('POST', WS, '/contacts', {
    id: 'c1',
    skills: ['Loans'],
    maxWaitMs: 800,
    steps: [{ afterMs: 600, skills: ['Cards'] }],
    preferredAgents: ['a1'],
    preferredForMs: 700,
  });
  await until(WS, '/contacts/c1', (c) => c.state === 'assigned');
  const moved = await ok('POST', WS, '/contacts/c1/transfer', { skills: ['Mortgages'] });
  expect(moved).toMatchObject({ state: 'queued', skills: ['Mortgages'] });
  expect(moved.expiresAt).toBeUndefined();

  // Past the maximum wait, the step and the preference's end, counted from the first queueing.
  await new Promise((r) => setTimeout(r, 1500));
  const after = await ok('GET', WS, '/contacts/c1');
  expect(after).toMatchObject({ state: 'queued', skills: ['Mortgages'] });
  expect(after.step).toBeUndefined();
  const types = new Set(['ContactExpired', 'ContactStepped', 'PreferenceEnded']);
  const page = (await ok('GET', WS, '/events?limit=1000')) as { events: { type: string }[] };
  expect(page.events.filter((e) => types.has(e.type))).toEqual([]);

  // The step's and the preference's timers went with the maximum wait's at the assignment.
  const commands = await api.running.redis.xrange(workspaceKeys(WS).commands, '-', '+');
  const fired = commands
    .map(([, f]) => f[1])
    .slice(commands.findIndex(([, f]) => f[1] === 'TransferContact'));
  expect(fired).toEqual(['TransferContact']);
  const report = await auditWorkspace(api.running.redis, WS, { idle: true });
  expect(report.violations).toEqual([]);
});
