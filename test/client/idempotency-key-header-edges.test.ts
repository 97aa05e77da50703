/**
 * The Idempotency-Key a caller of `request()` / `send()` gives in `headers` (any case of the name)
 * rather than as the `idempotencyKey` option is the call's key all the same: it is on the
 * SwitchboardError when the tries run out (a 503), on a 500, on a call that never got an answer,
 * so the caller can send the command again with it. Given both ways, the option is the one sent.
 * Against a local HTTP server that records the key each request carried.
 */
import { SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { expect, it } from 'vitest';
import { localServer } from '../support/local-server.ts';

/** A server answering every request with `status`; the Idempotency-Key of each request it got. */
async function answering(
  status: number,
): Promise<{ url: string; keys: (string | undefined)[]; close(): Promise<void> }> {
  const keys: (string | undefined)[] = [];
  const { url, close } = await localServer((req, res) => {
    keys.push(req.headers['idempotency-key'] as string | undefined);
    req.resume();
    res.writeHead(status, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: '/problems/redis-unavailable', title: 'Unavailable', status }));
  });
  return { url, keys, close };
}

const failure = (p: Promise<unknown>): Promise<SwitchboardError> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(SwitchboardError);
      return e as SwitchboardError;
    },
  );

it('a 503 whose tries ran out names the key given as an Idempotency-Key header, whatever its case', async () => {
  for (const name of ['Idempotency-Key', 'idempotency-key', 'IDEMPOTENCY-KEY']) {
    const { url, keys } = await answering(503);
    const client = new SwitchboardClient({ url, retries: 1, backoffMs: 1 });
    const err = await failure(
      client.request('POST', '/v1/workspaces/default/contacts', {
        body: { skills: ['x'] },
        headers: { [name]: `key-${name}` },
      }),
    );
    expect(err.status).toBe(503);
    expect(err.attempts).toBe(2);
    expect(keys).toEqual([`key-${name}`, `key-${name}`]);
    expect(err.idempotencyKey, `header ${name}`).toBe(`key-${name}`);
  }
});

it('a 500 (not tried again) names it too', async () => {
  const { url, keys } = await answering(500);
  const client = new SwitchboardClient({ url, retries: 3, backoffMs: 1 });
  const err = await failure(
    client.request('POST', '/v1/workspaces/default/contacts', {
      body: { skills: ['x'] },
      headers: { 'idempotency-key': 'k-500' },
    }),
  );
  expect(err.status).toBe(500);
  expect(keys).toEqual(['k-500']);
  expect(err.idempotencyKey).toBe('k-500');
});

it('send() with no answer at all (network) and an aborted call name it', async () => {
  // A port with nothing listening: a server started and stopped.
  const { url, close } = await answering(200);
  await close();
  const client = new SwitchboardClient({ url, retries: 1, backoffMs: 1 });
  const err = await failure(
    client.send('POST', '/v1/workspaces/default/contacts', {
      body: { skills: ['x'] },
      headers: { 'Idempotency-Key': 'k-net' },
    }),
  );
  expect(err.status).toBe('network');
  expect(err.attempts).toBe(2);
  expect(err.idempotencyKey).toBe('k-net');
  const aborted = await failure(
    client.send('POST', '/v1/workspaces/default/contacts', {
      body: { skills: ['x'] },
      headers: { 'Idempotency-Key': 'k-abort' },
      signal: AbortSignal.abort(),
    }),
  );
  expect(aborted.detail).toBe('aborted');
  expect(aborted.idempotencyKey).toBe('k-abort');
});

it('given both as the option and as a header, the option is the one sent and named', async () => {
  const { url, keys } = await answering(503);
  const client = new SwitchboardClient({ url, retries: 0 });
  const err = await failure(
    client.request('POST', '/v1/workspaces/default/contacts', {
      body: { skills: ['x'] },
      idempotencyKey: 'k-option',
      headers: { 'Idempotency-Key': 'k-header' },
    }),
  );
  expect(keys).toEqual(['k-option']);
  expect(err.idempotencyKey).toBe('k-option');
});
