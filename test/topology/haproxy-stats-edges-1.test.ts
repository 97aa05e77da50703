/**
 * HAProxy's stats port (infra/haproxy/haproxy.cfg.tmpl, and haproxy.docker.cfg's same frontend):
 * it serves /stats (with its `;csv`-style options), /metrics and /ready, and a 404 no-route
 * problem for any other path. A user saw `/statsX`, `/stats.json` or `/statistics` answered with
 * the stats page (`path_beg /stats` let them through, and `stats uri` matches by prefix). Now
 * those are the 404; the page and its options still answer.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSelfSignedCert } from '../../src/topology/haproxy/config.ts';
import type { HaproxyHandle } from '../../src/topology/haproxy/process.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { startLocalHaproxy, tempDir } from './helpers.ts';

describe("HAProxy's stats port", () => {
  let tmp: { dir: string; remove(): Promise<void> };
  const started: HaproxyHandle[] = [];
  let statsPort: number;

  beforeAll(async () => {
    tmp = await tempDir('stats-edges');
    const pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
    ({ statsPort } = await startLocalHaproxy(path.join(tmp.dir, 'run'), pem, started));
  }, 30_000);

  afterAll(async () => {
    for (const hp of started) await hp.stop();
    await tmp?.remove();
  }, 30_000);

  it('serves the stats page and its options, and answers 404 no-route for paths that only start with /stats', async () => {
    const get = (p: string) => fetch(`http://127.0.0.1:${statsPort}${p}`);
    for (const p of ['/stats', '/stats;csv', '/stats;csv;norefresh', '/stats?stats;csv']) {
      const res = await get(p);
      expect(res.status, p).toBe(200);
      await res.arrayBuffer();
    }
    for (const p of ['/statsX', '/stats.json', '/statistics', '/stats-old/']) {
      const res = await get(p);
      expect(res.status, p).toBe(404);
      expect(res.headers.get('content-type'), p).toBe('application/problem+json');
      expect((await res.json()).type, p).toBe('/problems/no-route');
    }
  }, 30_000);

  it('the compose file has the same rule as the template', async () => {
    const rule = (text: string) =>
      text
        .split('\n')
        .find((l) => l.includes('/problems/no-route'))
        ?.trim();
    const tmpl = await readFile(path.join(PROJECT_ROOT, 'infra/haproxy/haproxy.cfg.tmpl'), 'utf8');
    const docker = await readFile(path.join(PROJECT_ROOT, 'infra/haproxy/haproxy.docker.cfg'), 'utf8');
    expect(rule(docker)).toBe(rule(tmpl));
  });
});
