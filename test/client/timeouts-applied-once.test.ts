/**
 * tries cut short by the client's timeout while Redis stalls, and 429s of the rate limit:
 * every call applied once (one ContactQueued per call), its key the same on every try.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../support/wait.ts';
import { type ClientFixture, startClientFixture } from './fixture.ts';

const WS = 'client-timeout';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS], { RATE_LIMIT: '20', RATE_LIMIT_BURST: '20' });
}, 30_000);
afterAll(async () => p?.stop());

describe('timeouts and 429', () => {
  it('commands timed out while Redis stalls, retried with their key: each applied once', async () => {
    const tries: Record<string, number> = {};
    const statuses: unknown[] = [];
    const c = p.client(WS, {
      timeoutMs: 300,
      retries: 10,
      backoffMs: 100,
      maxBackoffMs: 300,
      onRetry: (i) => void statuses.push(i.status),
      fetch: (url, init) => {
        const k = new Headers(init?.headers).get('idempotency-key') ?? '';
        tries[k] = (tries[k] ?? 0) + 1;
        return fetch(url, init);
      },
    });
    const admin = p.redis.adminClient();
    try {
      await admin.call('CLIENT', 'PAUSE', '1500', 'WRITE');
      const results = await Promise.all(
        Array.from({ length: 5 }, (_, i) => c.queueContact({ skills: ['nobody'], attributes: { i } })),
      );
      expect(statuses).toContain('timeout');
      const keys = results.map((r) => r.idempotencyKey);
      await sleep(500);
      const events = (await p.client(WS).listEvents({ types: ['ContactQueued'], limit: 1000 })).events;
      for (const k of keys) expect(events.filter((e) => e.meta.idempotencyKey === k)).toHaveLength(1);
      expect(Object.values(tries).some((n) => n > 1)).toBe(true);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => {});
      admin.disconnect();
    }
  }, 20_000);

  it('a burst past the rate limit: 429s waited out, every call applied once', async () => {
    // The stall of the test before made counts give up (1 s each), and a count given up turns
    // counting off for a second after it: this burst starts once counting is on again.
    await sleep(1100);
    const statuses: unknown[] = [];
    const c = p.client(WS, { onRetry: (i) => void statuses.push(i.status) });
    // The 40 are counted at one instant, whatever the load: Redis holds the rate limit's count
    // (a write) until the server has received all of them, or for 0.9 s at most: a count waits 1 s
    // for Redis before it gives up, and one given up turns counting off for a second (limits.ts).
    // Sent one by one as a busy machine manages, they would spread past a second, and refills would
    // keep up (20 a second); those received after the pause are counted against an empty bucket.
    let received = 0;
    const count = (req: { url?: string }) => {
      if (req.url?.endsWith('/contacts')) received++;
    };
    const server = p.main.api!.server;
    server.on('request', count);
    const admin = p.redis.adminClient();
    let results: Awaited<ReturnType<typeof c.queueContact>>[];
    try {
      await admin.call('CLIENT', 'PAUSE', '900', 'WRITE');
      const calls = Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          c.queueContact({ skills: ['nobody'], attributes: { burst: i } }),
        ),
      );
      await waitFor('the 40 requests received', () => received >= 40, { everyMs: 10 });
      await admin.call('CLIENT', 'UNPAUSE');
      results = await calls;
    } finally {
      server.off('request', count);
      await admin.call('CLIENT', 'UNPAUSE').catch(() => {});
      admin.disconnect();
    }
    expect(statuses).toContain(429);
    const events = (await p.client(WS).listEvents({ types: ['ContactQueued'], limit: 1000 })).events;
    for (const r of results)
      expect(events.filter((e) => e.meta.idempotencyKey === r.idempotencyKey)).toHaveLength(1);
    // A write without a key is retried after a 429 too (it changed nothing).
    const made = await Promise.all(Array.from({ length: 25 }, () => c.createKey({ role: 'auditor' })));
    expect(made).toHaveLength(25);
  }, 25_000);
});
