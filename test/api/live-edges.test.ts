/**
 * The live feed's upgrade while Redis cannot answer: refused before the upgrade with a `503`
 * `/problems/redis-unavailable` (problem+json, X-Request-Id), whatever `after` says, never a socket
 * opened only to be closed. Redis is held with CLIENT PAUSE (every client's commands wait), so each
 * upgrade's read meets the client's command timeout (2 s).
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { inProcessApi } from '../support/api.ts';

const WS = 'live-edges';
// No rate or socket counting: their Redis calls would wait out their own timeout first.
const api = inProcessApi([WS], { env: { RATE_LIMIT: 'off', WS_MAX_PER_KEY: 'off' } });

interface Outcome {
  readonly status?: number;
  readonly contentType?: string;
  readonly requestId?: string;
  readonly problem?: { type?: string };
  /** Set when the upgrade was accepted: how the socket then closed. */
  readonly opened?: { code: number; reason: string };
}

/** Opens the feed: the refusal's answer, or how the accepted socket closed (unless `waitClose` is false). */
function upgrade(query: string, waitClose = true): Promise<Outcome> {
  const url = `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live${query}`;
  const socket = new WebSocket(url);
  return new Promise<Outcome>((resolve, reject) => {
    socket.once('open', () => {
      if (!waitClose) resolve({ opened: { code: 0, reason: 'not waited for' } });
      socket.once('close', (code, reason) => resolve({ opened: { code, reason: reason.toString() } }));
    });
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (b: Buffer) => {
        text += b.toString();
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          contentType: res.headers['content-type'],
          requestId: res.headers['x-request-id'] as string | undefined,
          problem: JSON.parse(text) as { type?: string },
        }),
      );
    });
    socket.once('error', reject);
  }).finally(() => socket.terminate());
}

describe('the live feed while Redis cannot answer', () => {
  it('refuses every upgrade with 503 redis-unavailable before it, after=0-0 too', async () => {
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['s'] });
    const { events } = (await api.ok('GET', WS, '/events')) as { events: { position: string }[] };
    const last = events.at(-1)!.position;
    // The workspace's tail is running already: only the upgrade's own reads meet the pause.
    expect((await upgrade('', false)).opened).toBeDefined();
    const admin = api.server.adminClient();
    try {
      await admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
      const answers = await Promise.all(['', `?after=${last}`, '?after=0-0'].map((q) => upgrade(q)));
      for (const [i, a] of answers.entries()) {
        expect(a.opened, `upgrade ${i}: ${JSON.stringify(a)}`).toBeUndefined();
        expect(a.status).toBe(503);
        expect(a.contentType).toMatch(/^application\/problem\+json/);
        expect(a.problem?.type).toBe('/problems/redis-unavailable');
        expect(a.requestId).toMatch(/./);
      }
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => {});
      admin.disconnect();
    }
  });
});
