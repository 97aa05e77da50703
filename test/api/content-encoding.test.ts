/**
 * A body in a content coding (`Content-Encoding: gzip`, `br`, ...), against a real Switchboard (in
 * process, real Redis). Switchboard reads bodies as they are sent (no content coding): a body sent
 * gzipped used to be refused as "not UTF-8", which says nothing of the header that caused it, and a
 * plain body labelled gzip was taken as if the header were not there. Both are a 415
 * `/problems/unsupported-encoding` naming `Content-Encoding`, with `Accept-Encoding: identity` (RFC
 * 9110, section 12.5.3), and nothing is appended; `identity` is no coding and is taken.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'content-encoding';
const api = inProcessApi([WS]);
const B = `/v1/workspaces/${WS}`;

const commands = () => api.running.redis.xlen(workspaceKeys(WS).commands);

async function post(path: string, body: string | Buffer | undefined, encoding: string) {
  const res = await api.running.api!.inject({
    method: 'POST',
    url: `${B}${path}`,
    ...(body !== undefined ? { payload: body } : {}),
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      'content-encoding': encoding,
    },
  });
  return { status: res.statusCode, headers: res.headers, body: res.json() as Record<string, unknown> };
}

describe('a body sent in a content coding', () => {
  it('is a 415 naming Content-Encoding, gzipped or only labelled so, and nothing is appended', async () => {
    const json = JSON.stringify({ id: 'coded', skills: ['s'] });
    const before = await commands();
    for (const [encoding, body] of [
      ['gzip', gzipSync(json)],
      ['gzip', json],
      ['br', json],
      ['GZIP', json],
      ['identity, gzip', json],
    ] as const) {
      const r = await post('/contacts', body, encoding);
      expect(r.status, `${encoding}: ${JSON.stringify(r.body)}`).toBe(415);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.headers['accept-encoding']).toBe('identity');
      expect(r.body).toMatchObject({
        type: '/problems/unsupported-encoding',
        status: 415,
        errors: [{ path: 'Content-Encoding' }],
      });
      expect(r.body.detail).toContain(`"${encoding}"`);
    }
    expect(await commands()).toBe(before);
  });

  it('identity is no coding: taken as a plain body', async () => {
    expect((await post('/contacts', JSON.stringify({ id: 'plain', skills: ['s'] }), 'identity')).status).toBe(
      201,
    );
    expect(
      (await post('/contacts', JSON.stringify({ id: 'plain-2', skills: ['s'] }), ' Identity ')).status,
    ).toBe(201);
  });

  it('a request without a body is not refused for its header', async () => {
    expect((await post('/contacts/plain/abandon', undefined, 'gzip')).status).toBe(200);
  });
});
