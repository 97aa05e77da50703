/**
 * The renewal of open WebSockets' slots (WS_MAX_PER_KEY) while Redis does not answer: each round
 * logged one `socket slots not renewed` warning per API key holding sockets, so an instance with
 * thousands of keys' sockets wrote thousands of lines every 20 s through an outage. Now one line
 * per round, naming how many keys' renewals failed of how many, and the first error. Redis stopped
 * with SIGSTOP (test/support/freeze.ts); the renewal's interval shortened (socketSlotRenewMs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freezeRedis } from '../support/freeze.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { keyOf } from './harness.ts';

const WS = 'limits-renewal';
const KEYS = 6;
const RENEW_MS = 300;
const FROZEN_MS = 3000;

let redis: TestRedis;
let sb: Running;
const { logger, lines } = capturedLogger('warn');

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    {
      ...loadConfig({
        ...redis.env,
        PORT: '0',
        ROLES: 'api',
        WORKSPACES: WS,
        AUTH: 'on',
        WS_MAX_PER_KEY: '5',
        COMMAND_TIMEOUT_MS: '1000',
      }),
      socketSlotRenewMs: RENEW_MS,
    },
    logger,
  );
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

function openLive(key: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${sb.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`, {
      headers: { authorization: `Bearer ${key}` },
    });
    socket.on('open', () => resolve(socket));
    socket.on('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    socket.on('error', reject);
  });
}

describe('socket slots not renewed through a Redis outage', () => {
  it('one warning per round, naming how many keys failed of how many, not one per key', async () => {
    const admin = redis.client();
    const sockets: WebSocket[] = [];
    try {
      await waitFor(
        'the instance to see Redis',
        async () => (await fetch(`${sb.url}/health`)).status === 200,
      );
      const slots: string[] = [];
      for (let i = 0; i < KEYS; i++) {
        const { key, keyId } = await keyOf(admin, WS, 'supervisor');
        sockets.push(await openLive(key));
        slots.push(`${workspaceKeys(WS).prefix}sockets:${keyId}`);
      }
      // Every key's slot taken in Redis before the outage.
      await waitFor('every key holding a slot', async () => {
        const held = await Promise.all(slots.map((k) => admin.zcard(k)));
        return held.every((n) => n === 1) || undefined;
      });
      const renewalLines = () => lines.filter((l) => String(l.msg).includes('not renewed'));
      const frozen = await freezeRedis(admin, { atMostMs: FROZEN_MS + 10_000 });
      try {
        await sleep(FROZEN_MS);
      } finally {
        await frozen.thaw();
      }
      // The round that was waiting when Redis came back ends (its command timeout, 1 s).
      await sleep(1500);
      const warned = renewalLines();
      expect(warned.length).toBeGreaterThanOrEqual(1);
      // A round takes at least its command timeout (1 s) while Redis does not answer, and rounds do
      // not overlap: at most one line per second of outage (and the one waiting at the thaw).
      expect(warned.length).toBeLessThanOrEqual(Math.ceil(FROZEN_MS / 1000) + 1);
      for (const l of warned) {
        expect(l.level).toBe(40);
        expect(l.keys).toBe(KEYS);
        expect(l.failed).toBeGreaterThanOrEqual(1);
        expect(String(l.msg)).toMatch(new RegExp(`of ${KEYS} callers not renewed \\(first error: .+\\)`));
        expect(String(l.msg)).toContain('WS_MAX_PER_KEY');
        expect(l.err).toEqual(expect.any(String));
      }
      expect(warned.some((l) => l.failed === KEYS)).toBe(true);
      // The sockets stayed open, and their slots are renewed again: no more warnings.
      const after = renewalLines().length;
      await sleep(RENEW_MS * 4);
      expect(renewalLines().length).toBe(after);
      expect(sockets.every((s) => s.readyState === WebSocket.OPEN)).toBe(true);
    } finally {
      for (const s of sockets) s.terminate();
      admin.disconnect();
    }
  });
});
