/**
 * A 503 `shutting-down` is about the instance that answered it: with `failover` URLs, the retry
 * that goes to another instance does not wait the stopping one's `Retry-After`.
 *
 * The stopping instance is a real one: a request waiting for a `minPosition` holds a kept-alive
 * connection while the instance stops, and the client's first try, queued on that connection, is
 * answered by the stop itself.
 */
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { unappliedPosition } from '../support/positions.ts';
import { sleep } from '../support/wait.ts';
import { type ClientFixture, log, startClientFixture } from './fixture.ts';

const WS = 'client-shutdown';
/** A workspace no instance serves: a `minPosition` in it is never reached. */
const UNSERVED = 'client-shutdown-unserved';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

/** fetch over node:http with `agent`: its requests share the agent's one kept-alive connection. */
function fetchOver(agent: Agent): typeof fetch {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const headers = Object.fromEntries(new Headers(init?.headers).entries());
      const req = httpRequest(String(url), { method: init?.method ?? 'GET', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode!, headers: h }));
        });
      });
      req.on('error', reject);
      init?.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
      if (typeof init?.body === 'string') req.write(init.body);
      req.end();
    });
}

describe('failover', () => {
  it("a 503 shutting-down: the retry on another instance does not wait the stopping one's Retry-After", async () => {
    const stopping = await startSwitchboard(
      loadConfig(p.env({ ROLES: 'api', QUERY_TIMEOUT_MS: '1500', LB_DRAIN_MS: '0' })),
      log,
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const unservedKey = (await createApiKey(p.main.redis, { workspace: UNSERVED, role: 'admin' })).key;
      const waiting = await unappliedPosition(p.main.redis, UNSERVED);
      const over = fetchOver(agent);
      // Holds the agent's one connection for QUERY_TIMEOUT_MS, across the start of the stop.
      const held = over(`${stopping.url!}/v1/workspaces/${UNSERVED}/stats?minPosition=${waiting}`, {
        headers: { authorization: `Bearer ${unservedKey}` },
      });
      await sleep(300);
      const stopped = stopping.stop();
      await sleep(100);

      const tries: { url: string; key: string | null; at: number }[] = [];
      const retries: { url: string; status: unknown; delayMs: number; body?: unknown; at: number }[] = [];
      const c = p.client(WS, {
        url: stopping.url!,
        failover: [p.main.url!],
        fetch: (url, init) => {
          tries.push({
            url: String(url),
            key: new Headers(init?.headers).get('idempotency-key'),
            at: Date.now(),
          });
          return String(url).startsWith(stopping.url!) ? over(url, init) : fetch(url, init);
        },
        onRetry: (i) => void retries.push({ ...i, at: Date.now() }),
      });
      const queued = await c.queueContact({ id: 'moved-on', skills: ['x'] });
      expect((await held).status).toBe(503); // position-not-reached, answered as the stop began
      await stopped;

      expect(queued).toMatchObject({ applied: true, status: 201 });
      expect(tries.map((t) => new URL(t.url).origin)).toEqual([stopping.url, p.main.url]);
      expect(new Set(tries.map((t) => t.key))).toEqual(new Set([queued.idempotencyKey]));
      expect(retries).toMatchObject([
        { url: stopping.url, status: 503, attempt: 1, body: { type: '/problems/shutting-down' } },
      ]);
      // The backoff only (250 ms): the Retry-After: 1 was the stopping instance's, not the next one's.
      expect(retries[0]!.delayMs).toBe(250);
      expect(tries[1]!.at - retries[0]!.at).toBeLessThan(900);
    } finally {
      agent.destroy();
      await stopping.stop();
    }
  }, 20_000);
});
