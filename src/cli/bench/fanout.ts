/**
 * `fanout`: one Switchboard process (every role) on the bench's Redis, and `subscribers`
 * WebSockets on its live feed opened by a load generator of their own (this file run as a child
 * process: `node --import tsx src/cli/bench/fanout.ts`), so neither the producer nor the
 * subscribers share Switchboard's event loop. The bench process POSTs contacts at `rate` per second
 * (open loop) to agents with room for all of them, so each contact makes its events
 * (ContactQueued, AssignmentMade) at once. Every subscriber must get every event after the start
 * position once, in order; the figures are the deliveries/s and the time from each decision
 * (AssignmentMade's `at`) to its receipt.
 *
 * The agents are set up through the typed client (src/client). The contacts are POSTed on bare
 * keep-alive requests and the subscribers are bare `ws` sockets: on this 2-core machine the
 * client's fetch-based requests took enough CPU from Switchboard and the subscribers' process to
 * move the figures (at 200 contacts/s, decision-to-receipt p50 183-348 ms with bare requests,
 * 937-2,817 ms with the client, in alternating runs), so the bench would measure its own
 * generator; and a client subscription per socket (heartbeat watch, resume bookkeeping) for
 * thousands of sockets would make the subscribers' process the limit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { connectRedis } from '../../adapters/redis/client.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import { SwitchboardClient } from '../../client/index.ts';
import { endingWithThisProcess } from '../../topology/child-processes.ts';
import { pool } from '../sim/http.ts';
import { round } from '../sim/stats.ts';
import { type SwitchboardChoice, startSwitchboardProcess, switchboardName } from './e2e.ts';
import { openFeed } from './fanout-feed.ts';
import { haproxyInFront } from './haproxy-front.ts';
import { type Asked, asDeployed, type ChildServer, childCommand, request, sleep } from './http.ts';
import type { Note } from './workspace.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface FanoutOptions extends SwitchboardChoice {
  readonly subscribers: number;
  /** Contacts/s; each makes a ContactQueued and an AssignmentMade. */
  readonly rate: number;
  readonly duration: number;
  /**
   * Seconds of contacts to the subscribers before the timed ones (not counted), while Switchboard
   * is health-checked and scraped as a deployed instance is (http.ts asDeployed): the feed's code
   * is compiled before it is timed.
   */
  readonly warmup: number;
  readonly agents: number;
  /** Subscribers and commands through an HAProxy in front of Switchboard (haproxy-front.ts), as deployed. */
  readonly haproxy: boolean;
}

export interface FanoutFigures {
  readonly subscribers: number;
  /** Events in the stream after the start position (what each subscriber must receive). */
  readonly events: number;
  /** Events received, over all subscribers, in order and once. */
  readonly deliveries: number;
  /** Deliveries per second, from the first contact sent to the last delivery. */
  readonly deliveriesPerS: number;
  /** Decision (AssignmentMade `at`, ms precision) to receipt, over every subscriber. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Events some subscriber never received (summed over subscribers). */
  readonly lost: number;
  /** Events received at or before a position the subscriber had already received. */
  readonly outOfOrder: number;
  /** Subscribers whose socket closed before the end. */
  readonly closedEarly: number;
  /** POSTs that failed or answered other than 2xx. */
  readonly errors: number;
  /**
   * CPU time (user + system) of the Switchboard process from the first contact to the last
   * delivery, from its own /metrics: what the feed costs, which the machine's other load moves
   * far less than the latencies.
   */
  readonly apiCpuMs: number | null;
  /** `apiCpuMs` per delivery, µs (the commands and decisions of the run included). */
  readonly apiCpuUsPerDelivery: number | null;
  /** What Switchboard was asked besides contacts during the warm-up (http.ts asDeployed); null: none. */
  readonly warmupAsked: Asked | null;
}

/** CPU seconds (user + system) the Switchboard process reports on GET /metrics; null if it cannot. */
async function processCpuSeconds(agent: http.Agent, base: string): Promise<number | null> {
  const r = await request(agent, 'GET', `${base}/metrics`).catch(() => undefined);
  if (r?.status !== 200) return null;
  let total = 0;
  let found = 0;
  for (const line of r.body.split('\n')) {
    const m = /^switchboard_process_cpu_(user|system)_seconds_total (\S+)$/.exec(line);
    if (m) {
      total += Number(m[2]);
      found++;
    }
  }
  return found === 2 ? total : null;
}

/** What the parent tells the subscriber process, and what it answers. */
type ToChild =
  /** Count and time the events after `from` (the ones up to it warm up). */
  | { readonly op: 'start'; readonly from: string }
  | { readonly op: 'finish'; readonly last: string; readonly waitMs: number };
type FromChild =
  | { readonly op: 'ready'; readonly opened: number }
  /** The start is taken: events after its position count from now on. */
  | { readonly op: 'started' }
  | { readonly op: 'failed'; readonly error: string }
  | { readonly op: 'report'; readonly report: SubscriberReport };

interface SubscriberReport {
  readonly received: number[];
  readonly outOfOrder: number;
  readonly closedEarly: number;
  readonly firstAtMs: number | null;
  readonly lastAtMs: number | null;
  /** Latency histogram: [bucket, count] pairs, a bucket per 0.1 ms. */
  readonly histogram: [number, number][];
  readonly overflowMaxMs: number;
}

const BUCKET_MS = 0.1;
const BUCKETS = 600_000; // 60 s

const sparse = (h: Uint32Array): [number, number][] => {
  const out: [number, number][] = [];
  for (let i = 0; i < h.length; i++) if (h[i]! > 0) out.push([i, h[i]!]);
  return out;
};

/** Percentile (nearest rank) of a sparse histogram of 0.1 ms buckets; past them, the overflow's max. */
function histogramPercentile(
  h: readonly [number, number][],
  total: number,
  p: number,
  overflowMs: number,
): number | null {
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [bucket, n] of h) {
    seen += n;
    if (seen >= rank) return (bucket + 1) * BUCKET_MS;
  }
  return overflowMs;
}

/**
 * The subscriber process (its entry: fanout-subscribers.ts): opens the sockets, counts, checks
 * order, times AssignmentMade.
 */
export async function subscriberProcess(): Promise<void> {
  const url = process.env.FANOUT_URL!;
  const n = Number(process.env.FANOUT_SUBSCRIBERS);
  const send = (m: FromChild, then?: () => void) => process.send!(m, undefined, {}, () => then?.());
  process.on('SIGTERM', () => process.exit(0));
  const histogram = new Uint32Array(BUCKETS);
  let overflowMaxMs = 0;
  /** What this process knows of each event, parsed once: its decision time when it is an assignment. */
  const known = new Map<string, number | null>();
  const received = new Array<number>(n).fill(0);
  const lastOf = new Array<string>(n).fill('');
  let outOfOrder = 0;
  let closedEarly = 0;
  let finishing = false;
  /** The events up to this position are the warm-up's: checked for order, not counted or timed. */
  let from: string | null = null;
  let firstAtMs: number | null = null;
  let lastAtMs: number | null = null;
  const now = () => performance.timeOrigin + performance.now();

  const decisionOf = (data: Buffer, position: string): number | null => {
    let at = known.get(position);
    if (at === undefined) {
      const e = JSON.parse(data.toString()) as { type?: string; at?: string };
      at = e.type === 'AssignmentMade' && e.at ? Date.parse(e.at) : null;
      known.set(position, at);
    }
    return at;
  };
  const sockets: Socket[] = [];
  const onMessage = (i: number, data: Buffer): void => {
    // The feed's heartbeats (as it opens and after a silence; docs/API.md) are no events.
    if (data.toString('latin1', 0, 13) === '{"heartbeat":') return;
    const t = now();
    // Envelopes start with {"position":"<id>": read it without parsing the whole event.
    const end = data.indexOf(34, 13);
    const position =
      data.toString('latin1', 0, 13) === '{"position":"' && end > 13
        ? data.toString('latin1', 13, end)
        : (JSON.parse(data.toString()) as { position: string }).position;
    const prev = lastOf[i]!;
    if (prev !== '' && !after(position, prev)) {
      outOfOrder++;
      return;
    }
    lastOf[i] = position;
    if (from === null || !after(position, from)) return;
    firstAtMs ??= t;
    lastAtMs = t;
    received[i]!++;
    const at = decisionOf(data, position);
    if (at !== null) {
      const ms = t - at;
      const b = Math.floor(ms / BUCKET_MS);
      if (b < BUCKETS) histogram[Math.max(0, b)]!++;
      else overflowMaxMs = Math.max(overflowMaxMs, ms);
    }
  };
  const open = async (i: number) => {
    sockets[i] = await openFeed(new URL(url), (data) => onMessage(i, data));
    sockets[i]!.once('close', () => {
      if (!finishing) closedEarly++;
    });
  };
  try {
    await pool(
      Array.from({ length: n }, (_, i) => i),
      50,
      open,
    );
  } catch (err) {
    send({ op: 'failed', error: (err as Error).message });
    return;
  }
  process.on('message', async (m: ToChild) => {
    if (m.op === 'start') {
      from = m.from;
      send({ op: 'started' });
      return;
    }
    const deadline = Date.now() + m.waitMs;
    while (Date.now() < deadline && lastOf.some((p) => p !== m.last)) await sleep(20);
    finishing = true;
    for (const s of sockets) s.destroy();
    send(
      {
        op: 'report',
        report: {
          received,
          outOfOrder,
          closedEarly,
          firstAtMs,
          lastAtMs,
          histogram: sparse(histogram),
          overflowMaxMs,
        },
      },
      () => process.exit(0),
    );
  });
  send({ op: 'ready', opened: sockets.length });
}

/** a > b, for stream positions. */
function after(a: string, b: string): boolean {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  if (am.length !== bm.length) return am.length > bm.length;
  if (am !== bm) return am > bm;
  return as.length !== bs.length ? as.length > bs.length : as > bs;
}

async function startSubscribers(
  url: string,
  n: number,
): Promise<{ child: ChildProcess; next: () => Promise<FromChild> }> {
  const prof = process.env.BENCH_CPU_PROF; // as startChild: a CPU profile per child process
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [];
  const command = await childCommand('src/cli/bench/fanout-subscribers.ts');
  // Stops with the bench, even a bench killed outright, as the processes startChild starts do.
  const [cmd, ...args] = endingWithThisProcess([process.execPath, ...nodeArgs, ...command]);
  const child = spawn(cmd!, args, {
    cwd: ROOT,
    env: { ...process.env, FANOUT_URL: url, FANOUT_SUBSCRIBERS: String(n) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const inbox: FromChild[] = [];
  const waiting: ((m: FromChild) => void)[] = [];
  child.on('message', (m: FromChild) => {
    const w = waiting.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  const next = () =>
    new Promise<FromChild>((resolve, reject) => {
      const m = inbox.shift();
      if (m) return resolve(m);
      const onExit = () => reject(new Error('the subscriber process exited'));
      child.once('exit', onExit);
      waiting.push((msg) => {
        child.off('exit', onExit);
        resolve(msg);
      });
    });
  return { child, next };
}

/** POSTs contacts at `rate` for `seconds` (open loop, at most 256 unanswered); returns the failures. */
async function produce(api: string, agent: http.Agent, rate: number, seconds: number, prefix: string) {
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  let errors = 0;
  let inFlight = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < total; ) {
    while (i < total && t0 + i * interval <= performance.now()) {
      const id = `${prefix}-${++i}`;
      if (inFlight >= 256) {
        errors++;
        continue;
      }
      inFlight++;
      pending.push(
        request(agent, 'POST', `${api}/contacts`, { id, skills: ['s'] }).then(
          (r) => {
            inFlight--;
            if (r.status < 200 || r.status >= 300) errors++;
          },
          () => {
            inFlight--;
            errors++;
          },
        ),
      );
    }
    if (i < total) await sleep(Math.max(1, Math.floor(t0 + i * interval - performance.now())));
  }
  await Promise.all(pending);
  return errors;
}

export async function fanoutWorkload(
  redisUrl: string,
  workspace: string,
  o: FanoutOptions,
  note: Note,
): Promise<FanoutFigures> {
  note(`starting ${switchboardName(o.switchboard)}`);
  const sb = await startSwitchboardProcess(redisUrl, workspace, o.switchboard);
  let front: ChildServer | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const redis = connectRedis({ url: redisUrl });
  let subs: Awaited<ReturnType<typeof startSubscribers>> | undefined;
  try {
    if (o.haproxy) {
      note(
        'starting an HAProxy in front of it (infra/haproxy/haproxy.cfg.tmpl): subscribers and commands go through it',
      );
      const hp = await haproxyInFront(sb);
      front = hp;
      // Past its maxconn HAProxy leaves connections waiting in the kernel, and they would wait
      // for good (a subscriber stays): say so before opening any. The commands take up to 64 more.
      const needed = o.subscribers + 64;
      if (!(hp.maxconn >= needed))
        throw new Error(
          `HAProxy holds at most ${hp.maxconn} connections here (its maxconn, derived from its limit of ${hp.ulimitN} open files: two per proxied connection): ${o.subscribers} subscribers and the commands need ${needed}. Raise the hard limit of open files (ulimit -Hn) for HAProxy, or ask for fewer subscribers.`,
        );
    }
    const api = `${(front ?? sb).base}/v1/workspaces/${encodeURIComponent(workspace)}`;
    // Capacity 100 each, enough agents for every contact of the run: no contact waits.
    const contacts = Math.ceil(o.rate * (o.duration + o.warmup)) + 1;
    const agents = Math.max(o.agents, Math.ceil(contacts / 100));
    note(`registering ${agents} agents (skill s, capacity 100), all available`);
    const ids = Array.from({ length: agents }, (_, i) => `agent-${i + 1}`);
    const client = new SwitchboardClient({ url: sb.base, workspace });
    await pool(ids, 32, async (id) => {
      await client.registerAgent({ id, skills: ['s'], capacity: 100 });
    });
    await pool(ids, 32, async (id) => {
      await client.setAgentState(id, 'available');
    });
    let errors = 0;
    let warmupAsked: Asked | null = null;
    const events = workspaceKeys(workspace).events;
    const lastEvent = async () => (await redis.xrevrange(events, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    const opened = await lastEvent();
    note(`opening ${o.subscribers} subscribers in a process of their own (after=${opened})`);
    subs = await startSubscribers(`${api.replace(/^http/, 'ws')}/events/live?after=${opened}`, o.subscribers);
    const ready = await subs.next();
    if (ready.op !== 'ready')
      throw new Error(`subscribers: ${ready.op === 'failed' ? ready.error : ready.op}`);
    if (o.warmup > 0) {
      note(
        `warming up: ${o.rate} contacts/s for ${o.warmup} s to the subscribers, Switchboard health-checked and scraped each second (not timed)`,
      );
      // Its errors count: a warm-up that fails says the run cannot be trusted.
      warmupAsked = await asDeployed(agent, sb, true, async () => {
        errors += await produce(api, agent, o.rate, o.warmup, 'warmup');
      });
      await sleep(200);
    }
    const start = await lastEvent();
    note(`offering ${o.rate} contacts/s for ${o.duration} s`);
    // Taken before the first timed contact is sent: an event read before it would not be counted.
    subs.child.send({ op: 'start', from: start } satisfies ToChild);
    const started = await subs.next();
    if (started.op !== 'started')
      throw new Error(`subscribers: ${started.op === 'failed' ? started.error : started.op}`);
    const cpu0 = await processCpuSeconds(agent, sb.base);
    const t0 = performance.timeOrigin + performance.now();
    errors += await produce(api, agent, o.rate, o.duration, 'c');
    await sleep(200);
    const last = await lastEvent();
    const total = (await redis.xrange(events, `(${start}`, last)).length;
    subs.child.send({ op: 'finish', last, waitMs: 10_000 } satisfies ToChild);
    const m = await subs.next();
    if (m.op !== 'report') throw new Error(`subscribers: ${m.op === 'failed' ? m.error : m.op}`);
    const cpu1 = await processCpuSeconds(agent, sb.base);
    const apiCpuMs = cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) * 1000 : null;
    const r = m.report;
    const deliveries = r.received.reduce((a, b) => a + b, 0);
    const timed = r.histogram.reduce((a, [, n]) => a + n, 0);
    const maxBucket = r.histogram[r.histogram.length - 1]?.[0] ?? -1;
    const seconds = ((r.lastAtMs ?? t0) - t0) / 1000;
    return {
      subscribers: o.subscribers,
      events: total,
      deliveries,
      deliveriesPerS: seconds > 0 ? Math.round(deliveries / seconds) : 0,
      p50Ms: round(histogramPercentile(r.histogram, timed, 50, r.overflowMaxMs), 1),
      p99Ms: round(histogramPercentile(r.histogram, timed, 99, r.overflowMaxMs), 1),
      maxMs: round(
        r.overflowMaxMs > 0 ? r.overflowMaxMs : maxBucket >= 0 ? (maxBucket + 1) * BUCKET_MS : null,
        1,
      ),
      lost: r.received.reduce((sum, got) => sum + Math.max(0, total - got), 0),
      outOfOrder: r.outOfOrder,
      closedEarly: r.closedEarly,
      errors,
      apiCpuMs: round(apiCpuMs, 0),
      apiCpuUsPerDelivery:
        apiCpuMs !== null && deliveries > 0 ? round((apiCpuMs * 1000) / deliveries, 2) : null,
      warmupAsked,
    };
  } finally {
    // SIGTERM lets a profiled child write its profile; it has nothing else to finish.
    subs?.child.kill('SIGTERM');
    agent.destroy();
    redis.disconnect();
    await front?.stop();
    await sb.stop();
  }
}
