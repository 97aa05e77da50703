/**
 * A transfer ends a contact's maximum wait (docs/API.md, "Offers, wrap-up and maximum wait": the
 * transferred contact "has no maximum wait any more"). Its document says so by its `expiresAt`,
 * gone; `maxWaitMs` stays the maximum wait it was given when queued (documents: "its own maximum
 * wait, when given"), as contacts transferred before kept it. The auditor's replay of the log gives
 * the same document as the live projection.
 */
import { describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'transfer-max-wait';

describe('a transferred contact has no maximum wait any more', () => {
  const api = inProcessApi([WS]);

  it('drops expiresAt from its document (maxWaitMs stays as given), as the auditor replays it', async () => {
    await api.ok('POST', WS, '/agents', { id: 'tom', skills: ['support'] });
    await api.ok('POST', WS, '/agents/tom/state', { state: 'available' });
    const queued = await api.ok('POST', WS, '/contacts', {
      id: 'c1',
      skills: ['support'],
      maxWaitMs: 600_000,
    });
    expect(queued).toMatchObject({ maxWaitMs: 600_000, expiresAt: expect.any(String) });
    await api.until(WS, '/contacts/c1', (c) => c.state === 'assigned');

    const moved = await api.ok('POST', WS, '/contacts/c1/transfer', { skills: ['billing'] });
    expect(moved).toMatchObject({ state: 'queued', skills: ['billing'] });
    expect(moved).not.toHaveProperty('expiresAt');
    expect(moved).toMatchObject({ maxWaitMs: 600_000 });
    const doc = await api.ok('GET', WS, '/contacts/c1');
    expect(doc).not.toHaveProperty('expiresAt');
    expect(doc).toMatchObject({ maxWaitMs: 600_000 });

    const report = await auditWorkspace(api.running.redis, WS);
    expect(report.violations).toEqual([]);
    expect(report.state).toBe('compared');
  });
});
