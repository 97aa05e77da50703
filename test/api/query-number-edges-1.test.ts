/**
 * A number in a query (`limit` on GET /events and GET /agents, `serviceLevelMs` on /stats and
 * /stats/intervals) is read by its value, as docs/API.md gives their ranges (`limit` 1..1000) and
 * as positions are read ("Positions and limits"): `limit=01` was accepted but
 * `limit=0000000001` (ten digits, value 1) was a 400, as was `serviceLevelMs=0086400000`. A value
 * out of range is still a 400 naming the parameter.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'query-number-edges-1';
const api = inProcessApi([WS]);
const range = 'from=2026-01-01T00:00:00Z&to=2026-01-01T00:15:00Z';

describe('numbers in a query, by value', () => {
  it('takes leading zeros at any length; refuses a value out of range, naming the parameter', async () => {
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['x'] });
    await api.ok('POST', WS, '/agents', { id: 'a2', skills: ['x'] });
    await api.until(WS, '/events', (p) => (p.events as unknown[]).length === 2);
    for (const one of ['1', '01', '0000000001', `${'0'.repeat(40)}1`]) {
      const page = await api.ok('GET', WS, `/events?limit=${one}`);
      expect((page.events as unknown[]).length, `limit=${one}`).toBe(1);
      expect(page.next).not.toBeNull();
      expect((await api.ok('GET', WS, `/agents?limit=${one}`)).agents).toHaveLength(1);
    }
    for (const value of ['0086400000', `${'0'.repeat(30)}1000`]) {
      await api.ok('GET', WS, `/stats?serviceLevelMs=${value}`);
      await api.ok('GET', WS, `/stats/intervals?${range}&serviceLevelMs=${value}`);
    }
    for (const bad of ['0', '0000000000', '1001', '00000001001', '1e2', '+1', ' 1', '1.0', '']) {
      const p = await api.problem(
        'GET',
        WS,
        `/events?limit=${encodeURIComponent(bad)}`,
        undefined,
        400,
        'invalid-request',
      );
      expect((p.errors as { path: string; message: string }[])[0], `limit=${bad}`).toEqual({
        path: 'limit',
        message: expect.stringMatching(/an integer from 1 to 1000/),
      });
    }
    await api.problem(
      'GET',
      WS,
      `/stats?serviceLevelMs=${'0'.repeat(20)}`,
      undefined,
      400,
      'invalid-request',
    );
  });
});
