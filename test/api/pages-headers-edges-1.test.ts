/**
 * The pages and Swagger UI (`/docs`) refuse to be framed by another site in every browser: a
 * browser that ignores CSP's `frame-ancestors` (older ones) reads `X-Frame-Options`. `/docs` sent
 * only the CSP, so such a browser let another site frame its "Try it out" (clickjacking); it
 * sends the pages' framing, sniffing and referrer headers now.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const api = inProcessApi(['pages']);

describe('the pages and /docs, framed by another site', () => {
  it('each page says DENY, nosniff and no-referrer, besides its CSP', async () => {
    const app = api.running.api!;
    for (const url of ['/', '/agent', '/docs']) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(200);
      expect(
        {
          url,
          frame: r.headers['x-frame-options'],
          sniff: r.headers['x-content-type-options'],
          referrer: r.headers['referrer-policy'],
        },
        url,
      ).toEqual({ url, frame: 'DENY', sniff: 'nosniff', referrer: 'no-referrer' });
      expect(String(r.headers['content-security-policy']), url).toContain("frame-ancestors 'none'");
    }
  });
});
