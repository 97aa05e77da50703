/** the problem types a client user can meet arrive typed (type, title, status, detail and extra members). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, failure, startClientFixture } from './fixture.ts';

const WS = 'client-problems';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS], { BODY_LIMIT: '65536' });
}, 30_000);
afterAll(async () => p?.stop());

describe('problems', () => {
  it('each is typed', async () => {
    const c = p.client(WS);
    const cases = [
      ['414 uri-too-long', () => c.getAgent('x'.repeat(300)), 414, '/problems/uri-too-long'],
      [
        '413 body-too-large',
        () => c.queueContact({ skills: ['a'], attributes: { big: 'x'.repeat(100_000) } }),
        413,
        '/problems/body-too-large',
      ],
      ['400 invalid id', () => c.getAgent('a b'), 400, '/problems/invalid-request'],
      ['404 no-route', () => c.request('GET', '/v1/nope'), 404, '/problems/no-route'],
      [
        '409 position-ahead',
        () => c.getAgent('a', { minPosition: '99999999999999-0' }),
        409,
        '/problems/position-ahead',
      ],
      ['409 position-ahead state', () => c.getStateAt('99999999999999-0'), 409, '/problems/position-ahead'],
      [
        '422 idempotency-key-reused',
        async () => {
          await c.queueContact({ skills: ['a'] }, { idempotencyKey: 'k-1' });
          return c.queueContact({ skills: ['b'] }, { idempotencyKey: 'k-1' });
        },
        422,
        '/problems/idempotency-key-reused',
      ],
      [
        '400 bad idempotency key',
        () => c.queueContact({ skills: ['a'] }, { idempotencyKey: 'has space' }),
        400,
        '/problems/invalid-request',
      ],
      ['404 key-not-found', () => c.revokeKey('0000000000000000'), 404, '/problems/key-not-found'],
      ['404 key-not-found (GET)', () => c.getKey('0000000000000000'), 404, '/problems/key-not-found'],
      [
        '422 channel-not-declared',
        () => c.queueContact({ skills: ['a'], channel: 'chat' }),
        422,
        '/problems/channel-not-declared',
      ],
    ] as const;
    const seen: Record<string, unknown> = {};
    for (const [name, call, status, type] of cases) {
      const err = await failure(call());
      seen[name] = {
        status: err.status,
        type: err.type,
        title: err.title,
        detail: err.detail,
        problem: err.problem,
      };
      expect({ name, status: err.status, type: err.type }).toEqual({ name, status, type });
      expect(err.title).not.toMatch(/^HTTP /);
    }
    const ahead = await failure(c.getStateAt('99999999999999-0'));
    expect(ahead.problem).toHaveProperty('lastPosition');
  });
});
