/**
 * Random crashes of every process kind under load. A fleet of two APIs, two projectors (each
 * step cut short: PROJECT_STEP_MS=1), two dispatchers and an archiver (small segments and a short
 * retention, so it archives and trims the streams all through the run) carries a load with offers
 * on: contacts queued at a steady rate, each offer accepted, rejected or ignored (it expires),
 * accepted contacts completed or transferred once. Meanwhile a seeded random schedule (the seed is
 * printed; CHAOS_SEED replays it, CHAOS_ROUNDS runs more rounds) SIGKILLs a random process of any
 * role, sometimes two at once, sometimes SIGSTOPs one for 1 - 3 s and SIGCONTs it, and restarts
 * the killed ones after a short random delay.
 *
 * At rest: every acknowledged command is applied exactly once (no commandId appended twice across
 * archive and stream), the auditor over archive and streams is clean (every decision rule 1's,
 * documents and routing index compared, the archive's chain whole, nothing routable left waiting),
 * every killed process came back, and a live feed opened with after=0-0 replays every AssignmentMade
 * once, in the log's order, through the archived part.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseFields, type StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { readLogAfter } from '../../src/archive/log-reader.ts';
import { decodeSegment } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import type { EventEnvelope } from '../../src/domain/events.ts';
import { AREAS, AssignmentFollower, LANGUAGES, RetryingClient, registerAvailable } from '../support/audit.ts';
import { Fleet } from '../support/fleet.ts';
import { lateAnswer, putSettings } from '../support/offer-load.ts';
import type { SwitchboardProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const ROUNDS = Number(process.env.CHAOS_ROUNDS ?? 8);
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SETTINGS = { offerTimeoutMs: 250, wrapUpMs: 100, missedOfferPresence: 'available' };
const AGENTS = 16;
const RATE_PER_S = 20;
const RETENTION = 150;

type Action = 'accept' | 'reject' | 'ignore';
const LATE_TYPES = new Set(['/problems/contact-not-offered', '/problems/offer-not-yours']);

/**
 * The load: contacts queued until `stopQueueing`, each offer answered after a short delay; an
 * accepted contact is completed, or (once per contact) transferred back to the queue. Every
 * command carries a key naming what it answers (the offer's position), retried with it.
 */
class ChaosLoad {
  readonly client: RetryingClient;
  readonly follower: AssignmentFollower;
  readonly agentIds: string[] = [];
  readonly acknowledged = new Set<string>();
  readonly unexpected: string[] = [];
  readonly counts = { accept: 0, reject: 0, ignore: 0, late: 0, completed: 0, transferred: 0 };
  queued = 0;
  /** When each AssignmentMade arrived on the follower's feed, by position. */
  readonly arrivedAt = new Map<string, number>();
  private stopped = false;
  private readonly transferred = new Set<string>();
  private readonly work = new Set<Promise<unknown>>();
  private next = 0;

  constructor(
    apiUrls: readonly string[],
    readonly ws: string,
  ) {
    this.client = new RetryingClient(apiUrls, ws, { maxAttempts: 20, retryBudgetMs: 90_000 });
    for (let i = 0; i < AGENTS; i++) this.agentIds.push(`agent-${String(i).padStart(2, '0')}`);
    this.follower = new AssignmentFollower(apiUrls, ws, (e) => this.onOffer(e));
  }

  get inFlight(): number {
    return this.work.size;
  }

  async prepare(): Promise<void> {
    await registerAvailable(this.client, this.agentIds);
    await this.follower.start();
  }

  private track(p: Promise<unknown>): void {
    this.work.add(p);
    void p.finally(() => this.work.delete(p));
  }

  private send(path: string, body: unknown, key: string) {
    return this.client.command(path, body, key, this.next++);
  }

  private onOffer(e: EventEnvelope): void {
    this.arrivedAt.set(e.position, Date.now());
    const { contactId, agentId, offer } = e.data as { contactId: string; agentId: string; offer?: unknown };
    if (!offer) {
      this.unexpected.push(`${e.position} ${contactId}: an assignment without an offer`);
      return;
    }
    const roll = Math.random();
    const action: Action = roll < 0.7 ? 'accept' : roll < 0.85 ? 'reject' : 'ignore';
    this.counts[action]++;
    if (action === 'ignore') return;
    this.track(
      sleep(20 + Math.random() * 120).then(async () => {
        const r = await this.send(
          `/contacts/${contactId}/${action}`,
          { agentId },
          `${action}-${contactId}-${e.position}`,
        );
        if (r?.status === 409 && LATE_TYPES.has(String(r.body.type))) {
          this.counts.late++;
          return;
        }
        if (r?.status !== 200) {
          this.unexpected.push(
            `${action} ${contactId} (${e.position}): ${r?.status} ${JSON.stringify(r?.body)}`,
          );
          return;
        }
        if (action === 'reject') return;
        await sleep(30 + Math.random() * 200);
        const transfer = !this.transferred.has(contactId) && Math.random() < 0.25;
        if (transfer) this.transferred.add(contactId);
        const c = transfer
          ? await this.send(
              `/contacts/${contactId}/transfer`,
              { skills: [LANGUAGES[Math.floor(Math.random() * 2)]!, AREAS[Math.floor(Math.random() * 3)]!] },
              `transfer-${contactId}-${e.position}`,
            )
          : await this.send(
              `/contacts/${contactId}/complete`,
              undefined,
              `complete-${contactId}-${e.position}`,
            );
        if (c?.status === 200) this.counts[transfer ? 'transferred' : 'completed']++;
        else
          this.unexpected.push(
            `${transfer ? 'transfer' : 'complete'} ${contactId}: ${c?.status} ${JSON.stringify(c?.body)}`,
          );
      }),
    );
  }

  /** Queues contacts at the rate until `stopQueueing`; resolves when every one is answered. */
  async run(): Promise<void> {
    let next = Date.now();
    const sends = new Set<Promise<void>>();
    const random = (n: number) => Math.floor(Math.random() * n);
    for (let i = 0; !this.stopped; i++) {
      next = Math.max(Date.now(), next + 1_000 / RATE_PER_S);
      await sleep(next - Date.now());
      const id = `contact-${String(i).padStart(4, '0')}`;
      const body = { id, skills: [LANGUAGES[random(2)]!, AREAS[random(3)]!], priority: random(3) };
      const p = this.send('/contacts', body, `queue-${id}`).then((r) => {
        if (r && (r.status === 201 || r.status === 202)) this.acknowledged.add(id);
        else this.unexpected.push(`queue ${id}: ${r?.status} ${JSON.stringify(r?.body)}`);
      });
      sends.add(p);
      void p.finally(() => sends.delete(p));
      this.queued++;
    }
    await Promise.all(sends);
  }

  stopQueueing(): void {
    this.stopped = true;
  }

  stop(): void {
    this.follower.stop();
  }
}

/** Every entry of a stream, archived part first (the archiver trims the streams as it goes). */
async function wholeLog(redis: RedisClient, store: DiskArchive, ws: string, stream: 'commands' | 'events') {
  const out: StreamEntry[] = [];
  for await (const page of readLogAfter(redis, store, ws, stream, '0-0')) out.push(...page);
  return out;
}

/** The AssignmentMade positions a live feed opened with after=0-0 sends, until `count` arrived. */
function replayAssignments(apiUrl: string, ws: string, count: number, timeoutMs = 30_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const seen: string[] = [];
    const socket = new WebSocket(
      `${apiUrl.replace('http', 'ws')}/v1/workspaces/${ws}/events/live?type=AssignmentMade&after=0-0`,
    );
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`the replay sent ${seen.length} of ${count} AssignmentMade within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      socket.close();
      resolve(seen);
    };
    socket.on('message', (data) => {
      const e = JSON.parse(String(data)) as EventEnvelope | { heartbeat: unknown };
      if ('heartbeat' in e) return;
      seen.push(e.position);
      // A little longer than needed: a doubled AssignmentMade at the end would show.
      if (seen.length === count) setTimeout(done, 500);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

interface Round {
  round: number;
  atMs: number;
  action: 'kill' | 'kill2' | 'stop';
  victims: string[];
  pauseMs: number;
  restartMs?: number;
}

describe('random crashes of every process kind under load', () => {
  let fleet: Fleet;
  let archiveDir: string;
  const ws = `chaos-${randomUUID().slice(0, 8)}`;
  const k = workspaceKeys(ws);

  beforeAll(async () => {
    archiveDir = await mkdtemp(path.join(tmpdir(), 'sb-chaos-'));
    fleet = await Fleet.start({
      api: 2,
      projector: 2,
      dispatcher: 2,
      archiver: 1,
      env: {
        WORKSPACES: ws,
        DISCOVER_WORKSPACES: 'false',
        LEASE_TTL_MS: '1000',
        PROJECT_STEP_MS: '1',
        ARCHIVE_DIR: archiveDir,
      },
      archiverEnv: {
        LOG_RETENTION: String(RETENTION),
        ARCHIVE_SEGMENT_ENTRIES: '100',
        ARCHIVE_EVERY_MS: '100',
      },
    });
  }, 90_000);

  afterAll(async () => {
    if (fleet) {
      // A process left stopped by a failed run must not hold up the SIGTERMs.
      for (const p of fleet.all) p.kill('SIGCONT');
      const running = fleet.all.length;
      const codes = await fleet.stop();
      expect(codes, 'every process still running stops cleanly on SIGTERM').toEqual(Array(running).fill(0));
    }
    if (archiveDir) await rm(archiveDir, { recursive: true, force: true });
  }, 60_000);

  it('keeps every guarantee through random SIGKILLs and SIGSTOPs of any process', async () => {
    const redis = fleet.client;
    const random = seededRandom(SEED);
    const between = (min: number, max: number) => Math.round(min + random() * (max - min));
    console.log(`chaos seed ${SEED} (CHAOS_SEED=${SEED} CHAOS_ROUNDS=${ROUNDS} to replay)`);
    const started = Date.now();

    await putSettings(fleet.api[0]!.url!, ws, SETTINGS);
    const load = new ChaosLoad(
      fleet.api.map((a) => a.url!),
      ws,
    );
    await load.prepare();
    const loading = load.run();

    // The schedule: each round picks among the processes running and not being disturbed.
    const busy = new Set<SwitchboardProcess>();
    const disturbances: Promise<void>[] = [];
    const rounds: Round[] = [];
    const restartFailures: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(between(1_000, 2_500));
      const candidates = fleet.all.filter((p) => p.running && !busy.has(p));
      const roll = random();
      const action: Round['action'] = roll < 0.25 ? 'stop' : roll < 0.45 ? 'kill2' : 'kill';
      const victims: SwitchboardProcess[] = [];
      for (let n = action === 'kill2' ? 2 : 1; n > 0 && candidates.length > 0; n--)
        victims.push(candidates.splice(Math.floor(random() * candidates.length), 1)[0]!);
      const pauseMs = action === 'stop' ? between(1_000, 3_000) : between(100, 1_500);
      const r: Round = {
        round,
        atMs: Date.now() - started,
        action,
        victims: victims.map((v) => v.name),
        pauseMs,
      };
      rounds.push(r);
      for (const v of victims) busy.add(v);
      if (action === 'stop') {
        for (const v of victims) v.kill('SIGSTOP');
        disturbances.push(
          sleep(pauseMs).then(() => {
            for (const v of victims) {
              v.kill('SIGCONT');
              busy.delete(v);
            }
          }),
        );
        continue;
      }
      for (const v of victims) v.kill('SIGKILL');
      await Promise.all(victims.map((v) => v.exited));
      disturbances.push(
        sleep(pauseMs).then(async () => {
          const at = Date.now();
          try {
            await fleet.restart(victims);
            r.restartMs = Date.now() - at;
          } catch (err) {
            restartFailures.push(`${r.victims}: ${(err as Error).message.slice(0, 2_000)}`);
          }
          for (const v of victims) busy.delete(v);
        }),
      );
    }
    await Promise.all(disturbances);
    load.stopQueueing();
    await loading;
    expect(restartFailures, 'processes that did not come back').toEqual([]);

    // At rest: nothing in flight, no timer left, the checkpoint at the stream's end, no new offer.
    let state = '';
    let stable = 0;
    let seen = -1;
    await waitFor(
      () => `workspace ${ws} to be at rest (${state})`,
      async () => {
        const [timers, head, applied, queued] = await Promise.all([
          redis.zcard(k.timers),
          redis.xrevrange(k.commands, '+', '-', 'COUNT', 1) as Promise<StreamEntry[]>,
          redis.hget(k.meta, 'applied'),
          redis.zcard(k.queue),
        ]);
        state = `in flight ${load.inFlight}, timers ${timers}, queued ${queued}, applied ${applied}, head ${head[0]?.[0]}`;
        const quiet =
          load.inFlight === 0 &&
          timers === 0 &&
          applied === head[0]?.[0] &&
          load.follower.seen.length === seen;
        seen = load.follower.seen.length;
        stable = quiet ? stable + 1 : 0;
        return stable >= 4;
      },
      { timeoutMs: 60_000, everyMs: 150 },
    );
    load.stop();

    // Every process is back and serving: each API answers, and the archiver caught up.
    for (const a of fleet.api) expect((await fetch(`${a.url}/health`)).status, `${a.name} /health`).toBe(200);
    await waitFor(
      'the archiver to trim the streams to the retention',
      async () =>
        (await redis.xlen(k.commands)) < RETENTION + 100 && (await redis.xlen(k.events)) < RETENTION + 100,
      { timeoutMs: 20_000, everyMs: 200 },
    );

    expect(load.client.failed, 'requests that never got a final answer').toBe(0);
    expect(load.unexpected).toEqual([]);
    expect(load.acknowledged.size).toBe(load.queued);

    // Applied exactly once: no commandId (a client's key, or a timer's) appended twice.
    const store = new DiskArchive(archiveDir);
    const commands = await wholeLog(redis, store, ws, 'commands');
    const ids = new Map<string, number>();
    for (const [, fields] of commands) {
      const id = parseFields(fields).commandId ?? '';
      ids.set(id, (ids.get(id) ?? 0) + 1);
    }
    expect([...ids].filter(([, n]) => n > 1).map(([id, n]) => `${id} ×${n}`)).toEqual([]);
    expect(await store.list(ws, 'commands'), 'segments archived').not.toHaveLength(0);

    // The auditor over archive and streams: no violation, documents compared, idle dispatcher.
    const audit = await auditWorkspace(redis, ws, { idle: true, archive: store });
    const violations = audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`);
    expect(violations, `violations found by the auditor (${audit.violationCount} in all)`).toEqual([]);
    expect(audit.pendingCommands).toBe(0);
    expect(audit.state).toBe('compared');
    expect(audit.commands).toBe(commands.length);
    const rejected = audit.rejected.filter((r) => !lateAnswer(r)).map((r) => JSON.stringify(r));
    expect(rejected, 'commands rejected other than late answers to offers').toEqual([]);

    // Every acknowledged contact was queued once; at rest each is completed, or still queued with
    // no eligible agent (the idle check); none is left assigned or offered.
    const states: Record<string, number> = {};
    const lost: string[] = [];
    for (const id of load.acknowledged) if (!audit.replay.contacts.has(id)) lost.push(id);
    for (const c of audit.replay.contacts.values()) states[c.state] = (states[c.state] ?? 0) + 1;
    expect(lost, 'acknowledged contacts with no ContactQueued').toEqual([]);
    expect(Object.keys(states).filter((s) => s !== 'completed' && s !== 'queued')).toEqual([]);
    expect(states.completed).toBe(load.counts.completed);

    // The follower's feed, across API kills and stops, and a fresh replay from the start.
    expect(load.follower.duplicates, 'duplicates on the live feed').toBe(0);
    const missed = audit.assignmentPositions.filter((p) => !load.arrivedAt.has(p));
    if (missed.length > 0) {
      const segments = [];
      for (const name of await store.list(ws, 'events'))
        segments.push(decodeSegment(await store.read(ws, 'events', name)).header);
      console.log(
        JSON.stringify({
          missed,
          around: audit.assignmentPositions
            .filter((p) => Math.abs(Number(p.split('-')[0]) - Number(missed[0]!.split('-')[0])) < 600)
            .map((p) => [p, (load.arrivedAt.get(p) ?? 0) - started]),
          rounds,
          reconnects: load.follower.reconnects,
          gaps: load.follower.gapsMs,
          segments: segments.map((h) => h && [h.index, h.first, h.last, h.count]),
          started,
        }),
      );
    }
    expect(load.follower.seen.map((e) => e.position)).toEqual(audit.assignmentPositions);
    const replayed = await replayAssignments(fleet.api[1]!.url!, ws, audit.assignments);
    expect(replayed, 'a live feed from after=0-0').toEqual(audit.assignmentPositions);

    const trimmed = await redis.hget(k.archive, 'commands');
    console.log(
      JSON.stringify({
        suite: 'chaos',
        seed: SEED,
        rounds,
        kills: rounds.filter((r) => r.action !== 'stop').reduce((n, r) => n + r.victims.length, 0),
        stops: rounds.filter((r) => r.action === 'stop').length,
        contacts: load.queued,
        ...load.counts,
        requests: load.client.requests,
        retries: load.client.retries,
        accepted202: load.client.accepted202,
        networkErrors: load.client.networkErrors,
        commands: audit.commands,
        events: audit.events,
        assignments: audit.assignments,
        decisionsChecked: audit.decisionsChecked,
        segments: (await store.list(ws, 'commands')).length,
        archiveMark: trimmed,
        contactStates: states,
        wsReconnects: load.follower.reconnects,
        totalMs: Date.now() - started,
      }),
    );
  }, 240_000);
});
