/**
 * X-Request-Id on what HAProxy's stats port answers through HAProxy's own code rather than a
 * `http-request return`: the stats page (`/stats`, the stats applet) and `/metrics` (the
 * prometheus-exporter service). A real HAProxy from the local template; the client's id comes back,
 * else a UUID, as on /ready and the 404 (haproxy-ready-problem.test.ts) and every answer of
 * Switchboard's layers (before, these two carried none). The answers are otherwise unchanged.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSelfSignedCert } from '../../src/topology/haproxy/config.ts';
import type { HaproxyHandle } from '../../src/topology/haproxy/process.ts';
import { startLocalHaproxy, tempDir } from './helpers.ts';

/** What HAProxy's `uuid()` gives (version 4). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let tmp: { dir: string; remove(): Promise<void> };
let statsPort: number;
const started: HaproxyHandle[] = [];

beforeAll(async () => {
  tmp = await tempDir('stats-request-id');
  const pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
  ({ statsPort } = await startLocalHaproxy(path.join(tmp.dir, 'run'), pem, started));
});

afterAll(async () => {
  for (const h of started) await h.stop().catch(() => undefined);
  await tmp?.remove();
});

/** Each served path, and what its answer is besides the header. */
const SERVED = [
  {
    path: '/stats',
    type: /^text\/html\b/,
    body: (text: string) => expect(text).toContain('Statistics Report'),
  },
  {
    path: '/stats;csv',
    // HAProxy 2.6 serves the CSV as text/plain.
    type: /^text\/plain\b/,
    body: (text: string) => expect(text).toMatch(/^# pxname,svname,/),
  },
  {
    path: '/metrics',
    type: /^text\/plain\b/,
    body: (text: string) => expect(text).toContain('haproxy_process_'),
  },
] as const;

describe("HAProxy's stats port: /stats and /metrics carry X-Request-Id", () => {
  for (const served of SERVED) {
    it(`GET ${served.path} with X-Request-Id: abc-123 answers that id back, the answer otherwise as before`, async () => {
      const r = await fetch(`http://127.0.0.1:${statsPort}${served.path}`, {
        headers: { 'X-Request-Id': 'abc-123' },
      });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(served.type);
      served.body(await r.text());
      expect(r.headers.get('x-request-id'), `${served.path} with X-Request-Id: abc-123`).toBe('abc-123');
    });

    it(`GET ${served.path} without X-Request-Id answers a UUID, a new one each request`, async () => {
      const url = `http://127.0.0.1:${statsPort}${served.path}`;
      const first = await fetch(url);
      expect(first.status).toBe(200);
      served.body(await first.text());
      expect(first.headers.get('x-request-id') ?? 'none', `${served.path} without X-Request-Id`).toMatch(
        UUID,
      );
      const second = await fetch(url);
      await second.text();
      expect(second.headers.get('x-request-id') ?? 'none').toMatch(UUID);
      expect(second.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
    });
  }

  it('one X-Request-Id on each answer, including the ones a `return` rule gives (/ready, the 404)', async () => {
    for (const p of ['/stats', '/metrics', '/ready', '/nothing']) {
      const r = await fetch(`http://127.0.0.1:${statsPort}${p}`, { headers: { 'X-Request-Id': 'abc-123' } });
      await r.text();
      // fetch joins repeated headers with ", ".
      expect(r.headers.get('x-request-id'), p).toBe('abc-123');
    }
  });
});
