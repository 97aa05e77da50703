/**
 * The rate limit from a process's first moment (docs/SECURITY.md, "Limits"): a process whose first
 * connection to Redis takes longer than a health check's timeout (a Redis Cluster: the slot map
 * read from a seed, then every master connected and logged in to, 0.6 - 1 s on a loaded machine)
 * is not `paused` for it, so its rate limit counts the requests that come meanwhile; and a Redis
 * that cannot be reached at start still pauses the process, and the limit lets requests through.
 * The first connection is slowed by a relay in front of the server (the cluster's seed, with
 * SWITCHBOARD_TEST_TARGET=cluster). It runs on the single target in the suite: the wait for the
 * first connection is the same code for both clients, and on the cluster target a loaded machine
 * (a full run) took the masters' connections past the relay's delay beyond a count's 2 s timeout,
 * where the limit lets requests through by design (30 of 30 allowed once, in one run of several).
 */
import net from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { loginUrl } from '../../src/topology/redis-users.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

const WS = 'sec-limits-start';
const B = `/v1/workspaces/${WS}`;

let redis: TestRedis;
const started: Running[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await Promise.all(started.map((r) => r.stop()));
  await Promise.all(closers.map((c) => c()));
  await redis?.stop();
});

/**
 * A TCP relay on loopback to `targetPort` that holds each connection `delayMs` before passing its
 * bytes (what the client sent meanwhile included); `targetPort` undefined: it accepts and never
 * answers (a Redis that cannot be reached, without a refusal).
 */
async function slowDoor(targetPort: number | undefined, delayMs: number): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((a) => {
    sockets.add(a);
    a.on('error', () => {});
    a.on('close', () => sockets.delete(a));
    const held: Buffer[] = [];
    const hold = (d: Buffer) => held.push(d);
    a.on('data', hold);
    if (targetPort === undefined) return;
    setTimeout(() => {
      if (a.destroyed) return;
      const b = net.connect(targetPort, '127.0.0.1');
      sockets.add(b);
      b.on('error', () => {});
      b.on('close', () => {
        sockets.delete(b);
        a.destroy();
      });
      a.on('close', () => b.destroy());
      a.off('data', hold);
      for (const d of held) b.write(d);
      a.on('data', (d) => b.write(d));
      b.on('data', (d) => a.write(d));
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** The target's configuration with its one seed (or its URL) at `port` on loopback. */
function through(port: number): Record<string, string> {
  if (redis.target === 'single') return { REDIS_URL: loginUrl(redis.login, '127.0.0.1', port) };
  const { user, password } = redis.login;
  return {
    REDIS_CLUSTER_NODES: `${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
  };
}

async function instance(env: Record<string, string>): Promise<Running> {
  const r = await startSwitchboard(
    loadConfig({
      PORT: '0',
      LOG_LEVEL: 'silent',
      ROLES: 'api',
      WORKSPACES: WS,
      AUTH: 'off',
      RATE_LIMIT: '5',
      RATE_LIMIT_BURST: '10',
      ...env,
    }),
    pino({ level: 'silent' }),
  );
  started.push(r);
  return r;
}

/** What `/health` (never rate limited) says: 200, or 503 with the reason the process is paused. */
interface Health {
  readonly status: number;
  readonly detail?: string;
}

async function health(url: string): Promise<Health> {
  const res = await fetch(`${url}/health`);
  const body = (await res.json()) as { detail?: string };
  return { status: res.status, ...(body.detail ? { detail: body.detail } : {}) };
}

interface Status {
  readonly state: string;
  readonly redis: { readonly reachable: boolean; readonly error?: string };
}

async function status(url: string): Promise<Status> {
  return (await (await fetch(`${url}/status`)).json()) as Status;
}

describe('the rate limit at start', () => {
  it('a first connection slower than a health check does not pause the process: the requests meanwhile are counted', async () => {
    // Longer than a check's timeout (1 s), shorter than a count's (the client's command timeout, 2 s).
    const door = await slowDoor(redis.port, 1500);
    const began = Date.now();
    const a = await instance(through(door));
    // Its health until it serves: before its client is connected, paused as not checked yet only.
    const seen: Health[] = [];
    const watching = (async () => {
      while (Date.now() - began < 10_000) {
        const h = await health(a.url!);
        seen.push(h);
        if (h.status === 200) return;
        await sleep(50);
      }
    })();
    // Sent once a check that gave up after its timeout would have paused the process.
    await sleep(Math.max(0, began + 1200 - Date.now()));
    const sent = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        fetch(`${a.url}${B}/stats`).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
    );
    const elapsedS = (Date.now() - sent) / 1000;
    await watching;
    const ok = answers.filter((st) => st === 200).length;
    expect(ok + answers.filter((st) => st === 429).length, answers.join(' ')).toBe(30);
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(ok, answers.join(' ')).toBeLessThanOrEqual(10 + Math.ceil(5 * elapsedS) + 1);
    const paused = seen.filter((h) => h.status !== 200 && !h.detail?.includes('(not checked yet)'));
    expect([...new Set(paused.map((h) => h.detail))]).toEqual([]);
    expect(seen.at(-1)?.status).toBe(200);
  });

  it('a Redis that cannot be reached at start pauses the process, and the limit lets requests through', async () => {
    const refused = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const silent = await slowDoor(undefined, 0);
    for (const [what, port, withinMs] of [
      ['refused', refused, 3000],
      ['silent', silent, 8000],
    ] as const) {
      const began = Date.now();
      const a = await instance(through(port));
      let s = await status(a.url!);
      while (s.state !== 'paused' || s.redis.error === 'not checked yet') {
        expect(Date.now() - began, `${what}: ${JSON.stringify(s)}`).toBeLessThan(withinMs);
        await sleep(100);
        s = await status(a.url!);
      }
      expect(s.redis.reachable, what).toBe(false);
      // Uncounted: more than a whole budget, none refused by the limit.
      const answers = await Promise.all(
        Array.from({ length: 15 }, () =>
          fetch(`${a.url}/status`).then(async (r) => {
            await r.arrayBuffer();
            return r.status;
          }),
        ),
      );
      expect(answers, what).toEqual(Array.from({ length: 15 }, () => 200));
    }
  });
});
