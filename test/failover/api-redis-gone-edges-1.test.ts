/**
 * One API instance behind HAProxy loses its Redis (its path to Redis refused, the other instance's
 * intact). What a client saw: with the instance found without the registry (a static server, or
 * DNS as in infra's compose file), live feeds HAProxy had given it stayed open and kept receiving
 * its heartbeats but no event for as long as its Redis stayed away: HAProxy's check marked it down
 * but keeps open tunnels, and the client takes a feed for dead only when it hears nothing. Now an
 * instance that Redis does not answer sends no heartbeat: the client's watch drops the feed within
 * two intervals and resumes through HAProxy on the instance that reads, nothing lost or doubled.
 * (A registered instance's feeds were moved already: its registry entry lapses and the sync's
 * removal shuts its sessions.) Every request through HAProxy meanwhile is answered 2xx or with a
 * documented problem+json, never an HTML page, and HAProxy takes the instance out within the
 * check's time.
 */
import net from 'node:net';
import { type EventEnvelope, type Subscription, SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FleetBehindHaproxy, startFleetBehindHaproxy } from '../support/fleet-behind-haproxy.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'apiredisgone';
const EVERY_MS = 1000;
const FEEDS = 6;

/** A TCP relay to Redis that can be cut: every open path closed, new connections refused. */
async function cuttableRelay(targetPort: number) {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((a) => {
    if (cut) {
      a.destroy();
      return;
    }
    const b = net.connect(targetPort, '127.0.0.1');
    for (const s of [a, b]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    a.pipe(b);
    b.pipe(a);
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.each([
  { how: 'registered', registered: true },
  { how: 'found without the registry (a static or DNS server, as in the compose file)', registered: false },
])('an API instance whose Redis goes away behind HAProxy, $how', ({ registered }) => {
  let lb: FleetBehindHaproxy;
  let relay: Awaited<ReturnType<typeof cuttableRelay>>;
  let cutOff: SwitchboardProcess;
  const ws = `${WS}-${registered ? 'reg' : 'static'}`;
  const env = { WORKSPACES: ws, LIVE_HEARTBEAT_MS: String(EVERY_MS) };
  let cutOffServer: string;

  beforeAll(async () => {
    lb = await startFleetBehindHaproxy({ fleet: { api: 1, projector: 1, env } });
    const url = new URL(lb.fleet.redis.env.REDIS_URL!);
    relay = await cuttableRelay(Number(url.port));
    url.port = String(relay.port);
    cutOff = await startProcess({
      roles: ['api'],
      redisUrl: url.toString(),
      env: registered ? { ...env, ADVERTISE_ADDRESS: 'auto' } : env,
      name: 'api-2',
    });
    cutOffServer = lb.serverOf(cutOff.port!);
    if (!registered) {
      // Not in the registry: the sync leaves it alone, and only the health check judges it.
      cutOffServer = 'static-api-2';
      await lb.runtime.addServer('api', cutOffServer, '127.0.0.1', cutOff.port!, {
        inter: '1s',
        fall: 2,
        rise: 2,
      });
    }
    await waitFor(
      'both API instances UP in the api backend',
      async () => (await lb.runtime.listServers('api')).filter((s) => s.status === 'UP').length === 2,
      { timeoutMs: 20_000, everyMs: 100 },
    );
  }, 90_000);

  afterAll(async () => {
    await cutOff?.stop().catch(() => undefined);
    await relay?.close();
    await lb?.stop();
  }, 60_000);

  it('moves its live feeds to the instance that reads, and every request is answered', async () => {
    const direct = lb.fleet.api[0]!.url!;
    const register = async (id: string) => {
      const r = await fetch(`${direct}/v1/workspaces/${ws}/agents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `reg-${id}` },
        body: JSON.stringify({ id, skills: ['English'] }),
      });
      expect(r.status, `register ${id}: ${await r.text()}`).toBe(201);
    };
    await register('a-0');

    // Feeds opened through HAProxy, one after the other: round-robin gives each instance half.
    const client = new SwitchboardClient({ url: lb.frontend, workspace: ws });
    const got: EventEnvelope[][] = [];
    const subs: Subscription[] = [];
    const sessions = async () =>
      (await lb.runtime.listServers('api')).find((s) => s.name === cutOffServer)?.totalSessions ?? 0;
    const before = await sessions();
    const closes: string[] = [];
    for (let i = 0; i < FEEDS; i++) {
      const seen: EventEnvelope[] = [];
      got.push(seen);
      const sub = client.subscribe(
        {
          after: '0-0',
          heartbeatMs: EVERY_MS,
          retryFirst: true,
          backoffMs: 100,
          maxBackoffMs: 1000,
          onClose: (c) => closes.push(`feed ${i}: ${c.code} ${c.reason}`),
        },
        (e) => seen.push(e),
      );
      subs.push(sub);
      await sub.ready;
    }
    try {
      expect(await sessions(), 'feeds on the instance losing Redis').toBeGreaterThan(before);
      await waitFor('every feed has the first event', () => got.every((s) => s.length >= 1), {
        timeoutMs: 10_000,
        everyMs: 20,
      });

      // Requests through HAProxy all along: what each is answered.
      const answers: { status: number; type: string; body: string }[] = [];
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const r = await fetch(`${lb.frontend}/v1/workspaces/${ws}/agents/a-0`).catch((err: Error) => ({
            status: 0,
            headers: new Headers(),
            text: async () => err.message,
          }));
          answers.push({ status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() });
          await sleep(50);
        }
      })();

      const cutAt = Date.now();
      relay.cut();
      let downMs: number | undefined;
      const down = waitFor(
        'the instance without Redis out of the api backend (DOWN, in maintenance or removed)',
        async () => {
          const s = (await lb.runtime.listServers('api')).find((x) => x.name === cutOffServer);
          return s === undefined || !s.status.startsWith('UP');
        },
        { timeoutMs: 20_000, everyMs: 50 },
      ).then(() => {
        downMs = Date.now() - cutAt;
      });
      const ids = ['a-1', 'a-2', 'a-3', 'a-4', 'a-5'];
      for (const id of ids) {
        await register(id);
        await sleep(200);
      }
      await waitFor('every feed has every event', () => got.every((s) => s.length >= 1 + ids.length), {
        timeoutMs: 20_000,
        everyMs: 50,
      }).catch((err: Error) => {
        throw new Error(`${err.message}; events per feed: ${got.map((s) => s.length).join(', ')}`);
      });
      const feedsBackMs = Date.now() - cutAt;
      await down;
      // Requests go on for a while once the instance is out: all to the instance that reads.
      await sleep(2000);
      probing = false;
      await probe;

      for (const [i, seen] of got.entries()) {
        const positions = seen.map((e) => e.position);
        expect(new Set(positions).size, `feed ${i}: no event twice`).toBe(positions.length);
        expect(
          seen.filter((e) => e.type === 'AgentRegistered').map((e) => (e.data as { id?: string }).id),
          `feed ${i}: every registration, in order`,
        ).toEqual(['a-0', ...ids]);
      }
      const odd = answers.filter(
        (a) =>
          !(a.status >= 200 && a.status < 300) &&
          !(
            a.type.startsWith('application/problem+json') &&
            /redis-unavailable|no-instance-available/.test(a.body)
          ),
      );
      expect(odd, 'answers neither 2xx nor a documented problem').toEqual([]);
      // The check: the instance notices within about 2 s, then HAProxy's fall 2 x inter 1 s.
      expect(downMs, 'out of the api backend').toBeLessThan(8_000);
      console.log(
        JSON.stringify({
          test: 'api-redis-gone',
          registered,
          downMs,
          feedsBackMs,
          requests: answers.length,
          problems: answers.filter((a) => a.status >= 300).length,
          closes,
        }),
      );
    } finally {
      for (const s of subs) s.close();
    }
  }, 90_000);
});
