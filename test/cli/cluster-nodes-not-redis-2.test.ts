/**
 * Redis Cluster seeds of which some are not Redis (an HTTP server, a plain TCP service) and the
 * others refuse the connection (nothing listens): no seed can ever answer as a cluster, so keys,
 * audit and rebuild say so at once, naming which seeds are not Redis and which refused, and what
 * to check; exit 3, within a few seconds, not after the 10 s they wait for a cluster that does not
 * answer (cluster-nodes-not-redis.test.ts: every seed not Redis). Seeds that all refuse still wait
 * (reach-redis.test.ts): a cluster may be starting.
 */
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { localServer } from '../support/local-server.ts';
import { bareEnv, seedOf } from './cluster-seeds.ts';
import { timed } from './run-cli.ts';

/** A loopback seed with nothing listening on it (a port just closed). */
async function closedSeed(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** A plain TCP service that answers whatever it is sent with a line of text: not Redis. */
async function plainTcpSeed(): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('data', () => socket.write('hello\r\n'));
  });
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.unref();
      }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('Redis Cluster seeds each either not Redis or refusing the connection', () => {
  it('keys, audit (REDIS_CLUSTER_NODES), rebuild: exit 3 at once, naming both kinds of seed', async () => {
    const http = seedOf((await localServer((_req, res) => res.end('hello'))).url);
    const tcp = await plainTcpSeed();
    const [closedA, closedB, closedC] = [await closedSeed(), await closedSeed(), await closedSeed()];
    const runs = await Promise.all([
      timed('keys', ['list', '--cluster-nodes', `${http},${closedA}`, '--workspace', 'w'], bareEnv()),
      timed('audit', ['--workspace', 'w'], bareEnv({ REDIS_CLUSTER_NODES: `${closedB},${tcp}` })),
      timed('rebuild', ['--cluster-nodes', `${closedC},${http}`, '--workspace', 'w'], bareEnv()),
    ]);
    const expected = [
      ['keys', http, closedA],
      ['audit', tcp, closedB],
      ['rebuild', http, closedC],
    ] as const;
    for (const [i, run] of runs.entries()) {
      const [tool, notRedis, refused] = expected[i]!;
      expect(run.code, `${tool}: ${run.stderr}`).toBe(3);
      const line = run.stderr.trim();
      expect(line.split('\n'), run.stderr).toHaveLength(1);
      expect(line).toMatch(new RegExp(`^${tool}: no seed of cluster [^\\n]* can answer as a Redis Cluster`));
      expect(line).toMatch(new RegExp(`${literal(notRedis)} is not Redis \\(Protocol error`));
      expect(line).toMatch(new RegExp(`${literal(refused)} refused the connection \\([^)]*ECONNREFUSED`));
      expect(line).toMatch(/check --cluster-nodes \(or REDIS_CLUSTER_NODES\)/);
      expect(line).not.toMatch(/no answer within|Please report this|\n\s+at /);
      expect(run.seconds, `${tool}: ${run.stderr}`).toBeLessThan(6);
    }
  });
});
