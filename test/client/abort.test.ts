/** an AbortSignal stops a call: nothing sent once it is aborted, no retry after it. */
import { SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { sleep } from '../support/wait.ts';
import { type ClientFixture, failure, log, startClientFixture } from './fixture.ts';

const WS = 'client-abort';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('abort', () => {
  it('a signal aborted before the call: nothing is sent', async () => {
    const sent: string[] = [];
    const c = p.client(WS, {
      fetch: (url, init) => {
        sent.push(`${init?.method} ${url}`);
        return fetch(url, init);
      },
    });
    const err = await failure(
      c.queueContact({ id: 'never', skills: ['x'] }, { signal: AbortSignal.abort() }),
    );
    expect(err).toBeInstanceOf(SwitchboardError);
    expect(sent).toEqual([]);
    const events = (await p.client(WS).listEvents({ types: ['ContactQueued'] })).events;
    expect(events.map((e) => e.data.id)).not.toContain('never');
  });

  it('a signal aborted during the wait between tries: no further try', async () => {
    // An instance that answers every command 503 not-replicated with Retry-After: 1.
    const replicated = await startSwitchboard(
      loadConfig(p.env({ ROLES: 'api', DURABILITY: 'replicated', REPLICA_WAIT_MS: '50' })),
      log,
    );
    try {
      const sent: number[] = [];
      const c = p.client(WS, {
        url: replicated.url!,
        fetch: (url, init) => {
          sent.push(Date.now());
          return fetch(url, init);
        },
      });
      const ac = new AbortController();
      const t0 = Date.now();
      const call = failure(c.queueContact({ skills: ['x'] }, { signal: ac.signal }));
      await sleep(300); // the first try has answered 503; the client waits Retry-After (1 s)
      expect(sent).toHaveLength(1);
      ac.abort();
      const err = await call;
      expect(err).toBeInstanceOf(SwitchboardError);
      expect(Date.now() - t0).toBeLessThan(900);
      await sleep(1500);
      expect(sent).toHaveLength(1); // nothing sent after the abort
    } finally {
      await replicated.stop();
    }
  }, 20_000);
});
