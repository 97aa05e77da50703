/**
 * What HAProxy's stats frontend (the operators' port: /stats, /metrics, /ready) answers, from a real
 * HAProxy started from the local template: /ready's 503 (no API server up, keepalived's check) is
 * problem+json of a documented type, as every error of Switchboard is; a path the frontend does not
 * serve is a 404 `/problems/no-route` (it has no backend: before, it answered the API frontends'
 * "no API instance up" 503, even with one up); keepalived's check still reads /ready's status. Its
 * answers carry X-Request-Id as the API frontends' do (the client's, else a UUID; before, none).
 */
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import { ensureSelfSignedCert } from '../../src/topology/haproxy/config.ts';
import type { HaproxyHandle } from '../../src/topology/haproxy/process.ts';
import { CHECK_HAPROXY_SCRIPT } from '../../src/topology/keepalived/config.ts';
import { waitFor } from '../support/wait.ts';
import { execFileP, startLocalHaproxy as startSharedHaproxy, startTinyHttp, tempDir } from './helpers.ts';

/** What HAProxy's `uuid()` gives (version 4). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let tmp: { dir: string; remove(): Promise<void> };
let pem: string;
const started: HaproxyHandle[] = [];

/** A real haproxy from the local template (with `apiPort` as its one API server), stopped after the suite. */
const startLocalHaproxy = (runDir: string, apiPort?: number) =>
  startSharedHaproxy(
    runDir,
    pem,
    started,
    apiPort === undefined
      ? {}
      : { apiServers: [{ host: '127.0.0.1', port: apiPort }], apiCheckInter: '100ms' },
  );

/** A problem+json answer's body, checked against the status it came with and the documented types. */
async function asProblem(r: Response, status: number) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toBe('application/problem+json');
  const body = (await r.json()) as Record<string, unknown>;
  expect(PROBLEM_TYPES[String(body.type).replace('/problems/', '') as keyof typeof PROBLEM_TYPES]).toBe(
    status,
  );
  expect(body.status).toBe(status);
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body;
}

/** keepalived's check script's exit code for `args`. */
const check = (...args: string[]) =>
  execFileP(CHECK_HAPROXY_SCRIPT, args, { timeout: 5000 }).then(
    () => 0,
    (e: { code?: number }) => e.code ?? -1,
  );

/** The raw answer to `bytes` sent on a fresh connection to `port`. */
function rawAnswer(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let got = '';
    socket.on('data', (b) => (got += b.toString()));
    socket.on('close', () => (got ? resolve(got) : reject(new Error('no answer'))));
    socket.on('error', () => undefined);
  });
}

beforeAll(async () => {
  tmp = await tempDir('ready');
  pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
});

afterAll(async () => {
  for (const h of started) await h.stop().catch(() => undefined);
  await tmp?.remove();
});

describe("HAProxy's stats frontend: /ready and its other answers", () => {
  it("/ready with no API server up: 503 problem+json /problems/no-instance-available saying what to do; keepalived's check fails", async () => {
    const runDir = path.join(tmp.dir, 'run-none');
    const { hp, statsPort } = await startLocalHaproxy(runDir);
    const ready = `http://127.0.0.1:${statsPort}/ready`;
    const body = await asProblem(await fetch(ready), 503);
    expect(body).toEqual({
      type: '/problems/no-instance-available',
      title: 'No API instance available',
      status: 503,
      detail: expect.stringMatching(
        /^No API instance is up behind this HAProxy\b.*\bkeepalived\b.*\bstart\b/,
      ),
    });
    // Any method: the same answer.
    expect(await asProblem(await fetch(ready, { method: 'DELETE' }), 503)).toEqual(body);
    const pidfile = path.join(runDir, 'test.pid');
    await writeFile(pidfile, `${hp.pid}\n`);
    expect(await check(pidfile, ready)).toBe(1);
  });

  it('/ready with one up: 200 "ready" and the check passes; another path is a 404 /problems/no-route, not "no API instance up"', async () => {
    const api = await startTinyHttp('api');
    try {
      const runDir = path.join(tmp.dir, 'run-up');
      const { hp, rt, statsPort } = await startLocalHaproxy(runDir, api.port);
      await waitFor('api1 UP', async () => (await rt.serverState('api', 'api1'))?.checkStatus === 'L7OK');
      const ready = `http://127.0.0.1:${statsPort}/ready`;
      const ok = await fetch(ready);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('ready');
      // X-Request-Id as the API frontends give it: a UUID, or the client's.
      expect(ok.headers.get('x-request-id') ?? 'none').toMatch(UUID);
      const okWithId = await fetch(ready, { headers: { 'X-Request-Id': 'abc-123' } });
      expect(okWithId.status).toBe(200);
      expect(okWithId.headers.get('x-request-id')).toBe('abc-123');
      const pidfile = path.join(runDir, 'test.pid');
      await writeFile(pidfile, `${hp.pid}\n`);
      expect(await check(pidfile, ready)).toBe(0);

      for (const [method, p] of [
        ['GET', '/nothing'],
        ['GET', '/'],
        ['POST', '/nothing'],
        ['GET', '/readyz'],
      ] as const) {
        const body = await asProblem(await fetch(`http://127.0.0.1:${statsPort}${p}`, { method }), 404);
        expect(body).toEqual({
          type: '/problems/no-route',
          title: 'No such route',
          status: 404,
          detail: expect.stringMatching(/\/stats\b.*\/metrics\b.*\/ready\b/),
        });
      }
      // What the frontend serves still answers.
      expect((await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).status).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${statsPort}/metrics`)).text()).toContain(
        'haproxy_process_',
      );
    } finally {
      await api.close();
    }
  });

  it("/ready's 503 and the 404 carry X-Request-Id as the API frontends' answers do: the client's, else a UUID", async () => {
    const { statsPort } = await startLocalHaproxy(path.join(tmp.dir, 'run-request-id'));
    for (const [p, status] of [
      ['/ready', 503],
      ['/nothing', 404],
    ] as const) {
      const url = `http://127.0.0.1:${statsPort}${p}`;
      const given = await fetch(url, { headers: { 'X-Request-Id': 'abc-123' } });
      await asProblem(given, status);
      expect(given.headers.get('x-request-id'), `${p} with X-Request-Id: abc-123`).toBe('abc-123');
      const first = await fetch(url);
      await asProblem(first, status);
      expect(first.headers.get('x-request-id') ?? 'none', `${p} without X-Request-Id`).toMatch(UUID);
      // A new one for each request.
      const second = await fetch(url);
      await asProblem(second, status);
      expect(second.headers.get('x-request-id') ?? 'none').toMatch(UUID);
      expect(second.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
    }
  });

  it("bytes that are no HTTP request: HAProxy 2.6's parser answers 400 itself, in HTML (no config reaches it)", async () => {
    const { statsPort } = await startLocalHaproxy(path.join(tmp.dir, 'run-raw'));
    const raw = await rawAnswer(statsPort, 'GET /ready HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n');
    const [head = '', text = ''] = raw.split('\r\n\r\n');
    expect(head, raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/content-type: text\/html/i);
    expect(text).toContain('400 Bad request');
  });
});
