/**
 * The pages' conditional GETs (docs/API.md, "Operations"): each page and file answers `304` to an
 * `If-None-Match` naming its ETag, as HTTP has it (RFC 9110, 13.1.2): among a list of tags, as a
 * weak tag (`W/"…"`, the weak comparison If-None-Match uses), or `*`; a list not naming it gets
 * the file.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const api = inProcessApi(['pages']);

describe('a page asked for with If-None-Match', () => {
  it('answers 304 when the header names its ETag in any form HTTP allows, the file otherwise', async () => {
    const app = api.running.api!;
    for (const url of ['/', '/agent', '/ui/common.js', '/ui/style.css']) {
      const first = await app.inject({ url });
      expect(first.statusCode, url).toBe(200);
      const etag = String(first.headers.etag);
      expect(etag).toMatch(/^"[^"]+"$/);
      for (const header of [
        etag,
        `"other", ${etag}`,
        `${etag},"other"`,
        `W/${etag}`,
        `"a", W/${etag}`,
        '*',
      ]) {
        const r = await app.inject({ url, headers: { 'if-none-match': header } });
        expect(r.statusCode, `${url} If-None-Match: ${header}`).toBe(304);
        expect(r.headers.etag).toBe(etag);
        expect(r.body).toBe('');
      }
      for (const header of ['"other"', `"x${etag.slice(1)}`, 'W/"other", "more"']) {
        const r = await app.inject({ url, headers: { 'if-none-match': header } });
        expect(r.statusCode, `${url} If-None-Match: ${header}`).toBe(200);
        expect(r.body.length).toBeGreaterThan(0);
      }
    }
  });
});
