/**
 * A number in a contact's `attributes` past what a double holds (`1e309`, `-1e400`) parses as
 * ±Infinity, which JSON has no form for: it was stored, and answered, as null, a value the client
 * never sent. It is a 400 naming `attributes`, and nothing is appended.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'attributes-numbers';
const api = inProcessApi([WS]);

describe('numbers in attributes', () => {
  it('one a double cannot hold is a 400 naming attributes; nothing is appended', async () => {
    await api.ok('POST', WS, '/agents', { id: 'a', skills: ['y'] });
    const before = (await api.ok('GET', WS, '/events')).events as unknown[];
    for (const value of ['1e309', '-1e400', '[1, {"deep": 1e999}]']) {
      const res = await api.running.api!.inject({
        method: 'POST',
        url: `/v1/workspaces/${WS}/contacts`,
        headers: { 'content-type': 'application/json' },
        payload: `{"id": "c", "skills": ["x"], "attributes": {"n": ${value}}}`,
      });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const p = res.json() as { type: string; errors: { path: string }[] };
      expect(p.type).toBe('/problems/invalid-request');
      expect(p.errors.map((e) => e.path)).toEqual(['attributes']);
    }
    // Finite numbers, large and small, are kept as sent.
    const c = await api.ok('POST', WS, '/contacts', {
      id: 'ok',
      skills: ['x'],
      attributes: { n: 1.7e308, m: -5e-324 },
    });
    expect(c.attributes).toEqual({ n: 1.7e308, m: -5e-324 });
    const after = (await api.ok('GET', WS, '/events')).events as { data: { id?: string } }[];
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length).map((e) => e.data.id)).toEqual(['ok']);
  });
});
