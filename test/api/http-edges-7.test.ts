/**
 * A WebSocket upgrade with `Sec-WebSocket-Key` or `Sec-WebSocket-Version` given twice: Node joins
 * the two with ", ", so two good keys were refused as "must be 16 random bytes in base64" and `13`
 * twice as "must be 13 (or 8)", which names nothing the client can change. Each is now the
 * `bad-handshake` naming the header, `is given 2 times: give it once`, as other headers given twice
 * are (http-edges-6), and the connection is closed; one of each still upgrades.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { rawHttp, rawRequest as request } from '../support/raw-http.ts';

const WS = 'http-edges-7';
const api = inProcessApi([WS]);
const B = `/v1/workspaces/${WS}`;
const KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';
const VERSION = 'Sec-WebSocket-Version: 13';

const upgrade = (headers: string[]) =>
  rawHttp(
    (api.running.api!.server.address() as { port: number }).port,
    request('GET', `${B}/events/live`, ['Upgrade: websocket', 'Connection: Upgrade', ...headers]).replace(
      'Connection: close\r\n',
      '',
    ),
    1000,
  );

describe('an upgrade with a WebSocket header given twice', () => {
  it('is a bad-handshake naming it, "is given 2 times", and closed', async () => {
    const cases: [string, string[], string][] = [
      ['the same key twice', [KEY, KEY, VERSION], 'Sec-WebSocket-Key'],
      [
        'two keys, any case',
        [KEY, 'sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==', VERSION],
        'Sec-WebSocket-Key',
      ],
      ['13 twice', [KEY, VERSION, VERSION], 'Sec-WebSocket-Version'],
    ];
    for (const [what, headers, header] of cases) {
      const a = await upgrade(headers);
      expect(a.status, `${what}: ${a.body}`).toBe(400);
      expect(a.headers['content-type'], what).toMatch(/^application\/problem\+json/);
      const body = JSON.parse(a.body) as { type: string; errors: unknown[]; detail: string };
      expect(body, what).toMatchObject({
        type: '/problems/bad-handshake',
        errors: [{ path: header, message: 'is given 2 times: give it once' }],
      });
      expect(body.detail, what).toContain(`${header} is given 2 times`);
      expect(a.closed, what).toBe(true);
    }
  });

  it('one of each still upgrades', async () => {
    const a = await upgrade([KEY, VERSION]);
    expect(a.status, a.body).toBe(101);
  });
});
