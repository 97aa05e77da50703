/**
 * API keys, their rate limits and WebSocket tickets of workspaces whose names differ only in case
 * (`Acme`, `acme`): a key of one is a 403 in the other, a ticket of one opens no feed of the other
 * (401), and one key spending its rate limit leaves the other workspace's key untouched.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';

const api = inProcessApi(['Acme', 'acme'], { env: { AUTH: 'on', RATE_LIMIT: '3', RATE_LIMIT_BURST: '3' } });

async function send(method: 'GET' | 'POST', url: string, key: string) {
  const res = await api.running.api!.inject({ method, url, headers: { authorization: `Bearer ${key}` } });
  return { status: res.statusCode, body: res.json() as Json };
}

describe('keys, rate limits and tickets of workspaces differing in case', () => {
  it('are their own workspace', async () => {
    const upper = (await createApiKey(api.running.redis, { workspace: 'Acme', role: 'admin' })).key;
    const lower = (await createApiKey(api.running.redis, { workspace: 'acme', role: 'admin' })).key;
    const cross = await send('GET', '/v1/workspaces/acme/agents', upper);
    expect(cross.status, JSON.stringify(cross.body)).toBe(403);
    expect(cross.body.type).toBe('/problems/forbidden');
    // The ticket: made in Acme, refused on acme's feed (and not spent by that).
    const ticket = await send('POST', '/v1/workspaces/Acme/ws-tickets', upper);
    expect(ticket.status).toBe(201);
    const base = String(api.running.url).replace(/^http/, 'ws');
    const upgrade = (ws: string) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(
          `${base}/v1/workspaces/${ws}/events/live?ticket=${String(ticket.body.ticket)}`,
        );
        socket.on('error', () => undefined);
        socket.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          socket.terminate();
        });
        socket.once('open', () => {
          resolve(101);
          socket.close();
        });
      });
    expect(await upgrade('acme')).toBe(401);
    // Not spent by that refusal: it opens Acme's feed.
    expect(await upgrade('Acme')).toBe(101);
    // Acme's key spends its limit; acme's key is still served.
    let limited = 0;
    for (let i = 0; i < 8; i++)
      if ((await send('GET', '/v1/workspaces/Acme/agents', upper)).status === 429) limited++;
    expect(limited).toBeGreaterThan(0);
    const other = await send('GET', '/v1/workspaces/acme/agents', lower);
    expect(other.status, JSON.stringify(other.body)).toBe(200);
  });
});
