/**
 * An `agent` key completes only a contact assigned to its agent (docs/SECURITY.md, "API keys and
 * roles"), also when the contact moves between the API's check and the command's turn: a1's
 * `complete` is checked against the contact document (assigned to a1), and before it is appended
 * the contact is transferred and assigned to a2. The command names the key's agent, and the
 * projector refuses it (403, as the check does) instead of completing a2's contact.
 *
 * The window is opened by holding the check's read reply (a real Redis reply, delivered late, as on
 * a slow path) until the transfer and the new assignment are applied.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { Running } from '../../src/app/composition-root.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'sec-keys-edges-4';
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSecured(redis, { WORKSPACES: WS, DISCOVER_WORKSPACES: 'false' });
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

async function call(key: string, method: 'GET' | 'POST', path: string, payload?: object) {
  const res = await sb.api!.inject({
    method,
    url: `/v1/workspaces/${WS}${path}`,
    headers: bearer(key),
    ...(payload !== undefined ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

it("a1's complete, checked while the contact was a1's, does not complete it for a2", async () => {
  const admin = (await keyOf(sb.redis, WS, 'admin')).key;
  const a1 = (await keyOf(sb.redis, WS, 'agent', 'a1')).key;
  for (const [path, body] of [
    ['/agents', { id: 'a1', skills: ['sales'] }],
    ['/agents', { id: 'a2', skills: ['billing'] }],
    ['/agents/a1/state', { state: 'available' }],
    ['/agents/a2/state', { state: 'available' }],
    ['/contacts', { id: 'c1', skills: ['sales'] }],
  ] as const) {
    const r = await call(admin, 'POST', path, body);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  }
  const assignedTo = async (agent: string) =>
    (await call(admin, 'GET', '/contacts/c1')).body.agentId === agent ? { value: true } : undefined;
  await waitFor(
    () => 'c1 assigned to a1',
    () => assignedTo('a1'),
    { timeoutMs: 5000, everyMs: 20 },
  );

  // The next read of c1's document (a1's check) is held once Redis has answered it.
  const contacts = workspaceKeys(WS).contacts;
  const client = sb.redis as unknown as { hget: (...a: unknown[]) => Promise<string | null> };
  const hget = client.hget.bind(client);
  let read!: () => void;
  const checked = new Promise<void>((resolve) => {
    read = resolve;
  });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let armed = true;
  client.hget = async (...args: unknown[]) => {
    const reply = await hget(...args);
    if (armed && args[0] === contacts && args[1] === 'c1') {
      armed = false;
      read();
      await released;
    }
    return reply;
  };
  try {
    const completing = call(a1, 'POST', '/contacts/c1/complete');
    await checked;
    // Meanwhile: transferred to billing, and given to a2.
    const moved = await call(admin, 'POST', '/contacts/c1/transfer', { skills: ['billing'] });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    await waitFor(
      () => 'c1 assigned to a2',
      () => assignedTo('a2'),
      { timeoutMs: 5000, everyMs: 20 },
    );
    release();
    const answer = await completing;
    const now = (await call(admin, 'GET', '/contacts/c1')).body;
    expect(now, 'a2 still holds c1').toMatchObject({ state: 'assigned', agentId: 'a2' });
    expect(answer.status, JSON.stringify(answer.body)).toBe(403);
    expect(answer.body).toMatchObject({
      type: '/problems/forbidden',
      detail: 'Contact "c1" is not offered or assigned to agent "a1", whom this key acts for.',
    });
  } finally {
    client.hget = hget;
    release();
  }

  // The refusal is in the log as the projector made it, and the audit re-checks it.
  const report = await auditWorkspace(sb.redis, WS, { idle: true });
  expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
});

it('a1 completes its own contact: 200, and the command names a1', async () => {
  const admin = (await keyOf(sb.redis, WS, 'admin')).key;
  const a1 = (await keyOf(sb.redis, WS, 'agent', 'a1')).key;
  expect((await call(admin, 'POST', '/contacts', { id: 'c2', skills: ['sales'] })).status).toBeLessThan(300);
  await waitFor(
    () => 'c2 assigned to a1',
    async () =>
      (await call(admin, 'GET', '/contacts/c2')).body.agentId === 'a1' ? { value: true } : undefined,
    { timeoutMs: 5000, everyMs: 20 },
  );
  const done = await call(a1, 'POST', '/contacts/c2/complete');
  expect(done.status, JSON.stringify(done.body)).toBe(200);
  expect(done.body).toMatchObject({ state: 'completed', agentId: 'a1' });
  const entries = await sb.redis.xrevrange(workspaceKeys(WS).commands, '+', '-', 'COUNT', 20);
  const sent = entries
    .map(([, f]) => f)
    .filter((f) => f[f.indexOf('type') + 1] === 'CompleteContact')
    .map((f) => JSON.parse(f[f.indexOf('command') + 1]!) as Record<string, unknown>);
  expect(sent[0]).toMatchObject({ type: 'CompleteContact', contactId: 'c2', agentId: 'a1' });
});
