/**
 * A live feed's client that breaks the WebSocket protocol (here: a message over the 4,096 bytes a
 * feed reads from its client) is the client's fault: its socket is closed (1009), the instance
 * logs it as a protocol error at info, never at error, and goes on serving.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const WS = 'live-protocol-errors';
const lines: { level: number; msg?: string; code?: string }[] = [];
let redis: TestRedis;
let running: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  running = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      ROLES: 'api',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      LOG_LEVEL: 'info',
    }),
    pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }),
  );
});

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

describe('a live feed client that breaks the protocol', () => {
  it('is closed with 1009 and logged at info as a protocol error; the instance serves on', async () => {
    const url = `${running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`;
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send('x'.repeat(5000));
    expect(await closed).toBe(1009);
    await new Promise((r) => setTimeout(r, 200));
    const said = lines.filter((l) => l.msg === 'websocket closed: protocol error');
    expect(said, JSON.stringify(lines.slice(-5))).toHaveLength(1);
    expect(said[0]).toMatchObject({ level: 30, code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' });
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect((await fetch(`${running.url}/health`)).status).toBe(200);
  });
});
