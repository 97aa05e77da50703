/**
 * A header the caller gives in `headers` whose name differs only in case from one the client sets
 * itself (`Accept`, `Content-Type`, `Authorization`) is one header on the wire, never both values
 * joined by fetch ("Bearer a, Bearer b", "text/plain, application/json"). The rule (docs/API.md,
 * "Headers"): a header in `headers` replaces the client's default of that name (accept,
 * content-type); an option replaces a header (the client's `key` is the Authorization, the
 * `idempotencyKey` option the Idempotency-Key). The live feed's upgrade (the key in a header, or a
 * ticket bought first) carries each header once too. Against a local HTTP server that records the
 * headers each request arrived with.
 */
import type http from 'node:http';
import { SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { expect, it } from 'vitest';
import { localServer } from '../support/local-server.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
  /** Each header's values as they arrived, the name in lower case (a joined value is one entry). */
  readonly headers: Record<string, string[]>;
}

/** A server answering every request 200 `{ticket}` and refusing every upgrade 401; what each carried. */
async function recording(): Promise<{ url: string; seen: Seen[]; upgrades: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const upgrades: Seen[] = [];
  const record = (req: http.IncomingMessage): Seen => {
    const headers: Record<string, string[]> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      headers[name] = [...(headers[name] ?? []), req.rawHeaders[i + 1]!];
    }
    return { method: req.method!, url: req.url!, headers };
  };
  const { url, server, close } = await localServer((req, res) => {
    seen.push(record(req));
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ticket: 't-1', expiresAt: new Date().toISOString() }));
  });
  server.on('upgrade', (req, socket) => {
    socket.on('error', () => undefined);
    upgrades.push(record(req));
    const body = JSON.stringify({ type: '/problems/unauthorized', title: 'Unauthorized', status: 401 });
    socket.end(
      `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/problem+json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return { url, seen, upgrades, close };
}

const PATH = '/v1/workspaces/default/contacts';

it("an Accept in headers, in any case, is the one sent: not joined with the client's", async () => {
  for (const name of ['Accept', 'ACCEPT', 'accept']) {
    const { url, seen } = await recording();
    await new SwitchboardClient({ url }).request('GET', PATH, { headers: { [name]: 'text/plain' } });
    expect(seen[0]!.headers.accept, `header ${name}`).toEqual(['text/plain']);
  }
});

it("a Content-Type in headers of a call with a body, in any case, is the one sent: not joined with the client's", async () => {
  for (const name of ['Content-Type', 'CONTENT-TYPE', 'content-type']) {
    const { url, seen } = await recording();
    await new SwitchboardClient({ url }).request('POST', PATH, {
      body: { skills: ['x'] },
      headers: { [name]: 'application/json; charset=utf-8' },
      idempotencyKey: 'k',
    });
    expect(seen[0]!.headers['content-type'], `header ${name}`).toEqual(['application/json; charset=utf-8']);
  }
});

it('without a Content-Type in headers, a body goes as application/json; without a body, none is added', async () => {
  const { url, seen } = await recording();
  const client = new SwitchboardClient({ url });
  await client.request('POST', PATH, { body: { skills: ['x'] }, idempotencyKey: 'k' });
  await client.request('GET', PATH);
  await client.request('GET', PATH, { headers: { 'Content-Type': 'text/plain' } });
  expect(seen.map((s) => s.headers['content-type'])).toEqual([
    ['application/json'],
    undefined,
    ['text/plain'],
  ]);
  expect(seen.map((s) => s.headers.accept)).toEqual([
    ['application/json'],
    ['application/json'],
    ['application/json'],
  ]);
});

it('a client with a key sends its key as the Authorization, one given in headers (any case) or not', async () => {
  for (const name of ['Authorization', 'AUTHORIZATION', 'authorization']) {
    const { url, seen } = await recording();
    await new SwitchboardClient({ url, key: 'sb_client_key' }).request('GET', PATH, {
      headers: { [name]: 'Bearer sb_header_key' },
    });
    expect(seen[0]!.headers.authorization, `header ${name}`).toEqual(['Bearer sb_client_key']);
  }
});

it('a client without a key sends an Authorization given in headers as given', async () => {
  const { url, seen } = await recording();
  await new SwitchboardClient({ url }).request('GET', PATH, {
    headers: { Authorization: 'Bearer sb_header_key' },
  });
  expect(seen[0]!.headers.authorization).toEqual(['Bearer sb_header_key']);
});

it('every header the client sets, given in headers in another case, is sent once (a command-like write)', async () => {
  const { url, seen } = await recording();
  await new SwitchboardClient({ url, key: 'sb_k' }).request('POST', PATH, {
    body: { skills: ['x'] },
    idempotencyKey: 'k-option',
    headers: {
      Accept: 'application/problem+json',
      'Content-Type': 'application/json; charset=utf-8',
      Authorization: 'Bearer other',
      'Idempotency-Key': 'k-header',
      'X-Trace': 't-1',
    },
  });
  const h = seen[0]!.headers;
  expect({
    accept: h.accept,
    'content-type': h['content-type'],
    authorization: h.authorization,
    'idempotency-key': h['idempotency-key'],
    'x-trace': h['x-trace'],
  }).toEqual({
    accept: ['application/problem+json'],
    'content-type': ['application/json; charset=utf-8'],
    authorization: ['Bearer sb_k'],
    'idempotency-key': ['k-option'],
    'x-trace': ['t-1'],
  });
});

it("the live feed's upgrade with the key in a header carries one Authorization", async () => {
  const { url, upgrades } = await recording();
  const sub = new SwitchboardClient({ url, key: 'sb_live_key' }).subscribeLive(
    { after: '0-0' },
    () => undefined,
  );
  await expect(sub.ready).rejects.toMatchObject({ status: 401 });
  expect(upgrades).toHaveLength(1);
  expect(upgrades[0]!.headers.authorization).toEqual(['Bearer sb_live_key']);
  for (const [name, values] of Object.entries(upgrades[0]!.headers)) expect(values, name).toHaveLength(1);
});

it("the live feed by ticket: the ticket's request carries each header once, the upgrade no Authorization", async () => {
  const { url, seen, upgrades } = await recording();
  const sub = new SwitchboardClient({ url, key: 'sb_live_key' }).subscribeLive(
    { after: '0-0', auth: 'ticket' },
    () => undefined,
  );
  await expect(sub.ready).rejects.toMatchObject({ status: 401 });
  expect(seen).toHaveLength(1);
  expect(seen[0]!.method).toBe('POST');
  expect(seen[0]!.headers.authorization).toEqual(['Bearer sb_live_key']);
  expect(seen[0]!.headers['content-type']).toEqual(['application/json']);
  for (const [name, values] of Object.entries(seen[0]!.headers)) expect(values, name).toHaveLength(1);
  expect(upgrades).toHaveLength(1);
  expect(upgrades[0]!.url).toContain('ticket=t-1');
  expect(upgrades[0]!.headers.authorization).toBeUndefined();
  for (const [name, values] of Object.entries(upgrades[0]!.headers)) expect(values, name).toHaveLength(1);
});

it('two names in headers that differ only in case: the last is sent, and an error names that Idempotency-Key', async () => {
  const { url, seen, close } = await recording();
  const client = new SwitchboardClient({ url, retries: 0 });
  await client.request('GET', PATH, { headers: { Accept: 'text/plain', accept: 'text/csv' } });
  await client.request('POST', PATH, {
    body: { skills: ['x'] },
    headers: { 'Idempotency-Key': 'k-first', 'idempotency-key': 'k-last' },
  });
  expect(seen[0]!.headers.accept).toEqual(['text/csv']);
  expect(seen[1]!.headers['idempotency-key']).toEqual(['k-last']);
  await close(); // nothing listens there now: no answer
  const err = await client
    .request('POST', PATH, {
      body: { skills: ['x'] },
      headers: { 'IDEMPOTENCY-KEY': 'k-first', 'Idempotency-Key': 'k-last' },
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(SwitchboardError);
  expect((err as SwitchboardError).status).toBe('network');
  expect((err as SwitchboardError).idempotencyKey).toBe('k-last');
});
