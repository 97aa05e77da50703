/**
 * State snapshots in the archive (docs/ARCHIVE.md, "Snapshots"): with a short retention and a
 * small SNAPSHOT_EVERY_EVENTS, the archiver role moves most of the log into segments and writes a
 * snapshot every N archived events (the log has contacts completed, abandoned, and from a third of
 * the way offered first, accepted or rejected). GET /state?at= for positions before, at and after snapshots,
 * in the archive and in the stream, answers what the replay from the beginning answers, starts
 * from the latest snapshot at or before the position (and says which), and replays at most about
 * N events. A damaged snapshot is passed over for an earlier one.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { readLogAfter } from '../../src/archive/log-reader.ts';
import { listSnapshots, type SnapshotName } from '../../src/archive/snapshots.ts';
import { DiskArchive, SegmentExistsError } from '../../src/archive/store.ts';
import { decodeSnapshot, encodeSnapshot, restoreAuditor } from '../../src/audit/replay-snapshot.ts';
import { SnapshotWriter } from '../../src/audit/snapshot-writer.ts';
import { stateAt } from '../../src/audit/state-at.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { comparePositions } from '../../src/domain/values.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'snapshots';
const EVERY = 150;
const SKILLS = ['A', 'B', 'C', 'D'];
const log = pino({ level: 'silent' });
let redis: TestRedis;
let main: Running;
let dir: string;
let store: DiskArchive;
/** Every event position of the log, in order. */
let events: string[];
let snapshots: SnapshotName[];

/** A varied history: agents that change, contacts queued, routed, completed, abandoned. */
async function history(): Promise<void> {
  const r = main.redis;
  const rng = seededRandom(5);
  const skills = () => {
    const s = SKILLS.filter(() => rng() < 0.5).slice(0, 3);
    return s.length > 0 ? s : ['A'];
  };
  await ensureGroup(r, WS);
  const send = async (commands: Command[]) => {
    for (const command of commands) await appendCommand(r, { workspace: WS, command });
  };
  await send(
    Array.from({ length: 12 }, (_, i) => ({
      type: 'RegisterAgent' as const,
      agentId: `a${i}`,
      skills: skills(),
      capacity: 1 + (i % 2),
    })),
  );
  let contact = 0;
  const assigned: string[] = [];
  let offered: { contactId: string; agentId: string }[] = [];
  for (let round = 0; round < 130; round++) {
    const commands: Command[] = [];
    // From round 40 on, contacts are offered first (snapshots then hold settings, offers and the
    // agents who turned a contact down); the test accepts or rejects each offer.
    if (round === 40)
      commands.push({
        type: 'ChangeSettings',
        offerTimeoutMs: 600_000,
        wrapUpMs: 0,
        missedOfferPresence: 'away',
        maxWaitMs: null,
      });
    for (const o of offered) {
      if (rng() < 0.7) {
        commands.push({ type: 'AcceptOffer', ...o });
        assigned.push(o.contactId);
      } else commands.push({ type: 'RejectOffer', ...o });
    }
    offered = [];
    for (let i = 0; i < 12; i++)
      if (rng() < 0.3)
        commands.push({
          type: 'ChangeAgentState',
          agentId: `a${i}`,
          state: rng() < 0.8 ? 'available' : 'away',
        });
    for (let i = 0; i < 6; i++)
      commands.push({
        type: 'QueueContact',
        contactId: `c${contact++}`,
        skills: skills(),
        priority: Math.floor(rng() * 3),
      });
    if (rng() < 0.3) commands.push({ type: 'AbandonContact', contactId: `c${Math.floor(rng() * contact)}` });
    if (rng() < 0.2)
      commands.push({ type: 'UpdateAgent', agentId: `a${Math.floor(rng() * 12)}`, skills: skills() });
    while (assigned.length > 0 && rng() < 0.7)
      commands.push({ type: 'CompleteContact', contactId: assigned.shift()! });
    await send(commands);
    await projectPending(r, WS);
    const before = (await r.xrevrange(workspaceKeys(WS).events, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    if (rng() < 0.8) await dispatchPending(r, WS);
    const made = (await r.xrange(workspaceKeys(WS).events, `(${before}`, '+')) as StreamEntry[];
    for (const [, f] of made)
      if (f[1] === 'AssignmentMade') {
        const d = (JSON.parse(f[3]!) as { data: { contactId: string; agentId: string; offer?: unknown } })
          .data;
        if (d.offer) offered.push({ contactId: d.contactId, agentId: d.agentId });
        else assigned.push(d.contactId);
      }
  }
}

beforeAll(async () => {
  redis = await startTestRedis();
  dir = await mkdtemp(path.join(tmpdir(), 'sb-snapshots-'));
  store = new DiskArchive(dir);
  // The projector and dispatcher steps are run by the test (a log the same on every run); the
  // archiver role moves it and takes the snapshots.
  main = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      ROLES: 'api,archiver',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      ARCHIVE_DIR: dir,
      LOG_RETENTION: '200',
      ARCHIVE_SEGMENT_ENTRIES: '100',
      ARCHIVE_EVERY_MS: '50',
      SNAPSHOT_EVERY_EVENTS: String(EVERY),
    }),
    log,
  );
  await history();
  const k = workspaceKeys(WS);
  // The stream's length and the archive's mark in one MULTI (an archiver trims meanwhile).
  const cut = await main.redis.multi().xlen(k.events).hget(k.archive, 'events').exec();
  const total = Number(cut![0]![1]) + (parseAnchor(cut![1]![1] as string | null)?.total ?? 0);
  // Wait for the archiver to be done: events past the newest 200 archived, a snapshot every 150
  // of them (then nothing changes in the archive any more). The last one due may wait for the rest
  // of its command's events, or come a pass later on a loaded machine: so the archive must also
  // have stayed as it is for 20 of the archiver's passes.
  let seen = '';
  let since = Date.now();
  await waitFor(
    'the archive and its snapshots',
    async () => {
      const mark = parseAnchor(await main.redis.hget(k.archive, 'events'));
      const names = await listSnapshots(store, WS);
      const now = `${mark?.total}:${names.length}`;
      if (now !== seen) {
        seen = now;
        since = Date.now();
      }
      // At rest: the newest 200 events stay in Redis, the rest is archived.
      if (!mark || mark.total < total - 200) return false;
      return (names.at(-1)?.events ?? 0) + EVERY + 3 > mark.total && Date.now() - since >= 1000;
    },
    { timeoutMs: 30_000, everyMs: 100 },
  );
  events = [];
  for await (const page of readLogAfter(main.redis, store, WS, 'events', '0-0'))
    events.push(...page.map((e) => e[0]));
  expect(events.length).toBe(total);
  snapshots = await listSnapshots(store, WS);
}, 60_000);

afterAll(async () => {
  await main?.stop();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

const without = (s: Record<string, unknown>) => ({ ...s, snapshot: undefined, replayed: undefined });

describe('state snapshots', () => {
  it('are taken every SNAPSHOT_EVERY_EVENTS archived events, never half-way through a command', async () => {
    expect(events.length).toBeGreaterThan(1500);
    const mark = parseAnchor(await main.redis.hget(workspaceKeys(WS).archive, 'events'))!;
    // One per N archived events (the last may wait for the rest of its command to be archived).
    expect(snapshots.length).toBeGreaterThanOrEqual(Math.floor(mark.total / EVERY) - 1);
    expect(snapshots.length).toBeLessThanOrEqual(Math.floor(mark.total / EVERY));
    for (const [i, s] of snapshots.entries()) {
      // The k-th snapshot is right after the (k·N)-th event, or the rest of that event's command.
      expect(s.events).toBeGreaterThanOrEqual((i + 1) * EVERY);
      expect(s.events).toBeLessThan((i + 1) * EVERY + 3);
      expect(events[s.events - 1]).toBe(s.position);
      expect(comparePositions(s.position, mark.last)).toBeLessThanOrEqual(0);
    }
  });

  it('state?at= from a snapshot equals the state from the beginning, before, at and after snapshots', async () => {
    const picks = new Set<number>([0, 1, EVERY - 2, EVERY - 1, EVERY, events.length - 1, events.length - 2]);
    for (const s of snapshots) for (const d of [-2, -1, 0, 1, 2, 37]) picks.add(s.events - 1 + d);
    for (let i = 0; i < 10; i++) picks.add(Math.floor(((i + 0.5) * events.length) / 10));
    let checked = 0;
    const mark = parseAnchor(await main.redis.hget(workspaceKeys(WS).archive, 'events'))!;
    for (const i of [...picks].filter((n) => n >= 0 && n < events.length).sort((a, b) => a - b)) {
      const at = events[i]!;
      const fast = await stateAt(main.redis, WS, at, { archive: store });
      const slow = await stateAt(main.redis, WS, at, { archive: store, snapshots: false });
      if (!('state' in fast) || !('state' in slow)) throw new Error(`no state at ${at}`);
      expect(without({ ...fast.state }), at).toEqual(without({ ...slow.state }));
      const used = snapshots.filter((s) => comparePositions(s.position, at) <= 0).at(-1);
      expect(fast.state.snapshot).toBe(used?.position ?? null);
      expect(slow.state.snapshot).toBeNull();
      // The bound: in the archived part, at most N events after the snapshot (plus the rest of
      // one command's); past it, the events Redis still holds besides.
      if (i < mark.total) expect(fast.state.replayed.events, at).toBeLessThan(EVERY + 3);
      expect(fast.state.replayed.events).toBe(slow.state.replayed.events - (used?.events ?? 0));
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
    // About 3 s alone: each pick replays the log from its start once (the slow side); 30 s ran
    // out once with the machine's two cores shared by several heavy suites.
  }, 90_000);

  it('the route answers the same, and names the snapshot it used', async () => {
    const s = snapshots[1]!;
    const at = events[s.events + 10]!;
    const res = await main.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/state?at=${at}` });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.snapshot).toBe(s.position);
    expect(body.replayed.events).toBe(11);
    const slow = await stateAt(main.redis, WS, at, { archive: store, snapshots: false });
    expect(without(body)).toEqual(without(JSON.parse(JSON.stringify('state' in slow ? slow.state : {}))));
  });

  it('a snapshot restores to the state it was taken from (encode, decode, restore, encode)', async () => {
    const s = snapshots.at(-1)!;
    const bytes = await store.readSnapshot(WS, s.name);
    const d = decodeSnapshot(bytes, WS);
    if (typeof d === 'string') throw new Error(d);
    expect(encodeSnapshot(restoreAuditor(d), d.header.eventSha256).bytes.equals(bytes)).toBe(true);
    expect(decodeSnapshot(bytes, 'another')).toMatch(/workspace another|of workspace/);
  });

  it('a damaged snapshot is passed over for an earlier one (and reported)', async () => {
    const last = snapshots.at(-1)!;
    const prev = snapshots.at(-2)!;
    const file = path.join(dir, WS, 'snapshots', last.name);
    const good = await readFile(file);
    const at = events[last.events + 5]!;
    try {
      const text = good.toString('utf8');
      // One byte changed in the body: still JSON, no longer its hash.
      await writeFile(file, text.replace('"available"', '"availablE"'));
      const bad: string[] = [];
      const r = await stateAt(main.redis, WS, at, {
        archive: store,
        onBadSnapshot: (n, why) => bad.push(`${n}: ${why}`),
      });
      const slow = await stateAt(main.redis, WS, at, { archive: store, snapshots: false });
      if (!('state' in r) || !('state' in slow)) throw new Error('no state');
      expect(bad).toEqual([`${last.name}: its body does not have the sha256 of its header`]);
      expect(r.state.snapshot).toBe(prev.position);
      expect(without({ ...r.state })).toEqual(without({ ...slow.state }));
      // Cut short: the same.
      await writeFile(file, good.subarray(0, good.length >> 1));
      const cut = await stateAt(main.redis, WS, at, { archive: store });
      expect('state' in cut && cut.state.snapshot).toBe(prev.position);
    } finally {
      await writeFile(file, good);
    }
  });

  it('the store never replaces a snapshot, and lists only snapshots, in log order', async () => {
    const last = snapshots.at(-1)!;
    await expect(store.putSnapshot(WS, last.name, Buffer.from('other'))).rejects.toBeInstanceOf(
      SegmentExistsError,
    );
    await writeFile(path.join(dir, WS, 'snapshots', '.half-written.tmp'), 'x');
    await writeFile(path.join(dir, WS, 'snapshots', 'notes.txt'), 'x');
    expect(await listSnapshots(store, WS)).toEqual(snapshots);
    expect((await store.listSnapshots('no-such-workspace')).length).toBe(0);
  });

  it('the writer takes nothing more when nothing new is archived', async () => {
    const writer = new SnapshotWriter(main.redis, store, log, { every: EVERY });
    expect(await writer.take(WS)).toBe(0);
  });
});
