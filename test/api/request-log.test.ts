/**
 * The API's request log (src/adapters/http/request-log.ts), in-process against a real Redis:
 * one line per request, written after the answer, with method, URL, status, time and client
 * address, and for a command its id, type and position; health checks (`/health`, `/status`)
 * not at info. The client address comes from X-Forwarded-For only when the request arrives from
 * a proxy named in TRUST_PROXY; TRUST_PROXY takes addresses and CIDRs and refuses anything else.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { ConfigError, loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const WS = 'api-request-log';
type Line = Record<string, unknown>;

let redis: TestRedis;
let running: Running;
const lines: Line[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  running = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      TRUST_PROXY: '127.0.0.1,10.231.1.0/24',
    }),
    pino({ level: 'info' }, sink),
  );
  await projectorReady(running.redis, [WS]);
});

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

/** The request lines logged for requests carrying this request id. */
function requestLines(reqId: string): Line[] {
  return lines.filter((l) => l.reqId === reqId && l.level !== undefined && l.msg !== 'redis unavailable');
}

async function inject(opts: {
  method: 'GET' | 'POST';
  url: string;
  from: string;
  forwardedFor?: string;
  payload?: unknown;
}): Promise<{ status: number; reqId: string }> {
  const r = await running.api!.inject({
    method: opts.method,
    url: opts.url,
    remoteAddress: opts.from,
    headers: {
      ...(opts.forwardedFor ? { 'x-forwarded-for': opts.forwardedFor } : {}),
      ...(opts.payload
        ? { 'content-type': 'application/json', 'idempotency-key': `k-${Math.random()}` }
        : {}),
    },
    ...(opts.payload ? { payload: JSON.stringify(opts.payload) } : {}),
  });
  return { status: r.statusCode, reqId: String(r.headers['x-request-id']) };
}

describe('the request log', () => {
  it('writes one line per command request, with the command id and the forwarded client address', async () => {
    const r = await inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/agents`,
      from: '127.0.0.1',
      forwardedFor: '203.0.113.7',
      payload: { id: 'log-agent', skills: ['English'] },
    });
    expect(r.status).toBe(201);
    const mine = requestLines(r.reqId);
    expect(mine, JSON.stringify(mine)).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      level: 30,
      msg: 'request',
      method: 'POST',
      url: `/v1/workspaces/${WS}/agents`,
      status: 201,
      ip: '203.0.113.7',
      type: 'RegisterAgent',
      repeated: false,
    });
    expect(mine[0]!.commandId).toMatch(/^[0-9a-f-]{36}$/);
    expect(mine[0]!.position).toMatch(/^\d+-\d+$/);
    expect(typeof mine[0]!.ms).toBe('number');
  });

  it('takes X-Forwarded-For from a trusted proxy (a CIDR too), and never from anyone else', async () => {
    const viaLb = await inject({
      method: 'GET',
      url: `/v1/workspaces/${WS}/agents`,
      from: '10.231.1.12',
      forwardedFor: '198.51.100.4',
    });
    const direct = await inject({
      method: 'GET',
      url: `/v1/workspaces/${WS}/agents`,
      from: '192.0.2.9',
      forwardedFor: '198.51.100.4',
    });
    expect(requestLines(viaLb.reqId)).toMatchObject([{ ip: '198.51.100.4', status: 200, msg: 'request' }]);
    expect(requestLines(direct.reqId)).toMatchObject([{ ip: '192.0.2.9', status: 200, msg: 'request' }]);
  });

  it('does not log health checks at info', async () => {
    for (const url of ['/health', '/status']) {
      const r = await inject({ method: 'GET', url, from: '127.0.0.1' });
      expect(r.status).toBe(200);
      expect(requestLines(r.reqId), url).toEqual([]);
    }
  });

  it('is off by default: without TRUST_PROXY, X-Forwarded-For is ignored', () => {
    expect(loadConfig({}).trustProxy).toEqual([]);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,::1' }).trustProxy).toEqual([
      '10.0.0.5',
      '10.1.0.0/16',
      '::1',
    ]);
    for (const bad of ['haproxy', '10.0.0.0/33', '10.0.0.1/8/2']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });
});
