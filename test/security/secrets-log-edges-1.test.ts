/**
 * An API key or a live feed's ticket a client puts in the URL never reaches the log. Only a
 * `ticket` parameter's value was replaced: a key sent as RFC 6750's `?access_token=` (or `?key=`,
 * `?api_key=`, or pasted into a path) is refused with a 401 or a 404, and the request's line, at
 * info, wrote it in clear, as it did a ticket given under another name, left unused and still
 * opening its feed. Now every key- or ticket-shaped token of the URL and the value of
 * `access_token` are replaced; a key's public id stays, for whoever reads the log.
 * A real process at LOG_LEVEL=debug; its whole output is searched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loggedUrl } from '../../src/adapters/http/request-log.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';
import { bearer, keyOf } from './harness.ts';

const WS = 'sec-secrets-log';
let redis: TestRedis;
let client: RedisClient;
let sb: SwitchboardProcess;
let output = '';

beforeAll(async () => {
  redis = await startTestRedis();
  client = redis.client();
  sb = await startProcess({
    roles: 'api',
    redis,
    env: { AUTH: 'on', LOG_LEVEL: 'debug', WORKSPACES: WS, DISCOVER_WORKSPACES: 'false' },
  });
  sb.child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  sb.child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
}, 60_000);

afterAll(async () => {
  await sb?.stop();
  client?.disconnect();
  await redis?.stop();
});

/** Opens the live feed; resolves with the handshake's status (101: opened). */
function upgrade(query: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${sb.url!.replace('http', 'ws')}/v1/workspaces/${WS}/events/live${query}`);
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    socket.once('error', reject);
  });
}

describe('secrets in a URL', () => {
  it('a key or a ticket in the query or the path is not written to the log', async () => {
    const { key, keyId } = await keyOf(client, WS, 'admin');
    const secret = key.slice(`sb_${keyId}_`.length);
    const base = `${sb.url}/v1/workspaces/${WS}`;
    for (const q of [`access_token=${key}`, `key=${key}`, `api_key=${key}`]) {
      const res = await fetch(`${base}/agents?${q}`);
      expect(res.status).toBe(401);
      await res.text();
    }
    const inPath = await fetch(`${base}/agents/${key}`, { headers: bearer(key) });
    expect(inPath.status).toBe(404);
    await inPath.text();
    expect(await upgrade(`?access_token=${key}`)).toBe(401);

    const made = await fetch(`${base}/ws-tickets`, { method: 'POST', headers: bearer(key) });
    expect(made.status).toBe(201);
    const { ticket } = (await made.json()) as { ticket: string };
    // Under another name it authenticates nothing, and is left unused.
    expect(await upgrade(`?access_token=${ticket}`)).toBe(401);
    expect(await upgrade(`?t=${ticket}`)).toBe(401);

    await sleep(300); // the last lines written
    expect(output).toContain('"status":401');
    expect(output).toContain('"status":404');
    expect(output).toContain(`sb_${keyId}_[redacted]`);
    expect(output).not.toContain(secret);
    expect(output).not.toContain(ticket.slice(4));
    // The ticket was never spent: a log reader holding it could have opened the feed.
    expect(await upgrade(`?ticket=${ticket}`)).toBe(101);
  });

  it('replaces the secret of every key- or ticket-shaped token, and access_token whatever it holds', () => {
    const key = `sb_0123456789abcdef_${'A'.repeat(43)}`;
    const ticket = `wst_${'b'.repeat(43)}`;
    expect(loggedUrl(`/v1/workspaces/w/agents/${key}?x=${key}&y=${ticket}`)).toBe(
      '/v1/workspaces/w/agents/sb_0123456789abcdef_[redacted]?x=sb_0123456789abcdef_[redacted]&y=wst_[redacted]',
    );
    expect(loggedUrl('/x?access_token=anything&%61ccess_token=x&after=1-0')).toBe(
      '/x?access_token=[redacted]&%61ccess_token=[redacted]&after=1-0',
    );
    // Glued to other text, or followed by more: the secret is still left out.
    expect(loggedUrl(`/x?y=a_${key}zz`)).toBe('/x?y=a_sb_0123456789abcdef_[redacted]zz');
    expect(loggedUrl(`/x/${'z'.repeat(10)}?sb_12=wst_short`)).toBe(`/x/${'z'.repeat(10)}?sb_12=wst_short`);
  });
});
