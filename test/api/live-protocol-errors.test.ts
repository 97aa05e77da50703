/**
 * A live feed's client that breaks the WebSocket protocol (here: a message over the 4,096 bytes a
 * feed reads from its client) is the client's fault: its socket is closed (1009), the instance
 * logs it as a protocol error at info, never at error, and goes on serving.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createLogger } from '../../src/app/logger.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'live-protocol-errors';
const lines: { level: number; msg?: string; code?: string }[] = [];
const api = inProcessApi([WS], {
  env: { LOG_LEVEL: 'info' },
  logger: createLogger('info', {}, { write: (s: string) => void lines.push(JSON.parse(s)) }),
});

describe('a live feed client that breaks the protocol', () => {
  it('is closed with 1009 and logged at info as a protocol error; the instance serves on', async () => {
    const url = `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`;
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
    expect((await fetch(`${api.running.url}/health`)).status).toBe(200);
  });
});
