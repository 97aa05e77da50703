/** The fanout workload's subscriber side: a bare WebSocket client (see openFeed). */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A bare WebSocket client for the subscriber process, lighter than `ws` so that the load
 * generator takes as little of the machine's CPU as it can: the handshake, then unmasked server
 * frames (each message is one final text frame); pings are answered, a close ends the socket.
 */
export function openFeed(
  url: URL,
  onMessage: (payload: Buffer) => void,
  handshakeMs = 30_000,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(Number(url.port), url.hostname);
    // A connection no server accepts (a proxy past its connection limit keeps it waiting in the
    // kernel) fails instead of holding the run for good.
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no WebSocket handshake from ${url.host} within ${handshakeMs / 1000} s`));
    }, handshakeMs);
    sock.once('close', () => clearTimeout(timer));
    sock.setNoDelay(true);
    const key = randomBytes(16).toString('base64');
    sock.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let buf: Buffer | null = null;
    let open = false;
    sock.on('data', (chunk: Buffer) => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.toString('latin1', 0, 12).startsWith('HTTP/1.1 101')) {
          sock.destroy();
          return reject(new Error(`upgrade refused: ${buf.toString('latin1', 0, end)}`));
        }
        open = true;
        clearTimeout(timer);
        resolve(sock);
        buf = buf.subarray(end + 4);
      }
      let off = 0;
      while (buf.length - off >= 2) {
        const op = buf[off]! & 0x0f;
        let len = buf[off + 1]! & 0x7f;
        let header = 2;
        if (len === 126) {
          if (buf.length - off < 4) break;
          len = buf.readUInt16BE(off + 2);
          header = 4;
        } else if (len === 127) {
          if (buf.length - off < 10) break;
          len = Number(buf.readBigUInt64BE(off + 2));
          header = 10;
        }
        if (buf.length - off < header + len) break;
        const payload = buf.subarray(off + header, off + header + len);
        off += header + len;
        if (op === 1) onMessage(payload);
        // A pong, masked (as a client must) with a zero key, echoing the ping's payload.
        else if (op === 9) sock.write(Buffer.concat([Buffer.from([0x8a, 0x80 | len, 0, 0, 0, 0]), payload]));
        else if (op === 8) sock.end();
      }
      buf = off === buf.length ? null : buf.subarray(off);
    });
    sock.on('error', (err) => {
      if (!open) reject(err);
    });
  });
}
