/**
 * RFC 9112, section 3.2: a server MUST answer 400 to a request with more than one Host header
 * field line, or with a Host whose value is not a host and port, as to an HTTP/1.1 request with
 * none. Node keeps the first Host and drops the others, so a request with two was once served as
 * if it had one: a query answered 200, a command applied (201), a WebSocket upgrade accepted
 * (101). A proxy in front may route by the other Host, so the two would disagree on what the
 * request is. Now each is the 400 `/problems/bad-request` that a missing Host is, naming `Host`;
 * nothing is appended and the connection is closed.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'host-twice';
const B = `/v1/workspaces/${WS}`;
const api = inProcessApi([WS]);

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The server ended the connection within 2 s of sending the request. */
  readonly closed: boolean;
}

/** Sends `lines` (and `body`) on a new connection; reads what comes until it closes, or for 2 s. */
function exchange(lines: readonly string[], body = ''): Promise<RawAnswer> {
  const { port } = api.running.api!.server.address() as { port: number };
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const settle = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const end = got.indexOf('\r\n\r\n');
      const [statusLine = '', ...headerLines] = got.slice(0, end < 0 ? got.length : end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
      resolve({ status, headers, body: end < 0 ? '' : got.slice(end + 4), closed });
    };
    const timer = setTimeout(() => settle(false), 2000);
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1');
    });
    socket.on('close', () => settle(true));
    socket.on('error', reject);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}

function expectHostRefused(a: RawAnswer): void {
  const where = `${a.status} ${JSON.stringify(a.headers)} ${a.body.slice(0, 300)}`;
  expect(a.status, where).toBe(400);
  expect(a.headers['content-type'], where).toMatch(/^application\/problem\+json/);
  const p = JSON.parse(a.body) as { type: string; status: number; errors?: { path: string }[] };
  expect(p.type).toBe('/problems/bad-request');
  expect(p.status).toBe(400);
  expect(p.errors?.map((e) => e.path)).toEqual(['Host']);
  expect(a.closed, where).toBe(true);
}

const commands = () => api.running.redis.xlen(workspaceKeys(WS).commands);
const agent = JSON.stringify({ id: 'two-hosts', skills: ['x'] });
const postAgent = (hosts: readonly string[]) =>
  exchange(
    [
      `POST ${B}/agents HTTP/1.1`,
      ...hosts,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(agent)}`,
    ],
    agent,
  );

describe('a request with more than one Host header', () => {
  it('is a 400 bad-request naming Host, on a query, a command and an upgrade; nothing is appended', async () => {
    const before = await commands();
    expectHostRefused(await exchange([`GET ${B}/stats HTTP/1.1`, 'Host: a.example', 'Host: b.example']));
    // The same Host twice, and in another case: still two field lines.
    expectHostRefused(await exchange([`GET ${B}/stats HTTP/1.1`, 'Host: localhost', 'host: localhost']));
    // HTTP/1.0 needs no Host, but may not carry two either.
    expectHostRefused(await exchange([`GET ${B}/stats HTTP/1.0`, 'Host: a.example', 'HOST: b.example']));
    expectHostRefused(await postAgent(['Host: a.example', 'Host: b.example']));
    expectHostRefused(
      await exchange([
        `GET ${B}/events/live HTTP/1.1`,
        'Host: a.example',
        'Host: b.example',
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
      ]),
    );
    expect(await commands()).toBe(before);
    expect((await api.call('GET', `${B}/agents/two-hosts`)).status).toBe(404);

    // One Host, as ever: served.
    const one = await postAgent(['Host: a.example', 'Connection: close']);
    expect(one.status, one.body).toBe(201);
    expect(await commands()).toBe(before + 1);
  });
});

describe('a Host header whose value is not a host and port', () => {
  it('is a 400 bad-request naming Host (RFC 9112, section 3.2); a name, an address, a port, empty are served', async () => {
    const before = await commands();
    for (const bad of ['a b.example', 'a.example/path', 'user@a.example', 'a.example:80x', '<script>'])
      expectHostRefused(await exchange([`GET ${B}/stats HTTP/1.1`, `Host: ${bad}`]));
    expectHostRefused(await postAgent(['Host: a.example/x']));
    expect(await commands()).toBe(before);
    for (const good of [
      'localhost',
      'localhost:8080',
      '127.0.0.1:1',
      '[::1]:8080',
      'sb.example.',
      'xn--bcher-kva.example',
      '',
    ])
      expect(
        (await exchange([`GET ${B}/stats HTTP/1.1`, `Host: ${good}`, 'Connection: close'])).status,
        good,
      ).toBe(200);
  });
});
