/**
 * X-Request-Id on the answers given before any route runs (docs/API.md, "What Switchboard adds":
 * every answer carries the id used): a request Node parsed and refused (an Expect it cannot meet,
 * a CONNECT, a WebSocket handshake `ws` refuses) carries the client's id back, and bytes that are
 * no request get a new one, as any request without an id does.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const api = inProcessApi(['reqid'], { env: { ROLES: 'api' } });

/** Writes the bytes on a new connection; the whole answer, once the server closes it. */
async function raw(text: string): Promise<string> {
  const { hostname, port } = new URL(api.running.url!);
  const socket = connect(Number(port), hostname);
  let got = '';
  socket.on('data', (c: Buffer) => {
    got += c.toString('latin1');
  });
  await new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve());
    socket.on('error', reject);
    socket.write(text);
  });
  return got;
}

const header = (answer: string, name: string): string | undefined =>
  new RegExp(`\\r\\n${name}: ([^\\r]*)\\r\\n`, 'i').exec(answer)?.[1];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('X-Request-Id on the edge refusals', () => {
  it('a parsed request refused before any route answers with its own id, or a new one', async () => {
    const cases: [string, number][] = [
      [
        'GET /health HTTP/1.1\r\nHost: localhost\r\nExpect: something-else\r\nX-Request-Id: given-417\r\n\r\n',
        417,
      ],
      ['CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\nX-Request-Id: given-connect\r\n\r\n', 400],
      [
        'GET /v1/workspaces/reqid/events/live HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: a b\r\nX-Request-Id: given-ws\r\n\r\n',
        400,
      ],
    ];
    for (const [request, status] of cases) {
      const answer = await raw(request);
      expect(answer, request).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(header(answer, 'content-type')).toMatch(/^application\/problem\+json/);
      expect(header(answer, 'x-request-id'), answer).toBe(/X-Request-Id: ([^\r]*)/.exec(request)![1]);
    }
    const unnamed = await raw('GET /health HTTP/1.1\r\nHost: localhost\r\nExpect: other\r\n\r\n');
    expect(header(unnamed, 'x-request-id'), unnamed).toMatch(UUID);
  });

  it('bytes that are no HTTP request get a new id', async () => {
    const answer = await raw('GET /he\x01alth HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(header(answer, 'x-request-id'), answer).toMatch(UUID);
  });
});
