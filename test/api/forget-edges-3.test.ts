/**
 * An `agent` key's `complete` refused by the projector (the contact was completed meanwhile by an
 * admin: `409 contact-not-assigned`), then retried with the same Idempotency-Key (a lost
 * answer) once CONTACT_RETENTION has forgotten the contact (docs/API.md, "Finished contacts": a
 * repeat still answers the first outcome, an agent key's repeat of its complete too). Before, the
 * key's check of the contact document answered the retry a 403 saying the contact was never the
 * agent's, as only a first outcome of 200 counted as the agent's own; now it answers the first
 * outcome, the 409, and appends nothing. Another agent's key with the same Idempotency-Key is
 * still refused (403), and appends nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { bearer, keyOf, startSecured, streamLengths } from '../security/harness.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'forget-edges-3';
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
    ARCHIVE_DIR: '/nonexistent-forget-edges-3',
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

it("an agent key's retry of its refused complete, once the contact is forgotten: the first outcome", async () => {
  const admin = (await keyOf(sb.redis, WS, 'admin')).key;
  const a1 = (await keyOf(sb.redis, WS, 'agent', 'a1')).key;
  const a2 = (await keyOf(sb.redis, WS, 'agent', 'a2')).key;
  expect((await call(admin, 'POST', '/agents', { id: 'a1', skills: ['s'] })).status).toBeLessThan(300);
  expect((await call(a1, 'POST', '/agents/a1/state', { state: 'available' })).status).toBeLessThan(300);
  expect((await call(admin, 'POST', '/contacts', { id: 'c1', skills: ['s'] })).status).toBeLessThan(300);
  await waitFor(
    () => 'c1 assigned to a1',
    async () =>
      (await call(admin, 'GET', '/contacts/c1')).body.agentId === 'a1' ? { value: true } : undefined,
    { timeoutMs: 5000, everyMs: 20 },
  );
  // An admin's completion first; the agent's own is then refused by the projector.
  expect((await call(admin, 'POST', '/contacts/c1/complete')).status).toBe(200);
  const first = await call(a1, 'POST', '/contacts/c1/complete', undefined, 'a1-done-c1');
  expect(first.status, JSON.stringify(first.body)).toBe(409);
  expect(first.body.type).toBe('/problems/contact-not-assigned');
  await waitFor(
    () => 'c1 forgotten',
    async () => ((await call(admin, 'GET', '/contacts/c1')).status === 404 ? { value: true } : undefined),
    { timeoutMs: 5000, everyMs: 20 },
  );

  const [commands] = await streamLengths(sb.redis, WS);
  const again = await call(a1, 'POST', '/contacts/c1/complete', undefined, 'a1-done-c1');
  expect(again.status, JSON.stringify(again.body)).toBe(409);
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.body).toEqual(first.body);
  // Another agent's key with a1's Idempotency-Key is not a1's repeat.
  const other = await call(a2, 'POST', '/contacts/c1/complete', undefined, 'a1-done-c1');
  expect(other.status, JSON.stringify(other.body)).toBe(403);
  expect(other.body.type).toBe('/problems/forbidden');
  expect((await streamLengths(sb.redis, WS))[0]).toBe(commands);

  const report = await auditWorkspace(sb.redis, WS, { idle: true });
  expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
});

it("an agent key's complete sent as its contact is forgotten: 409 or 404, and its retry answers the same", async () => {
  const admin = (await keyOf(sb.redis, WS, 'admin')).key;
  const a3 = (await keyOf(sb.redis, WS, 'agent', 'a3')).key;
  expect((await call(admin, 'POST', '/agents', { id: 'a3', skills: ['t'] })).status).toBeLessThan(300);
  expect((await call(a3, 'POST', '/agents/a3/state', { state: 'available' })).status).toBeLessThan(300);
  const seen = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const id = `r${i}`;
    expect((await call(admin, 'POST', '/contacts', { id, skills: ['t'] })).status).toBeLessThan(300);
    await waitFor(
      () => `${id} assigned to a3`,
      async () =>
        (await call(admin, 'GET', `/contacts/${id}`)).body.agentId === 'a3' ? { value: true } : undefined,
      { timeoutMs: 5000, everyMs: 10 },
    );
    expect((await call(admin, 'POST', `/contacts/${id}/complete`)).status).toBe(200);
    // Around the moment it is forgotten (200 ms after, at the archiver's next pass).
    await sleep(150 + (i % 6) * 20);
    const first = await call(a3, 'POST', `/contacts/${id}/complete`, undefined, `a3-${id}`);
    seen.add(first.status);
    // The agent's key let it in while its document named a3; a forgotten one is the 404 of any
    // id never queued, or the key's 403 when it was forgotten before the key's check.
    expect([409, 404, 403], JSON.stringify(first.body)).toContain(first.status);
    expect(first.body.type).toMatch(/^\/problems\/(contact-not-assigned|contact-not-found|forbidden)$/);
    await waitFor(
      () => `${id} forgotten`,
      async () =>
        (await call(admin, 'GET', `/contacts/${id}`)).status === 404 ? { value: true } : undefined,
      { timeoutMs: 5000, everyMs: 20 },
    );
    const again = await call(a3, 'POST', `/contacts/${id}/complete`, undefined, `a3-${id}`);
    expect(again.status, JSON.stringify(again.body)).toBe(first.status);
    expect(again.body).toEqual(first.body);
  }
  expect(seen.size).toBeGreaterThan(0);
  const report = await auditWorkspace(sb.redis, WS, { idle: true });
  expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
});
