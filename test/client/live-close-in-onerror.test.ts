/**
 * close() called from onError, the subscription's failure channel ("log it and give up"): the
 * failure being told is the one `ready` rejects with, and no reconnection is left scheduled (a
 * timer that would hold a Node process for the backoff, or the minute a Retry-After may ask).
 */
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { type ClientFixture, log, startClientFixture } from './fixture.ts';

const WS = { refused: 'client-close-in-onerror-a', down: 'client-close-in-onerror-b' };
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture(Object.values(WS));
}, 30_000);
afterAll(async () => p?.stop());

describe('close() from onError', () => {
  it('on a refused first connection: ready rejects with the refusal, not "closed before it opened"', async () => {
    const c = p.client(WS.refused);
    await c.registerAgent({ id: 'me', skills: ['s'] });
    const key = (await c.createKey({ role: 'agent', agentId: 'me' })).key;
    const errors: Error[] = [];
    const sub = c.with({ key }).subscribe(
      {
        agent: 'someone-else',
        onError: (e) => {
          errors.push(e);
          sub.close();
        },
      },
      () => {},
    );
    const err = await sub.ready.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await sub.ended;
    expect(errors).toHaveLength(1);
    expect(err).toBeInstanceOf(SwitchboardError);
    expect(err).toMatchObject({ status: 403, type: '/problems/forbidden' });
    expect(err).toBe(errors[0]);
  });

  it('on a failed reconnect: onClose says it will not open again, and it does not try', async () => {
    const port = await freePort();
    const api = await startSwitchboard(loadConfig(p.env({ ROLES: 'api', PORT: String(port) })), log);
    const c = p.client(WS.down, { url: api.url! });
    const errors: Error[] = [];
    const closes: { code: number; retryInMs: number | null }[] = [];
    let reconnectsAtClose: number | undefined;
    const sub = c.subscribe(
      {
        backoffMs: 50,
        onClose: (i) => closes.push(i),
        onError: (e) => {
          errors.push(e);
          reconnectsAtClose = sub.reconnects;
          sub.close();
        },
      },
      () => {},
    );
    try {
      await sub.ready;
      await api.stop(); // the socket is closed (1001), and the reconnect finds nothing listening
      await waitFor('the failed reconnect told to onError', () => errors.length >= 1, { timeoutMs: 5_000 });
      await sub.ended;
      expect(errors[0]!.message).toMatch(/ECONNREFUSED/);
      await sleep(500); // past the backoff (100 ms) it would have waited
      expect(sub.reconnects).toBe(reconnectsAtClose);
      expect(closes.at(-1)!.retryInMs).toBeNull();
      expect(errors).toHaveLength(1);
    } finally {
      sub.close();
    }
  });
});
