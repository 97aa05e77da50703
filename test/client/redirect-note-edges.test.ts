/**
 * A GET followed to another origin arrives there without its Authorization (fetch drops it across
 * origins), and the 401 from there says so. The hint looked only at the client's `key` option: an
 * Authorization given in a call's `headers` (the name in any case) lost the same way, and the 401
 * said only "redirected to ...". Against two local HTTP servers (two ports: two origins), the
 * first redirecting to the second, which records what arrived and answers 401.
 */
import { SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { expect, it } from 'vitest';
import { localServer } from '../support/local-server.ts';

const HINT = 'fetch sends no Authorization header on a redirect to another origin';

/** A redirecting front and the server it points to; `authorizations`: what reached the latter. */
async function redirected(): Promise<{ front: string; authorizations: (string | undefined)[] }> {
  const authorizations: (string | undefined)[] = [];
  const target = await localServer((req, res) => {
    authorizations.push(req.headers.authorization);
    res.writeHead(401, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: '/problems/unauthorized', title: 'No API key was given', status: 401 }));
  });
  const front = await localServer((req, res) => {
    res.writeHead(302, { location: `${target.url}${req.url}` });
    res.end();
  });
  return { front: front.url, authorizations };
}

async function failure(p: Promise<unknown>): Promise<SwitchboardError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SwitchboardError);
  return err as SwitchboardError;
}

it('an Authorization given in headers, in any case, gets the cross-origin hint on the 401', async () => {
  for (const name of ['Authorization', 'authorization', 'AUTHORIZATION']) {
    const r = await redirected();
    const client = new SwitchboardClient({ url: r.front, retries: 0 });
    const err = await failure(
      client.request('GET', '/v1/workspaces/w/settings', { headers: { [name]: 'Bearer sb_k_s' } }),
    );
    expect(err.status, name).toBe(401);
    expect(r.authorizations, `${name}: what reached the other origin`).toEqual([undefined]);
    expect(err.detail, name).toContain(`redirected to `);
    expect(err.detail, name).toContain(HINT);
  }
});

it('the key option still gets it, and a call with no Authorization at all does not', async () => {
  const keyed = await redirected();
  const withKey = await failure(
    new SwitchboardClient({ url: keyed.front, retries: 0, key: 'sb_k_s' }).request('GET', '/x'),
  );
  expect(withKey.detail).toContain(HINT);
  const open = await redirected();
  const without = await failure(new SwitchboardClient({ url: open.front, retries: 0 }).request('GET', '/x'));
  expect(without.status).toBe(401);
  expect(without.detail).toContain('redirected to ');
  expect(without.detail).not.toContain(HINT);
});
