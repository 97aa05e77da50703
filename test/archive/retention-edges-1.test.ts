/**
 * An `agent` key around a contact it completed, once CONTACT_RETENTION has forgotten it (docs/API.md,
 * "Finished contacts"; docs/SECURITY.md, "API keys and roles"). Its read is a 403, as of any id that
 * names no contact of its agent; the retry of its `complete` with the same Idempotency-Key (a lost
 * answer) answers the first outcome, as every repeat does: before, the key's check of the contact
 * document refused it with a 403 saying the contact was never the agent's. Another agent's key, or
 * a new Idempotency-Key, is still refused, and so is the repeat once the id is another agent's
 * contact (a read); the repeat then answers the first outcome and appends nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { bearer, keyOf, startSecured, streamLengths } from '../security/harness.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'retention-edges-1';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, {
    WORKSPACES: WS,
    DISCOVER_WORKSPACES: 'false',
    LB_DRAIN_MS: '0',
    CONTACT_RETENTION: '200ms',
    ARCHIVE_EVERY_MS: '50',
    ARCHIVE_DIR: '/nonexistent-retention-edges-1',
    LOG_RETENTION: '24h',
  });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

async function call(key: string, method: 'GET' | 'POST', path: string, payload?: object, idem?: string) {
  const res = await sb.api!.inject({
    method,
    url: `/v1/workspaces/${WS}${path}`,
    headers: { ...bearer(key), ...(idem ? { 'idempotency-key': idem } : {}) },
    ...(payload !== undefined ? { payload } : {}),
  });
  return { status: res.statusCode, headers: res.headers, body: res.json() as Record<string, unknown> };
}

it("an agent key's repeat of its complete, once the contact is forgotten, answers the first outcome", async () => {
  const admin = (await keyOf(sb.redis, WS, 'admin')).key;
  const a1 = (await keyOf(sb.redis, WS, 'agent', 'a1')).key;
  expect((await call(admin, 'POST', '/agents', { id: 'a1', skills: ['s'] })).status).toBeLessThan(300);
  expect((await call(a1, 'POST', '/agents/a1/state', { state: 'available' })).status).toBeLessThan(300);
  expect((await call(admin, 'POST', '/contacts', { id: 'c1', skills: ['s'] })).status).toBeLessThan(300);
  await waitFor(
    () => 'c1 assigned to a1',
    async () =>
      (await call(admin, 'GET', '/contacts/c1')).body.agentId === 'a1' ? { value: true } : undefined,
    { timeoutMs: 5000, everyMs: 20 },
  );
  const first = await call(a1, 'POST', '/contacts/c1/complete', undefined, 'done-c1');
  expect(first.status, JSON.stringify(first.body)).toBe(200);
  // Readable by its agent's key once completed ...
  expect((await call(a1, 'GET', '/contacts/c1')).status).toBe(200);
  // ... until it is forgotten.
  await waitFor(
    () => 'c1 forgotten',
    async () => ((await call(admin, 'GET', '/contacts/c1')).status === 404 ? { value: true } : undefined),
    { timeoutMs: 5000, everyMs: 20 },
  );
  // The 404 says why a contact just read may be gone, and where its history still is.
  const gone = await call(admin, 'GET', '/contacts/c1');
  expect(gone.status).toBe(404);
  expect(gone.body).toMatchObject({ type: '/problems/contact-not-found' });
  expect(gone.body.detail).toMatch(/CONTACT_RETENTION.*GET \/events/);
  const notItsContact = {
    type: '/problems/forbidden',
    detail: 'Contact "c1" is not offered or assigned to agent "a1", whom this key acts for.',
  };
  const read = await call(a1, 'GET', '/contacts/c1');
  expect(read.status).toBe(403);
  expect(read.body).toMatchObject(notItsContact);

  // The retry of the same request (a lost answer), with its Idempotency-Key: the first outcome.
  const [commands] = await streamLengths(sb.redis, WS);
  const again = await call(a1, 'POST', '/contacts/c1/complete', undefined, 'done-c1');
  expect(again.status, JSON.stringify(again.body)).toBe(200);
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.body).toEqual(first.body);
  // A new key is a new request: refused as before, and so is another agent's key with a1's.
  const fresh = await call(a1, 'POST', '/contacts/c1/complete', undefined, 'done-c1-again');
  expect(fresh.status, JSON.stringify(fresh.body)).toBe(403);
  expect(fresh.body).toMatchObject(notItsContact);
  const a2 = (await keyOf(sb.redis, WS, 'agent', 'a2')).key;
  const other = await call(a2, 'POST', '/contacts/c1/complete', undefined, 'done-c1');
  expect(other.status, JSON.stringify(other.body)).toBe(403);
  expect((await streamLengths(sb.redis, WS))[0]).toBe(commands);

  // The id queued again, now a2's contact: a1 may not read it; its repeat answers its own first outcome.
  expect((await call(admin, 'POST', '/agents', { id: 'a2', skills: ['s'] })).status).toBeLessThan(300);
  expect((await call(a1, 'POST', '/agents/a1/state', { state: 'away' })).status).toBeLessThan(300);
  expect((await call(a2, 'POST', '/agents/a2/state', { state: 'available' })).status).toBeLessThan(300);
  expect((await call(admin, 'POST', '/contacts', { id: 'c1', skills: ['s'] })).status).toBeLessThan(300);
  await waitFor(
    () => 'the new c1 assigned to a2',
    async () =>
      (await call(admin, 'GET', '/contacts/c1')).body.agentId === 'a2' ? { value: true } : undefined,
    { timeoutMs: 5000, everyMs: 20 },
  );
  expect((await call(a1, 'GET', '/contacts/c1')).status).toBe(403);
  const [before] = await streamLengths(sb.redis, WS);
  const late = await call(a1, 'POST', '/contacts/c1/complete', undefined, 'done-c1');
  expect(late.status, JSON.stringify(late.body)).toBe(200);
  expect(late.body).toEqual(first.body);
  expect((await streamLengths(sb.redis, WS))[0]).toBe(before);
  expect((await call(admin, 'GET', '/contacts/c1')).body).toMatchObject({ state: 'assigned', agentId: 'a2' });

  const report = await auditWorkspace(sb.redis, WS, { idle: true });
  expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
});
