/**
 * An agent key's accept and reject were held only to the body's `agentId`: naming its own agent, it
 * passed for any contact id, and the projector's refusal told what a read of the contact refuses
 * with 403 (`409 contact-not-offered` "Contact c2 is assigned"/"is queued", `409 offer-not-yours`,
 * a `404` for no such contact), each refusal appended to the streams. Now a contact that is not
 * offered or assigned to the key's agent, or none, is the same `403 forbidden` as a read of it, and
 * nothing is appended (docs/SECURITY.md, "API keys and roles"); the agent's own offers are answered
 * as before, and the retry of its own reject with the same Idempotency-Key answers its first
 * outcome rather than a 403 (the contact has left the agent by then).
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { bearer, keyOf, startSecured, streamLengths } from './harness.ts';

const WS = 'sec-roles-offers';
let redis: TestRedis;
let sb: Running;
let app: FastifyInstance;
let admin: Record<string, string>;
let a1: Record<string, string>;

async function send(
  headers: Record<string, string>,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  payload?: unknown,
) {
  const res = await app.inject({
    method,
    url: `/v1/workspaces/${WS}${path}`,
    headers: { ...headers, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
  });
  return {
    status: res.statusCode,
    type: String(res.headers['content-type']),
    headers: res.headers,
    body: res.json() as Record<string, unknown>,
  };
}

async function contact(id: string): Promise<Record<string, unknown>> {
  const r = await send(admin, 'GET', `/contacts/${id}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

async function until(id: string, state: string, agentId?: string): Promise<void> {
  await waitFor(`contact ${id} ${state}${agentId ? ` to ${agentId}` : ''}`, async () => {
    const c = await contact(id);
    return c.state === state && (agentId === undefined || c.agentId === agentId) ? true : undefined;
  });
}

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, { WORKSPACES: WS, DISCOVER_WORKSPACES: 'false' });
  app = sb.api!;
  await projectorReady(sb.redis, [WS]);
  admin = bearer((await keyOf(sb.redis, WS, 'admin')).key);
  a1 = bearer((await keyOf(sb.redis, WS, 'agent', 'a1')).key);
  const ok = async (method: 'POST' | 'PUT', path: string, payload: unknown) => {
    const r = await send(admin, method, path, payload);
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  };
  // Offers wait a minute for their answer: none expires while the test runs.
  await ok('PUT', '/settings', { offerTimeoutMs: 60_000 });
  await ok('POST', '/agents', { id: 'a1', skills: ['s1'], capacity: 2 });
  await ok('POST', '/agents', { id: 'a2', skills: ['s2'], capacity: 2 });
  for (const a of ['a1', 'a2']) await ok('POST', `/agents/${a}/state`, { state: 'available' });
  // c3 offered to a2 and accepted (assigned), then c2 offered to a2; q9 has no agent (queued).
  await ok('POST', '/contacts', { id: 'c3', skills: ['s2'] });
  await until('c3', 'offered', 'a2');
  await ok('POST', '/contacts/c3/accept', { agentId: 'a2' });
  await ok('POST', '/contacts', { id: 'c2', skills: ['s2'] });
  await ok('POST', '/contacts', { id: 'q9', skills: ['s9'] });
  // a1's own offers: c1 (accepted below) and c4 (rejected below).
  await ok('POST', '/contacts', { id: 'c1', skills: ['s1'] });
  await ok('POST', '/contacts', { id: 'c4', skills: ['s1'] });
  await until('c2', 'offered', 'a2');
  await until('c3', 'assigned', 'a2');
  await until('q9', 'queued');
  await until('c1', 'offered', 'a1');
  await until('c4', 'offered', 'a1');
}, 60_000);

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe("an agent key's accept and reject of a contact not offered or assigned to its agent", () => {
  it('is a 403 forbidden, as a read of it, whatever the contact is (offered, assigned, queued, none); nothing is appended', async () => {
    for (const id of ['c2', 'c3', 'q9', 'made-up-42']) {
      // The read an agent key is refused: the answers below must tell no more than it.
      const read = await send(a1, 'GET', `/contacts/${id}`);
      expect(read.status, `GET ${id}: ${JSON.stringify(read.body)}`).toBe(403);
      for (const verb of ['accept', 'reject']) {
        const before = await streamLengths(sb.redis, WS);
        const r = await send(a1, 'POST', `/contacts/${id}/${verb}`, { agentId: 'a1' });
        const what = `${verb} ${id}: ${JSON.stringify(r.body)}`;
        expect(r.status, what).toBe(403);
        expect(r.type, what).toMatch(/^application\/problem\+json/);
        expect(r.body.type, what).toBe('/problems/forbidden');
        // The same words as the read's, whether the contact exists or not.
        expect(r.body.detail, what).toBe(read.body.detail);
        expect(await streamLengths(sb.redis, WS), what).toEqual(before);
      }
    }
    // Nothing changed for a2's contacts.
    expect(await contact('c2')).toMatchObject({ state: 'offered', agentId: 'a2' });
    expect(await contact('c3')).toMatchObject({ state: 'assigned', agentId: 'a2' });
  });

  it("answers the agent's own offers as before, and the retry of its reject with the same Idempotency-Key", async () => {
    const accepted = await send(a1, 'POST', '/contacts/c1/accept', { agentId: 'a1' });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    expect(accepted.body).toMatchObject({ id: 'c1', state: 'assigned', agentId: 'a1' });

    const key = { 'idempotency-key': 'reject-c4-once' };
    const rejected = await send({ ...a1, ...key }, 'POST', '/contacts/c4/reject', { agentId: 'a1' });
    expect(rejected.status, JSON.stringify(rejected.body)).toBe(200);
    expect(rejected.body).toMatchObject({ id: 'c4', state: 'queued', excludedAgents: ['a1'] });
    // c4 is back in the queue (no other agent has s1): no longer a1's, yet the retry is its own.
    const before = await streamLengths(sb.redis, WS);
    const again = await send({ ...a1, ...key }, 'POST', '/contacts/c4/reject', { agentId: 'a1' });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(rejected.body);
    expect(await streamLengths(sb.redis, WS)).toEqual(before);
    // Without the key, it is a contact not offered to a1: a 403 like any other.
    const fresh = await send(a1, 'POST', '/contacts/c4/reject', { agentId: 'a1' });
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(403);
    expect(fresh.body.type).toBe('/problems/forbidden');
  });
});
