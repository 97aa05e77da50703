/**
 * A TCP relay on loopback that can make the paths open through it go silent: bytes stop flowing
 * both ways and nothing is closed, as when a NAT or firewall forgets a connection, or a VM moves.
 * Connections made after that pass as before.
 */
import net from 'node:net';

export interface SilentRelay {
  readonly port: number;
  /** The paths open now carry nothing more, and are never closed by the relay. */
  silence(): void;
  /** Paths open now (silenced or not). */
  readonly open: number;
  close(): Promise<void>;
}

export async function silentRelay(targetPort: number): Promise<SilentRelay> {
  const sockets = new Set<net.Socket>();
  const live = new Set<{ a: net.Socket; b: net.Socket }>();
  const server = net.createServer((a) => {
    const b = net.connect(targetPort, '127.0.0.1');
    const pair = { a, b };
    for (const s of [a, b]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    a.on('data', (d) => b.write(d));
    b.on('data', (d) => a.write(d));
    a.on('close', () => {
      b.destroy();
      live.delete(pair);
    });
    b.on('close', () => {
      a.destroy();
      live.delete(pair);
    });
    live.add(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    silence() {
      for (const { a, b } of live) {
        a.removeAllListeners('data');
        b.removeAllListeners('data');
        // Whatever comes is read and dropped; the other side hears nothing, and no FIN or RST.
        a.on('data', () => {});
        b.on('data', () => {});
      }
      live.clear();
    },
    get open() {
      return sockets.size / 2;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
