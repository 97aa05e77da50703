/**
 * The forwarders of the VRRP shape: the root namespace listens on 127.0.0.1 (listenLoopback) and
 * hands each listening socket to the app namespace, which accepts on it and connects to the VIP
 * (forwardToVip), so users on the host reach whichever HAProxy holds the VIP.
 */
import net from 'node:net';

/** A listening socket on 127.0.0.1:`port` that refuses connections until the child accepts on it. */
export function listenLoopback(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    // Until the child accepts on its copy of this socket: refuse (the topology is not up yet).
    const server = net.createServer((socket) => socket.resetAndDestroy());
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function boundPort(server: net.Server): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('forwarder: no address');
  return a.port;
}

/** Accepts on `server` and pipes every connection to `host`:`port`; open sockets are kept in `sockets`. */
export function forwardTo(server: net.Server, host: string, port: number, sockets: Set<net.Socket>): void {
  server.on('connection', (down: net.Socket) => {
    const up = net.connect({ host, port });
    sockets.add(down);
    sockets.add(up);
    const close = () => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    // VIP unreachable (e.g. during a failover): reset the client's connection, as a refused
    // connection would, instead of closing it politely.
    up.once('error', () => down.resetAndDestroy());
    for (const s of [down, up]) {
      s.setNoDelay(true);
      s.on('error', close);
      s.on('close', close);
    }
    up.once('connect', () => {
      down.pipe(up);
      up.pipe(down);
    });
  });
}
