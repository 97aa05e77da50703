/**
 * a command whose tries ran out (503 not-replicated: appended, outcome unknown) must be
 * retried by the caller with the same Idempotency-Key (docs/API.md, "Problem types"); the key the
 * client made for the call has to reach the caller for that.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { type ClientFixture, failure, log, startClientFixture } from './fixture.ts';

const WS = 'client-retry';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('retries', () => {
  it('the error of a command whose tries ran out names its Idempotency-Key, so the caller can resend it safely', async () => {
    const replicated = await startSwitchboard(
      loadConfig(p.env({ ROLES: 'api', DURABILITY: 'replicated', REPLICA_WAIT_MS: '50' })),
      log,
    );
    try {
      const sent: (string | null)[] = [];
      const c = p.client(WS, {
        url: replicated.url!,
        retries: 1,
        onRetry: () => 0,
        fetch: (url, init) => {
          sent.push(new Headers(init?.headers).get('idempotency-key'));
          return fetch(url, init);
        },
      });
      const err = await failure(c.queueContact({ id: 'nr-1', skills: ['x'] }));
      expect(err).toMatchObject({ status: 503, type: '/problems/not-replicated', attempts: 2 });
      expect(err.problem).toMatchObject({ appended: true, applied: 'unknown' });
      expect(new Set(sent).size).toBe(1);
      const key = (err as unknown as { idempotencyKey?: string }).idempotencyKey;
      expect(key).toBe(sent[0]);
      // The caller's own retry, later, through a healthy instance, with that key: applied once.
      const again = await p.client(WS).queueContact({ id: 'nr-1', skills: ['x'] }, { idempotencyKey: key! });
      expect(again).toMatchObject({ applied: true, replayed: true });
      const queued = (await p.client(WS).listEvents({ types: ['ContactQueued'] })).events;
      expect(queued.filter((e) => e.data.id === 'nr-1')).toHaveLength(1);
    } finally {
      await replicated.stop();
    }
  }, 20_000);
});
