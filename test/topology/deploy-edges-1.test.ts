/**
 * HAProxy replays a request that may have reached an API instance (the instance closed without
 * answering: it died mid-request) only where a replay cannot change the outcome: GET, HEAD,
 * OPTIONS, or a command with an Idempotency-Key (the API answers a repeat with the first outcome).
 * A user saw a keyless `DELETE /agents/{id}` that removed the agent answered `404` (the replay
 * found no agent), and a keyless `PUT /settings` applied a second time, after (and over) another
 * client's change: the templates counted PUT and DELETE as safe to replay, as HTTP calls them, but
 * for Switchboard they are commands like POST and PATCH. Now such a request is sent once and
 * answered `502` `/problems/bad-gateway` ("retry it with the same Idempotency-Key").
 *
 * Real HAProxy (the local template, and haproxy.docker.cfg's api backend) in front of a loopback
 * server that closes the connection on the first arrival of each request, as a dying instance
 * would, and answers a repeat 200.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureSelfSignedCert,
  HAPROXY_DOCKER_CONFIG,
  HAPROXY_TEMPLATE,
} from '../../src/topology/haproxy/config.ts';
import type { HaproxyHandle } from '../../src/topology/haproxy/process.ts';
import { waitFor } from '../support/wait.ts';
import { startLocalHaproxy, tempDir } from './helpers.ts';

let tmp: { dir: string; remove(): Promise<void> };
let pem: string;
const started: HaproxyHandle[] = [];
/** Arrivals at the backend of each test request (by its X-Test-Id). */
const arrivals = new Map<string, number>();
let backend: http.Server;
let backendPort: number;

beforeAll(async () => {
  tmp = await tempDir('deploy-edges-1');
  pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
  backend = http.createServer((req, res) => {
    const id = req.headers['x-test-id'];
    if (typeof id !== 'string') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    const n = (arrivals.get(id) ?? 0) + 1;
    arrivals.set(id, n);
    req.resume();
    // The first arrival: the instance "dies" after taking the request, with no answer.
    if (n === 1) req.on('end', () => req.socket.destroy());
    else req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  backendPort = (backend.address() as { port: number }).port;
});

afterAll(async () => {
  for (const h of started) await h.stop().catch(() => undefined);
  backend?.closeAllConnections();
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
  await tmp?.remove();
});

function send(
  port: number,
  method: string,
  id: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/workspaces/deploy-edges/agents/a1',
        method,
        agent: false,
        headers: { 'x-test-id': id, 'content-type': 'application/json', ...headers },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => {
          let type: string | undefined;
          try {
            type = (JSON.parse(body) as { type?: string }).type;
          } catch {
            type = undefined;
          }
          resolve({ status: res.statusCode ?? 0, ...(type !== undefined ? { type } : {}) });
        });
      },
    );
    req.on('error', reject);
    req.end(method === 'GET' || method === 'DELETE' ? undefined : '{}');
  });
}

/** The api backend's replay rule in a config's text (comments left out). */
function replayRule(file: string): string {
  return (
    readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => /^\s*http-request disable-l7-retry/.test(l))
      ?.trim() ?? ''
  );
}

describe('HAProxy replays only what a replay cannot change', () => {
  it('a keyless PUT or DELETE cut by the instance is sent once and answered 502; GET and keyed commands are replayed', async () => {
    const { rt, httpPort } = await startLocalHaproxy(path.join(tmp.dir, 'run'), pem, started, {
      apiServers: [{ host: '127.0.0.1', port: backendPort }],
      apiCheckInter: '200ms',
    });
    await waitFor('api1 UP', async () => (await rt.serverState('api', 'api1'))?.checkStatus === 'L7OK');

    for (const method of ['DELETE', 'PUT', 'PATCH', 'POST']) {
      const r = await send(httpPort, method, `keyless-${method}`);
      expect({ method, arrivals: arrivals.get(`keyless-${method}`) }).toEqual({ method, arrivals: 1 });
      expect({ method, ...r }).toEqual({ method, status: 502, type: '/problems/bad-gateway' });
    }
    // Replayed where the repeat answers the first outcome (or reads only).
    const keyed = await send(httpPort, 'DELETE', 'keyed-DELETE', { 'idempotency-key': 'k-1' });
    expect(keyed.status).toBe(200);
    expect(arrivals.get('keyed-DELETE')).toBe(2);
    const read = await send(httpPort, 'GET', 'read-GET');
    expect(read.status).toBe(200);
    expect(arrivals.get('read-GET')).toBe(2);
  });

  it('haproxy.docker.cfg has the same replay rule as the local template', () => {
    const local = replayRule(HAPROXY_TEMPLATE);
    expect(local).toMatch(/^http-request disable-l7-retry if /);
    expect(replayRule(HAPROXY_DOCKER_CONFIG)).toBe(local);
  });
});
