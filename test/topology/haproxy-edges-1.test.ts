/**
 * Raw HTTP/1 bytes through the deployment's HAProxy (infra/haproxy/haproxy.cfg.tmpl) in front of a
 * real API instance. A user saw: a command whose body never came (Content-Length 100, one byte
 * sent) held open at the instance until HAProxy's `timeout server` answered it 30 s later with a
 * `504` `/problems/gateway-timeout` that says "a command may have been applied" (the API's own
 * `REQUEST_TIMEOUT_MS` is 30 s as well, so HAProxy won the race). Now HAProxy waits for the body
 * (`http-request wait-for-body time 10s`) before it sends the request on, and answers a body that
 * does not come with a `408` `/problems/request-timeout` (problem+json, X-Request-Id) after 10 s,
 * nothing sent to an instance. Also held here: smuggling shapes are refused or read one way (the
 * second request never executed), `Expect: 100-continue` and pipelining work, and what HAProxy
 * 2.6's own HTTP/1 parser refuses (an HTML `400` or `408` it writes itself, docs/API.md, `X-Request-Id`:
 * the exception to problem+json behind the deployment's HAProxy) never reaches the API.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import { type FleetBehindHaproxy, startFleetBehindHaproxy } from '../support/fleet-behind-haproxy.ts';

const WS = 'haproxy-edges';
const AGENTS = `/v1/workspaces/${WS}/agents`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let lb: FleetBehindHaproxy;
let port: number;

beforeAll(async () => {
  lb = await startFleetBehindHaproxy({ fleet: { api: 1, projector: 1, env: { WORKSPACES: WS } } });
  port = Number(new URL(lb.frontend).port);
}, 60_000);

afterAll(async () => {
  await lb?.stop();
}, 60_000);

interface Raw {
  readonly text: string;
  /** The connection closed (by HAProxy) before waitMs. */
  readonly closed: boolean;
  readonly ms: number;
}

/** Writes `payload` on a new connection; what came back until it closed, or until waitMs. */
function raw(payload: string, waitMs = 3_000): Promise<Raw> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    let text = '';
    socket.on('data', (b) => (text += b.toString('latin1')));
    // HAProxy may reset the connection once it has answered.
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false, ms: Date.now() - t0 });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true, ms: Date.now() - t0 });
    });
  });
}

/** The status lines of every answer in `text`, in order. */
const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

/** An answer's head (lower-cased header names) and body. */
function parse(text: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const [line = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(line.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

function expectProblem(text: string, type: string, status: number) {
  const a = parse(text);
  expect(a.status, text).toBe(status);
  expect(a.headers['content-type'], text).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(a.body) as { type: string; status: number };
  expect(body.type).toBe(`/problems/${type}`);
  expect(body.status).toBe(status);
  expect(PROBLEM_TYPES[type as keyof typeof PROBLEM_TYPES]).toBe(status);
  expect(a.headers['x-request-id'], text).toMatch(UUID);
}

const agentBody = (id: string) => JSON.stringify({ id, skills: ['x'] });
const post = (extra = '') =>
  `POST ${AGENTS} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n${extra}`;

/** The agent's status through HAProxy (404 while it was never created). */
async function agentStatus(id: string): Promise<number> {
  const r = await fetch(`${lb.frontend}${AGENTS}/${id}`);
  await r.arrayBuffer();
  return r.status;
}

describe('raw HTTP/1 through HAProxy in front of the API', () => {
  it('a body that never comes: 408 problem+json after 10 s, nothing reached the API (was a 504 after 30 s); a slowloris: the parser 408', async () => {
    const body = agentBody('late');
    const [late, loris] = await Promise.all([
      raw(`${post(`Content-Length: ${body.length}\r\n`)}\r\n${body.slice(0, 5)}`, 20_000),
      raw('GET /health HTTP/1.1\r\nHost: a\r\n', 20_000),
    ]);
    expect(late.closed, late.text).toBe(true);
    expectProblem(late.text, 'request-timeout', 408);
    expect(late.ms).toBeGreaterThanOrEqual(9_000);
    expect(late.ms).toBeLessThan(15_000);
    // Headers never finished: HAProxy's parser answers it (HTML, `timeout http-request`).
    expect(loris.closed).toBe(true);
    expect(statuses(loris.text)).toEqual([408]);
    expect(loris.ms).toBeLessThan(15_000);
    expect(await agentStatus('late')).toBe(404);
  }, 40_000);

  it("Expect: 100-continue, pipelining and a body over HAProxy's buffer all reach the API", async () => {
    const body = agentBody('continued');
    const cont = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.write(`${post(`Expect: 100-continue\r\nContent-Length: ${body.length}\r\n`)}\r\n`),
      );
      let text = '';
      socket.on('data', (b) => {
        text += b.toString('latin1');
        if (text === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write(body);
        if (/\r\n\r\n\{.*\}$/s.test(text)) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(text)}`)), 10_000);
    });
    expect(statuses(cont)).toEqual([100, 201]);

    const piped = await raw(
      'GET /health HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n',
      2_000,
    );
    expect(statuses(piped.text), piped.text).toEqual([200, 404]);

    // 20 kB of JSON (HAProxy's buffer is 16 kB): wait-for-body sends it on once its buffer is full.
    const big = JSON.stringify({ id: 'big', skills: ['x'], name: 'b'.repeat(20_000) });
    const over = await raw(`${post(`Content-Length: ${big.length}\r\n`)}\r\n${big}`, 2_000);
    const answer = parse(over.text);
    expect(answer.status, over.text).toBe(400);
    expect(JSON.parse(answer.body).type).toBe('/problems/invalid-request');
  }, 30_000);

  it("a WebSocket handshake HAProxy lets through but the API refuses: the API's 400 bad-handshake", async () => {
    const live = `GET /v1/workspaces/${WS}/events/live HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
    for (const headers of [
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n',
    ]) {
      const r = await raw(`${live}${headers}\r\n`, 2_000);
      expect(statuses(r.text), r.text).toEqual([400]);
      expectProblem(r.text, 'bad-handshake', 400);
    }
  }, 30_000);

  it('smuggling shapes: refused by HAProxy or read one way; the request hidden in the body never runs', async () => {
    const smuggled = `${post(`Content-Length: ${agentBody('smuggled').length}\r\n`)}\r\n${agentBody('smuggled')}`;
    // Content-Length with Transfer-Encoding: chunked: HAProxy reads it chunked (empty body) and
    // closes after the answer, so what follows is never a request.
    const clte = await raw(
      `${post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n')}\r\n0\r\n\r\n${smuggled}`,
    );
    expect(statuses(clte.text)).toEqual([400]);
    expect(clte.closed).toBe(true);
    expectProblem(clte.text, 'invalid-request', 400);
    // Refused by HAProxy's parser (its own HTML 400), the connection closed.
    const refused = [
      `${post('Content-Length: 4\r\nContent-Length: 5\r\n')}\r\n{}{}{${smuggled}`,
      `${post('Transfer-Encoding: xchunked\r\n')}\r\n0\r\n\r\n${smuggled}`,
      `${post('Transfer-Encoding: chunked\r\n')}\r\nzz\r\n{}\r\n0\r\n\r\n${smuggled}`,
      `${post('Content-Length: -1\r\n')}\r\n${smuggled}`,
    ];
    for (const payload of refused) {
      const r = await raw(payload);
      expect(statuses(r.text), payload).toEqual([400]);
      expect(r.closed).toBe(true);
    }
    expect(await agentStatus('smuggled')).toBe(404);
  }, 30_000);

  it("what HAProxy 2.6's parser refuses is a 400 (its own, in HTML) that never reaches the API", async () => {
    const body = agentBody('parsed');
    const cl = `Content-Length: ${body.length}\r\n`;
    const shapes = [
      `POST ${AGENTS} x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n${cl}\r\n${body}`,
      `P(ST ${AGENTS} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n${cl}\r\n${body}`,
      `${post(`${cl}no colon\r\n`)}\r\n${body}`,
      `${post(`${cl}X-A : b\r\n`)}\r\n${body}`,
      `${post(`${cl}Host: b\r\n`)}\r\n${body}`,
      `${post(`${cl}X-A: ${'a'.repeat(20_000)}\r\n`)}\r\n${body}`,
      `POST ${AGENTS}?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n${cl}\r\n${body}`,
      `GET /v1/workspaces/${WS}/events/live HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      `GET /v1/workspaces/${WS}/events/live HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ];
    for (const payload of shapes) {
      const r = await raw(payload);
      expect(statuses(r.text), payload.slice(0, 120)).toEqual([400]);
      expect(parse(r.text).headers['content-type']).toBe('text/html');
      expect(r.closed).toBe(true);
    }
    expect(await agentStatus('parsed')).toBe(404);
  }, 30_000);
});
