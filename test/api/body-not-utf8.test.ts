/**
 * A JSON body is UTF-8 (RFC 8259, section 8.1): bytes that are not UTF-8 are not JSON, so such a
 * body is a 400 (`/problems/invalid-json`) that says where, and nothing is appended. The body was
 * once decoded leniently: a name sent in Latin-1 ("Jos\xE9") was registered as "Jos\uFFFD", and two
 * different bodies under one Idempotency-Key ("K\xF6ln", "K\xFCln": both "K\uFFFDln" once decoded)
 * were taken for one request, the second answered with the first's outcome.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'body-not-utf8';
const B = `/v1/workspaces/${WS}`;
const api = inProcessApi([WS]);

/** A body of `parts`: strings as UTF-8, numbers as single raw bytes. */
const bytes = (...parts: (string | number)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from([p]))));

async function post(url: string, payload: Buffer, headers: Record<string, string> = {}) {
  const res = await api.running.api!.inject({
    method: 'POST',
    url,
    payload,
    headers: { 'content-type': 'application/json', ...headers },
  });
  return {
    status: res.statusCode,
    type: String(res.headers['content-type']),
    replayed: res.headers['idempotent-replayed'],
    body: res.json() as {
      type?: string;
      status?: number;
      detail?: string;
      attributes?: unknown;
      name?: string;
    },
  };
}

const commands = () => api.running.redis.xlen(workspaceKeys(WS).commands);

describe('a body that is not UTF-8', () => {
  it('is a 400 invalid-json naming the byte, and appends nothing', async () => {
    const before = await commands();
    const cases: [string, Buffer, number][] = [
      // "José" in Latin-1: 0xE9 begins a 3-byte sequence that "\"" does not continue.
      ['a Latin-1 é', bytes('{"id":"jose","name":"Jos', 0xe9, '","skills":["x"]}'), 24],
      ['an overlong "/"', bytes('{"id":"jose","name":"a', 0xc0, 0xaf, '","skills":["x"]}'), 22],
      [
        'a surrogate written in UTF-8',
        bytes('{"id":"jose","name":"a', 0xed, 0xa0, 0x80, '","skills":["x"]}'),
        22,
      ],
      ['a sequence cut short', bytes('{"id":"jose","name":"a', 0xe2, 0x82, '","skills":["x"]}'), 22],
      ['a byte over 0xF4', bytes('{"id":"jose","name":"a', 0xff, '","skills":["x"]}'), 22],
    ];
    for (const [name, body, offset] of cases) {
      for (const contentType of ['application/json', 'application/json; charset=iso-8859-1']) {
        const r = await post(`${B}/agents`, body, { 'content-type': contentType });
        expect(r.status, `${name} (${contentType}): ${JSON.stringify(r.body)}`).toBe(400);
        expect(r.type).toMatch(/^application\/problem\+json/);
        expect(r.body.type).toBe('/problems/invalid-json');
        expect(r.body.status).toBe(400);
        expect(r.body.detail).toContain('UTF-8');
        expect(r.body.detail).toContain(`offset ${offset}`);
      }
    }
    const missing = await api.call('GET', `${B}/agents/jose`);
    expect(missing.status).toBe(404);
    expect(await commands()).toBe(before);
  });

  it('is never taken for another body under the same Idempotency-Key', async () => {
    const before = await commands();
    const koeln = bytes('{"id":"c1","skills":["x"],"attributes":{"city":"K', 0xf6, 'ln"}}');
    const kueln = bytes('{"id":"c2","skills":["x"],"attributes":{"city":"K', 0xfc, 'ln"}}');
    for (const body of [koeln, kueln]) {
      const r = await post(`${B}/contacts`, body, { 'idempotency-key': 'city-1' });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.type).toBe('/problems/invalid-json');
      expect(r.replayed).toBeUndefined();
    }
    expect(await commands()).toBe(before);
    // The key was not spent: the same request in UTF-8 is a new command.
    const ok = await post(
      `${B}/contacts`,
      Buffer.from('{"id":"c1","skills":["x"],"attributes":{"city":"Köln"}}'),
      {
        'idempotency-key': 'city-1',
      },
    );
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.replayed).toBeUndefined();
    expect(ok.body.attributes).toEqual({ city: 'Köln' });
  });

  it('is refused while UTF-8 is read as sent: "é", and U+FFFD itself when sent', async () => {
    const r = await post(
      `${B}/agents`,
      Buffer.from('{"id":"ana","name":"José \uFFFD 😀","skills":["x"]}', 'utf8'),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.name).toBe('José \uFFFD 😀');
  });
});
