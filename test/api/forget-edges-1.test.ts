/**
 * Commands and reads naming a contact once CONTACT_RETENTION has forgotten it (docs/API.md,
 * "Finished contacts"): a repeat of the Idempotency-Key that queued it answers its first `201` and
 * appends nothing (also once the id is queued again); every command naming it is a documented
 * problem (`404 contact-not-found`), applied by nothing; its events stay in `GET /events`, the
 * counters of `/stats` do not move, and the audit of the log finds nothing wrong.
 */
import { expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';

const ws = 'forget-edges-1';
const api = inProcessApi([ws], {
  env: { CONTACT_RETENTION: '300ms', ARCHIVE_EVERY_MS: '50', LOG_RETENTION: '24h' },
});

async function post(path: string, body?: unknown, key?: string) {
  const res = await api.running.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${ws}${path}`,
    headers: key ? { 'idempotency-key': key } : {},
    ...(body !== undefined ? { payload: body as object } : {}),
  });
  return { status: res.statusCode, headers: res.headers, body: res.json() as Record<string, unknown> };
}

const commands = () => api.running.redis.xlen(workspaceKeys(ws).commands);

it('commands and reads naming a forgotten contact: documented answers, nothing applied twice', async () => {
  await api.ok('POST', ws, '/agents', { id: 'ana', skills: ['A'] });
  await api.ok('POST', ws, '/agents/ana/state', { state: 'available' });
  const first = await post('/contacts', { id: 'c1', skills: ['A'] }, 'queue-c1');
  expect(first.status, JSON.stringify(first.body)).toBe(201);
  await api.until(ws, '/contacts/c1', (c) => c.state === 'assigned');
  expect((await post('/contacts/c1/complete')).status).toBe(200);
  const stats = await api.ok('GET', ws, '/stats');
  await waitFor(
    () => 'c1 forgotten',
    async () =>
      (await api.call('GET', `/v1/workspaces/${ws}/contacts/c1`)).status === 404 ? { value: 1 } : undefined,
    { timeoutMs: 5000, everyMs: 20 },
  );
  await api.problem('GET', ws, '/contacts/c1', undefined, 404, 'contact-not-found');

  // The repeat of the request that queued it: its first outcome, nothing appended.
  const n = await commands();
  const again = await post('/contacts', { id: 'c1', skills: ['A'] }, 'queue-c1');
  expect(again.status, JSON.stringify(again.body)).toBe(201);
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.body).toEqual(first.body);
  expect(again.headers.location).toBe(first.headers.location);
  expect(await commands()).toBe(n);
  const reused = await post('/contacts', { id: 'c1', skills: ['B'] }, 'queue-c1');
  expect(reused.status).toBe(422);
  expect(reused.body.type).toBe('/problems/idempotency-key-reused');

  // Every command naming it: 404 contact-not-found, and nothing changes.
  await api.problem('POST', ws, '/contacts/c1/complete', undefined, 404, 'contact-not-found');
  await api.problem('POST', ws, '/contacts/c1/abandon', undefined, 404, 'contact-not-found');
  await api.problem('POST', ws, '/contacts/c1/transfer', { skills: ['A'] }, 404, 'contact-not-found');
  await api.problem('POST', ws, '/contacts/c1/accept', { agentId: 'ana' }, 404, 'contact-not-found');
  await api.problem('POST', ws, '/contacts/c1/reject', { agentId: 'ana' }, 404, 'contact-not-found');

  // Its history stays; the counters do not move.
  const events = await api.ok('GET', ws, '/events?type=ContactsForgotten,ContactCompleted');
  const list = events.events as { type: string; data: { contactIds?: string[]; contactId?: string } }[];
  expect(list.map((e) => e.type)).toEqual(['ContactCompleted', 'ContactsForgotten']);
  expect(list[1]!.data.contactIds).toEqual(['c1']);
  const after = await api.ok('GET', ws, '/stats');
  expect(after.completed).toBe(stats.completed);
  expect(after.assignments).toBe(stats.assignments);
  expect(after.abandoned).toBe(stats.abandoned);

  // Queued again under another key: a new contact; the first key still answers its first outcome.
  const second = await post('/contacts', { id: 'c1', skills: ['A'] }, 'queue-c1-again');
  expect(second.status, JSON.stringify(second.body)).toBe(201);
  const m = await commands();
  const late = await post('/contacts', { id: 'c1', skills: ['A'] }, 'queue-c1');
  expect(late.status).toBe(201);
  expect(late.body).toEqual(first.body);
  expect(await commands()).toBe(m);
  await api.until(ws, '/contacts/c1', (c) => c.state === 'assigned');

  const report = await auditWorkspace(api.running.redis, ws, { idle: true });
  expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
});
