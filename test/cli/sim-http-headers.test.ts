/**
 * The simulator's HTTP (src/cli/sim/http.ts) builds no headers of its own: it hands a call's
 * `headers` to the typed client, so the client's rule holds for it (each header once whatever the
 * case of its name; a header given replaces the client's Accept/Content-Type; the key replaces an
 * Authorization given). This shows it against a local HTTP server recording the raw headers each
 * request arrived with: no header twice, none joined as "a, b". The suspected joining defect is
 * absent here (it was fixed in the client the simulator uses).
 */
import { expect, it } from 'vitest';
import { SwitchboardHttp } from '../../src/cli/sim/http.ts';
import { localServer } from '../support/local-server.ts';

it('a call with headers in other cases than the defaults sends each header once, unjoined', async () => {
  const seen: Record<string, string[]>[] = [];
  const server = await localServer((req, res) => {
    const headers: Record<string, string[]> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      headers[name] = [...(headers[name] ?? []), req.rawHeaders[i + 1]!];
    }
    seen.push(headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  const keyed = new SwitchboardHttp(server.url, 5000, 'sb_k_s');
  const r = await keyed.request(
    'POST',
    '/v1/workspaces/w/contacts',
    { id: 'c1' },
    {
      'Content-Type': 'application/json; charset=utf-8',
      ACCEPT: 'application/problem+json',
      Authorization: 'Bearer other',
    },
  );
  expect(r).toMatchObject({ ok: true, status: 200 });
  const open = new SwitchboardHttp(server.url, 5000);
  expect((await open.request('GET', '/health', undefined, { Authorization: 'Bearer given' })).ok).toBe(true);
  const [post, get] = seen;
  expect(post!['content-type']).toEqual(['application/json; charset=utf-8']);
  expect(post!.accept).toEqual(['application/problem+json']);
  expect(post!.authorization).toEqual(['Bearer sb_k_s']);
  expect(get!.authorization).toEqual(['Bearer given']);
  expect(get!.accept).toEqual(['application/json']);
  for (const headers of seen)
    for (const [name, values] of Object.entries(headers)) expect(values, name).toHaveLength(1);
});
