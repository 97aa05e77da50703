/**
 * An `agent` key reads a contact only while the contact document names its agent
 * (docs/SECURITY.md, "API keys and roles"): one it rejected is back in the queue and is not its
 * to read. With `?minPosition=` the answer is the document once that position is applied, so the
 * check must hold for that document, not for the one read when the request arrived: the agent's
 * reject answered 202 (the projector behind), then its read with the reject's position must be a
 * 403, not the document of a contact that has left it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Running } from '../../src/app/composition-root.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { bearer, keyOf, startSecured } from './harness.ts';

const WS = 'sec-keys-edges-1';
const env = { WORKSPACES: WS, DISCOVER_WORKSPACES: 'false' };
let redis: TestRedis;
/** The API alone: it appends commands; the projector runs elsewhere, or not at all. */
let api: Running;
let projector: Running | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
  api = await startSecured(redis, {
    ...env,
    ROLES: 'api',
    COMMAND_TIMEOUT_MS: '300',
    QUERY_TIMEOUT_MS: '8000',
  });
  projector = await startSecured(redis, { ...env, ROLES: 'projector,dispatcher' });
});

afterAll(async () => {
  await api?.stop();
  await projector?.stop();
  await redis?.stop();
});

async function call(key: string, method: 'GET' | 'POST' | 'PUT', path: string, payload?: object) {
  const res = await api.api!.inject({
    method,
    url: `/v1/workspaces/${WS}${path}`,
    headers: bearer(key),
    ...(payload !== undefined ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

it("a contact the agent rejected, read with the reject's minPosition once applied, is a 403", async () => {
  const admin = (await keyOf(api.redis, WS, 'admin')).key;
  const a1 = (await keyOf(api.redis, WS, 'agent', 'a1')).key;
  for (const [path, body] of [
    ['/settings', { offerTimeoutMs: 60_000 }],
    ['/agents', { id: 'a1', skills: ['sales'] }],
    ['/agents/a1/state', { state: 'available' }],
    ['/contacts', { id: 'c1', skills: ['sales'] }],
  ] as const) {
    const r = await call(admin, path === '/settings' ? 'PUT' : 'POST', path, body);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  }
  await waitFor(
    () => 'c1 offered to a1',
    async () =>
      (await call(a1, 'GET', '/contacts/c1')).body.state === 'offered' ? { value: true } : undefined,
    { timeoutMs: 5000, everyMs: 20 },
  );

  // The projector stops: the agent's reject is appended, not applied (202, with its position).
  await projector!.stop();
  projector = undefined;
  const rejected = await call(a1, 'POST', '/contacts/c1/reject', { agentId: 'a1' });
  expect(rejected.status, JSON.stringify(rejected.body)).toBe(202);
  const position = rejected.body.position as string;

  // The desk reads the contact at its reject's position; the projector comes back meanwhile.
  const read = call(a1, 'GET', `/contacts/c1?minPosition=${position}`);
  await sleep(100);
  projector = await startSecured(redis, { ...env, ROLES: 'projector' });
  const answer = await read;
  const now = await call(admin, 'GET', '/contacts/c1');
  expect(now.body.agentId, 'the reject was applied').toBeUndefined();
  expect(answer.status, `agent a1 read ${JSON.stringify(answer.body)}`).toBe(403);
  expect(answer.body.type).toBe('/problems/forbidden');
  // And without minPosition, as before: refused.
  expect((await call(a1, 'GET', '/contacts/c1')).status).toBe(403);
});
