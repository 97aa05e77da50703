/**
 * Raw HTTP/1.1 over a plain socket, for what fetch and inject would change before sending (a
 * fragment in the target, a header given twice, an upgrade refused).
 */
import { connect } from 'node:net';

export interface RawAnswer {
  readonly status: number;
  /** Lower-cased names; a header given twice keeps the last value. */
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The server closed the connection before `cutAfterMs`. */
  readonly closed: boolean;
}

/**
 * Writes `text` as is on a new connection to 127.0.0.1:`port` and reads until the server closes
 * it, or for `cutAfterMs` (a connection kept open, an upgrade taken, is then cut: `closed` stays
 * false). The answer as it came, parsed once.
 */
export function rawHttp(port: number, text: string, cutAfterMs = 1500): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    let got = '';
    let closed = false;
    let answered = false;
    const done = () => {
      if (answered) return;
      answered = true;
      const end = got.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = got.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: got.slice(end + 4), closed });
    };
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('close', () => {
      closed = true;
      done();
    });
    s.write(text);
    const timer = setTimeout(() => {
      s.destroy();
      done();
    }, cutAfterMs);
    s.on('close', () => clearTimeout(timer));
  });
}

/**
 * The text of one HTTP/1.1 request: `Host: localhost`, then `headers` as given (each a whole
 * `Name: value` line), a Content-Length when there is a `body`, and `Connection: close`.
 */
export const rawRequest = (method: string, target: string, headers: readonly string[] = [], body = '') =>
  `${method} ${target} HTTP/1.1\r\nHost: localhost\r\n${headers.map((h) => `${h}\r\n`).join('')}${
    body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''
  }Connection: close\r\n\r\n${body}`;
