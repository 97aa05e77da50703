/**
 * A local HTTP server on 127.0.0.1 for the client's suites, answering what a real Switchboard
 * cannot be made to (a proxy's answers, a rate limit with a wait a test can time) and recording
 * what each request carried. Call it in a test: the server (and every connection it holds) is
 * closed when that test ends, or earlier by `close()` (a port with nothing listening any more).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

export interface LocalServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly server: http.Server;
  /** Closes the server and its connections; again, the same promise. */
  close(): Promise<void>;
}

export async function localServer(handler: http.RequestListener): Promise<LocalServer> {
  const server = http.createServer(handler);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }));
  onTestFinished(close);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, close };
}
