/**
 * `timers`: how late the clock fires lifecycle timers. A workspace with offers on
 * (`missedOfferPresence` away) and `timers` agents; `timers` contacts are queued up front in
 * batches, each batch after a ChangeSettings of its own whose `offerTimeoutMs` is BATCH_EVERY_MS
 * longer than the previous one's (from OFFER_TIMEOUT_MS), and each once the previous batch's
 * offers are made. So `timers` offers are made within a moment and, nobody answering, expire one
 * batch every BATCH_EVERY_MS over `--duration` seconds while nothing else happens in the
 * workspace: the clock must wake for them by itself. The real roles run in this process: a
 * Projector and a Dispatcher (`src/dispatcher/dispatcher.ts`: its own BZPOPMIN wake-ups and
 * timeouts, the clock's Lua step), so what is measured is the role's own wake and timeout logic.
 *
 * The lag of a timer is the time of the command the clock appended (its stream position's
 * milliseconds, Redis's clock) less its due time (the `<due ms>` at the end of its commandId
 * `timer:<member>:<due ms>`): median, p90, p99 and max over every offer expiry.
 *
 * Two phases, each on a workspace of its own: `idle` (nothing else runs), and `loaded`: the same
 * while the `seed` workload (`--agents` agents, seedLoadContacts(`--duration`) contacts a run,
 * started again as long as the phase lasts) drains another workspace of the same Redis from a process of its
 * own. Each phase reports Redis's main-thread CPU share over it (INFO cpu), what the load left
 * the clock.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { pino } from 'pino';
import { connectRedis } from '../../adapters/redis/client.ts';
import { appendCommand } from '../../adapters/redis/command-log.ts';
import type { StreamEntry } from '../../adapters/redis/event-log.ts';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import { Dispatcher } from '../../dispatcher/dispatcher.ts';
import type { Command } from '../../domain/commands.ts';
import { ensureGroup, Projector } from '../../projections/projector.ts';
import { endingWithThisProcess } from '../../topology/child-processes.ts';
import { median, percentile, round } from '../sim/stats.ts';
import { childCommand } from './http.ts';
import { mainThreadCpuUs } from './redis-time.ts';
import { appendAndProject, dropWorkspace, type Note } from './workspace.ts';

/** The first batch's offers expire this long after they are made. */
export const OFFER_TIMEOUT_MS = 500;
/** Each batch's offers expire this much later than the previous batch's. */
const BATCH_EVERY_MS = 50;
/**
 * Contacts of one run of the seed load, per second of `--duration`: 30,000 at the default 2 s,
 * about 3-4 s of drain at 40 agents, as long as the phase (the offers' timeouts, then `--duration`
 * of expiries). A shorter phase takes a run as much shorter to set up before it starts.
 */
export const SEED_LOAD_CONTACTS_PER_S = 15_000;
export const seedLoadContacts = (durationS: number): number =>
  Math.max(1000, Math.round(durationS * SEED_LOAD_CONTACTS_PER_S));

export interface TimersOptions {
  /** Offers made and left to expire, per phase (as many agents). */
  readonly timers: number;
  /** Seconds over which the contacts are queued (the offers' due times spread as much). */
  readonly duration: number;
  /** Agents of the seed load. */
  readonly agents: number;
  readonly seed: number;
  /** A shared Redis: the phases' workspaces are removed afterwards. */
  readonly redisUrl: string | undefined;
}

export interface TimerLag {
  /** Offer expiries fired (ExpireOffer commands the clock appended). */
  readonly timers: number;
  readonly medianMs: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** The earliest fire relative to its due time (never below 0: the clock never fires early). */
  readonly minMs: number | null;
  /** Redis's main-thread CPU over the phase, as a share of one core. */
  readonly redisCpuShare: number;
  readonly seconds: number;
  /** How long making every offer took (the first expiry is due OFFER_TIMEOUT_MS after the start). */
  readonly offersMadeMs: number;
}

export interface TimersFigures {
  /** The first batch's offer timeout; each next batch's is BATCH_EVERY_MS longer. */
  readonly offerTimeoutMs: number;
  readonly batchEveryMs: number;
  readonly idle: TimerLag;
  readonly loaded: TimerLag & {
    /** Runs of the seed load started during the phase (each seedLoadContacts(duration) contacts). */
    readonly loadRuns: number;
    readonly loadAgents: number;
    /** Contacts of each run of the seed load (seedLoadContacts(duration)). */
    readonly loadContacts: number;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export async function timersWorkload(
  url: string,
  workspace: string,
  o: TimersOptions,
  note: Note,
): Promise<TimersFigures> {
  note(`idle: ${o.timers} offers expiring over ${o.duration} s`);
  const idle = await timerPhase(url, `${workspace}-idle`, o);
  note(`loaded: the same while the seed workload (${o.agents} agents) drains another workspace`);
  const load = startSeedLoad(url, o);
  try {
    await load.draining;
    const loaded = await timerPhase(url, `${workspace}-loaded`, o);
    return {
      offerTimeoutMs: OFFER_TIMEOUT_MS,
      batchEveryMs: BATCH_EVERY_MS,
      idle,
      loaded: {
        ...loaded,
        loadRuns: load.runs(),
        loadAgents: o.agents,
        loadContacts: seedLoadContacts(o.duration),
      },
    };
  } finally {
    await load.stop();
  }
}

/** One phase: offers made over `o.duration` s, left to expire; the lag of every expiry. */
async function timerPhase(url: string, workspace: string, o: TimersOptions): Promise<TimerLag> {
  const redis = connectRedis({ url });
  const log = pino({ level: 'silent' });
  const dispatcher = new Dispatcher(redis, log);
  const projector = new Projector(redis, log);
  let running = true;
  const roles: Promise<void>[] = [];
  try {
    const k = workspaceKeys(workspace);
    await ensureGroup(redis, workspace);
    const agents = Array.from({ length: o.timers }, (_, i) => `agent-${i + 1}`);
    const settings = (offerTimeoutMs: number): Command => ({
      type: 'ChangeSettings',
      offerTimeoutMs,
      wrapUpMs: 0,
      missedOfferPresence: 'away',
      maxWaitMs: null,
    });
    const setup: Command[] = [
      ...agents.map(
        (agentId): Command => ({ type: 'RegisterAgent', agentId, skills: ['English'], capacity: 1 }),
      ),
      ...agents.map((agentId): Command => ({ type: 'ChangeAgentState', agentId, state: 'available' })),
    ];
    await appendAndProject(redis, workspace, setup);
    const from =
      ((await redis.xrevrange(k.commands, '+', '-', 'COUNT', 1)) as StreamEntry[])[0]?.[0] ?? '0-0';

    roles.push(
      projector.run(workspace, () => running),
      dispatcher.run(workspace, () => running),
    );
    const cpu0 = await mainThreadCpuUs(redis);
    const t0 = Date.now();
    // Each agent takes one offer, lets it expire and goes away: exactly `timers` offers in all
    // (a contact whose offer expired goes to an agent not offered yet, if one is left).
    const batches = Math.max(1, Math.min(o.timers, Math.round((o.duration * 1000) / BATCH_EVERY_MS)));
    for (let b = 0; b < batches; b++) {
      const first = Math.floor((b * o.timers) / batches);
      const last = Math.floor(((b + 1) * o.timers) / batches);
      await Promise.all([
        appendCommand(redis, { workspace, command: settings(OFFER_TIMEOUT_MS + b * BATCH_EVERY_MS) }),
        ...Array.from({ length: last - first }, (_, i) =>
          appendCommand(redis, {
            workspace,
            command: {
              type: 'QueueContact',
              contactId: `contact-${first + i + 1}`,
              skills: ['English'],
              priority: 0,
            },
          }),
        ),
      ]);
      // The batch's offers are made (with its timeout) before the next batch's settings apply.
      const made = Date.now() + 10_000;
      while (Number((await redis.hget(k.stats, 'assignments')) ?? 0) < last) {
        if (Date.now() > made) throw new Error(`the offers of batch ${b + 1} were not made in 10 s`);
        await sleep(1);
      }
    }
    const setupMs = Date.now() - t0;
    const deadline = Date.now() + OFFER_TIMEOUT_MS + batches * BATCH_EVERY_MS + 30_000;
    while (dispatcher.timersFired < o.timers) {
      if (Date.now() > deadline)
        throw new Error(`only ${dispatcher.timersFired} of ${o.timers} offer expiries fired in time`);
      await sleep(20);
    }
    const seconds = (Date.now() - t0) / 1000;
    const cpuUs = (await mainThreadCpuUs(redis)) - cpu0;

    const lags: number[] = [];
    let cursor = `(${from}`;
    for (;;) {
      const entries = (await redis.xrange(k.commands, cursor, '+', 'COUNT', 5000)) as StreamEntry[];
      for (const [id, fields] of entries) {
        const commandId = fields[fields.indexOf('commandId') + 1] ?? '';
        if (!commandId.startsWith('timer:o|')) continue;
        const due = Number(commandId.slice(commandId.lastIndexOf(':') + 1));
        lags.push(Number(id.split('-')[0]) - due);
      }
      if (entries.length < 5000) break;
      cursor = `(${entries[entries.length - 1]![0]}`;
    }
    return {
      timers: lags.length,
      medianMs: median(lags),
      p90Ms: percentile(lags, 90),
      p99Ms: percentile(lags, 99),
      maxMs: lags.length > 0 ? Math.max(...lags) : null,
      minMs: lags.length > 0 ? Math.min(...lags) : null,
      redisCpuShare: round(cpuUs / 1e6 / seconds, 2) ?? 0,
      seconds: round(seconds, 2) ?? 0,
      offersMadeMs: setupMs,
    };
  } finally {
    running = false;
    dispatcher.interrupt(workspace);
    projector.interrupt(workspace);
    await Promise.allSettled(roles);
    if (o.redisUrl !== undefined) await dropWorkspace(redis, workspace).catch(() => {});
    redis.disconnect();
  }
}

/**
 * The seed workload (`npm run bench -- seed`) on the same Redis from a process of its own, started
 * again each time a run ends until `stop`. `draining` resolves once the first run drains. The
 * bench's own build of itself runs it (childCommand, as the HTTP workloads' children): through tsx
 * each start would first spend over a second of CPU loading the TypeScript.
 */
function startSeedLoad(url: string, o: TimersOptions) {
  let stopped = false;
  let child: ChildProcess | undefined;
  let started = 0;
  let onDraining: () => void = () => {};
  let onFailed: (err: Error) => void = () => {};
  const draining = new Promise<void>((resolve, reject) => {
    onDraining = resolve;
    onFailed = reject;
  });
  const launch = async () => {
    const command = await childCommand('src/cli/bench.ts');
    if (stopped) return;
    started++;
    const args = [
      ...command,
      'seed',
      '--redis-url',
      url,
      '--agents',
      String(o.agents),
      '--contacts',
      String(seedLoadContacts(o.duration)),
      '--seed',
      String(o.seed),
    ];
    const [cmd, ...rest] = endingWithThisProcess([process.execPath, ...args]);
    const c = spawn(cmd!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let err = '';
    c.stderr?.on('data', (buf: Buffer) => {
      err = (err + buf.toString('utf8')).slice(-4000);
      if (err.includes('draining')) onDraining();
    });
    c.once('exit', (code, signal) => {
      if (stopped) return;
      if (code !== 0) onFailed(new Error(`the seed load exited with ${code ?? signal}: ${err.trim()}`));
      else void launch();
    });
  };
  void launch();
  return {
    draining,
    runs: () => started,
    stop: async () => {
      stopped = true;
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
  };
}
