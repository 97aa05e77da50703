/**
 * A header the server reads as one value, given more than once, against a real Switchboard (in
 * process, real Redis, raw sockets: fetch and inject merge repeated headers before sending). Node
 * joins two `Idempotency-Key`s with ", " (the 400 said the key must be "1..200 visible ASCII
 * characters (no spaces)", not what was wrong), and keeps the first `Content-Type` or
 * `Authorization` and drops the others: a command with `application/json` then `text/plain` was
 * applied (201), and a proxy in front may have read the other value. Each is now a 400
 * `/problems/invalid-request` naming the header, `is given 2 times: give it once` (as a query
 * parameter given twice is), an upgrade too, and nothing is appended. Two `X-Request-Id`s are
 * neither's id: the request is served under a new one, as with any id not taken.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { type RawAnswer, rawHttp, rawRequest as request } from '../support/raw-http.ts';

const WS = 'http-edges-6';
const api = inProcessApi([WS], { env: { AUTH: 'on' } });
const B = `/v1/workspaces/${WS}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let auth = '';
beforeAll(async () => {
  const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin', name: 'edges' });
  auth = `Authorization: Bearer ${key}`;
});

/** One request on its own connection to this instance (test/support/raw-http.ts). */
const raw = (text: string) => rawHttp((api.running.api!.server.address() as { port: number }).port, text);

const commands = () => api.running.redis.xlen(workspaceKeys(WS).commands);
const json = 'Content-Type: application/json';
const agent = (id: string) => JSON.stringify({ id, skills: ['s'] });

function expectRepeated(a: RawAnswer, what: string, header: string, times = 2) {
  expect(a.status, `${what}: ${a.body}`).toBe(400);
  expect(a.headers['content-type'], what).toMatch(/^application\/problem\+json/);
  expect(a.headers['x-request-id'], what).toBeTruthy();
  const body = JSON.parse(a.body) as Record<string, unknown>;
  expect(body, what).toMatchObject({
    type: '/problems/invalid-request',
    status: 400,
    errors: [{ path: header, message: `is given ${times} times: give it once` }],
  });
  expect(body.detail, what).toContain(header);
}

describe('a single-valued header given more than once', () => {
  it('Idempotency-Key twice (the same value too, any case) is a 400 naming it; nothing is appended', async () => {
    const before = await commands();
    for (const [what, keys] of [
      ['same value', ['Idempotency-Key: k-1', 'Idempotency-Key: k-1']],
      ['two values', ['Idempotency-Key: k-2', 'idempotency-key: k-3']],
      ['cases', ['IDEMPOTENCY-KEY: k-4', 'idempotency-key: k-4']],
    ] as const) {
      expectRepeated(
        await raw(request('POST', `${B}/agents`, [auth, json, ...keys], agent(`ik-${keys[0].slice(-1)}`))),
        what,
        'Idempotency-Key',
      );
    }
    expectRepeated(
      await raw(
        request(
          'POST',
          `${B}/agents`,
          [auth, json, 'Idempotency-Key: a', 'Idempotency-Key: b', 'Idempotency-Key: c'],
          agent('ik-3'),
        ),
      ),
      'three',
      'Idempotency-Key',
      3,
    );
    expect(await commands()).toBe(before);
    for (const id of ['ik-1', 'ik-2', 'ik-3', 'ik-4'])
      expect((await raw(request('GET', `${B}/agents/${id}`, [auth]))).status, id).toBe(404);
    // A query reads no Idempotency-Key (docs/API.md): a repeated one is not looked at either.
    expect(
      (await raw(request('GET', `${B}/agents`, [auth, 'Idempotency-Key: q', 'Idempotency-Key: q']))).status,
    ).toBe(200);
  });

  it('Content-Type twice (application/json, then text/plain) is a 400 naming it; nothing is applied', async () => {
    const before = await commands();
    expectRepeated(
      await raw(request('POST', `${B}/agents`, [auth, json, 'Content-Type: text/plain'], agent('ct-1'))),
      'POST /agents',
      'Content-Type',
    );
    expectRepeated(
      await raw(
        request('POST', `${B}/agents`, [auth, json, 'content-type: application/json'], agent('ct-2')),
      ),
      'same type twice',
      'Content-Type',
    );
    expect(await commands()).toBe(before);
    expect((await raw(request('GET', `${B}/agents/ct-1`, [auth]))).status).toBe(404);
    // One of each is served as ever.
    const ok = await raw(
      request('POST', `${B}/agents`, [auth, json, 'Idempotency-Key: ok-1'], agent('ct-ok')),
    );
    expect(ok.status, ok.body).toBe(201);
  });

  it('Authorization twice is a 400 naming it, the same key twice too; nothing is applied', async () => {
    const before = await commands();
    expectRepeated(
      await raw(request('POST', `${B}/agents`, [auth, auth, json], agent('au-1'))),
      'same key',
      'Authorization',
    );
    expectRepeated(
      await raw(
        request('POST', `${B}/agents`, [auth, 'authorization: Bearer sb_nope_nope', json], agent('au-2')),
      ),
      'another key second',
      'Authorization',
    );
    expectRepeated(await raw(request('GET', `${B}/agents`, [auth, auth])), 'a query', 'Authorization');
    expect(await commands()).toBe(before);
    expect((await raw(request('GET', `${B}/agents/au-1`, [auth]))).status).toBe(404);
  });

  it('several repeated headers are all named at once', async () => {
    const a = await raw(
      request(
        'POST',
        `${B}/agents`,
        [auth, auth, json, json, 'Idempotency-Key: m', 'Idempotency-Key: m'],
        agent('many'),
      ),
    );
    expect(a.status, a.body).toBe(400);
    expect((JSON.parse(a.body) as { errors: unknown }).errors).toEqual([
      { path: 'Authorization', message: 'is given 2 times: give it once' },
      { path: 'Content-Type', message: 'is given 2 times: give it once' },
      { path: 'Idempotency-Key', message: 'is given 2 times: give it once' },
    ]);
  });

  it('a WebSocket upgrade with Authorization twice is refused before the upgrade, and closed', async () => {
    const a = await raw(
      request('GET', `${B}/events/live`, [
        auth,
        auth,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
      ]).replace('Connection: close\r\n', ''),
    );
    expectRepeated(a, 'upgrade', 'Authorization');
    expect(a.closed).toBe(true);
  });

  it('X-Request-Id twice is neither id: the request is served under a new one, which is answered', async () => {
    const a = await raw(request('GET', `${B}/agents`, [auth, 'X-Request-Id: rid-a', 'X-Request-Id: rid-b']));
    expect(a.status, a.body).toBe(200);
    expect(a.headers['x-request-id']).toMatch(UUID);
    const one = await raw(request('GET', `${B}/agents`, [auth, 'X-Request-Id: rid, with comma']));
    expect(one.headers['x-request-id']).toBe('rid, with comma');
  });
});
