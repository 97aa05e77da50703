/**
 * The cost of GET /state?at= (docs/ARCHIVE.md, "Snapshots"): a log of contacts taken and completed
 * in rounds (and forgotten once finished, as CONTACT_RETENTION has it), archived but for its newest 1,000 events, with a snapshot every EVERY events. At
 * positions early, midway, just before the last snapshot (the worst case: EVERY events after the
 * one before) and at the end, the state from the latest snapshot equals the state from the
 * beginning, replays at most EVERY events in the archived part, and the time of each is printed.
 * CI size: 20,000 events, a snapshot every 2,000 (a few seconds); the figures in ARCHIVE.md come
 * from STATE_COST_EVENTS=300000 STATE_COST_EVERY=100000 (and 100000 / 10000).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { forgetFinishedContacts } from '../../src/archive/forgetting.ts';
import { readLogAfter } from '../../src/archive/log-reader.ts';
import { listSnapshots } from '../../src/archive/snapshots.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { SnapshotWriter } from '../../src/audit/snapshot-writer.ts';
import { stateAt } from '../../src/audit/state-at.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

const EVENTS = Number(process.env.STATE_COST_EVENTS ?? 20_000);
const EVERY = Number(process.env.STATE_COST_EVERY ?? 2_000);

describe('the cost of state?at=', () => {
  const suite = suiteRedis();
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    `from a snapshot: at most ${EVERY.toLocaleString('en-US')} events replayed on a log of ${EVENTS.toLocaleString('en-US')}`,
    async () => {
      const ws = `state-cost-${Date.now().toString(36)}`;
      const k = workspaceKeys(ws);
      const r = suite.redis;
      dir = await mkdtemp(path.join(tmpdir(), 'sb-state-cost-'));
      const store = new DiskArchive(dir);
      const log = pino({ level: 'silent' });
      const archiver = new Archiver(r, store, log, {
        retention: { count: 1000 },
        segmentEntries: 10_000,
        everyMs: 1000,
      });
      const projector = { ...defaultProjectorOptions, batch: 1000 };
      const send = async (batch: Command[]) => {
        await Promise.all(batch.map((command) => appendCommand(r, { workspace: ws, command })));
        await projectPending(r, ws, [], projector);
        await dispatchPending(r, ws, defaultDispatcherOptions);
      };
      await ensureGroup(r, ws);
      const agents = Array.from({ length: 50 }, (_, i) => `agent-${i}`);
      await send(
        agents.map((agentId) => ({ type: 'RegisterAgent', agentId, skills: ['English'], capacity: 1 })),
      );
      await send(agents.map((agentId) => ({ type: 'ChangeAgentState', agentId, state: 'available' })));
      const total = async () =>
        (await r.xlen(k.events)) + (parseAnchor(await r.hget(k.archive, 'events'))?.total ?? 0);
      for (let round = 0, contact = 0; round % 20 !== 0 || (await total()) < EVENTS; round++) {
        const ids = agents.map(() => `c-${++contact}`);
        await send(
          ids.map((contactId) => ({ type: 'QueueContact', contactId, skills: ['English'], priority: 1 })),
        );
        await send(ids.map((contactId) => ({ type: 'CompleteContact', contactId })));
        // Finished contacts forgotten at once (the archiver role's ForgetContacts commands), so the
        // state, and each snapshot, stays the size of the live documents.
        if ((await forgetFinishedContacts(r, ws, 0)) > 0) await projectPending(r, ws, [], projector);
        if (round % 20 === 0) await archiver.drain(ws);
      }
      await archiver.drain(ws);

      let t = performance.now();
      const written = await new SnapshotWriter(r, store, log, { every: EVERY }).take(ws);
      const figures: Record<string, unknown> = { writeAllMs: Math.round(performance.now() - t) };
      const names = await listSnapshots(store, ws);
      expect(written).toBe(names.length);
      expect(names.length).toBeGreaterThanOrEqual(Math.floor((EVENTS - 1000) / EVERY) - 1);
      figures.snapshots = names.length;
      figures.lastSnapshotBytes = (await stat(path.join(dir, ws, 'snapshots', names.at(-1)!.name))).size;
      const events: string[] = [];
      for await (const page of readLogAfter(r, store, ws, 'events', '0-0'))
        events.push(...page.map((e) => e[0]));
      figures.events = events.length;
      const archived = parseAnchor(await r.hget(k.archive, 'events'))!.total;

      const picks = [
        Math.floor(events.length * 0.1),
        Math.floor(events.length * 0.5),
        names.at(-1)!.events - 2,
        events.length - 1,
      ];
      for (const i of picks) {
        const at = events[i]!;
        const timed = async (snapshots: boolean) => {
          t = performance.now();
          const s = await stateAt(r, ws, at, { archive: store, snapshots });
          if (!('state' in s)) throw new Error(`no state at ${at}`);
          return { s: s.state, ms: Math.round(performance.now() - t) };
        };
        const fast = await timed(true);
        const slow = await timed(false);
        expect({ ...fast.s, snapshot: null, replayed: null }).toEqual({
          ...slow.s,
          snapshot: null,
          replayed: null,
        });
        expect(slow.s.replayed.events).toBe(i + 1);
        if (i < archived) expect(fast.s.replayed.events).toBeLessThanOrEqual(EVERY + 3);
        figures[`event ${i + 1}`] = {
          fromSnapshot: { ms: fast.ms, events: fast.s.replayed.events },
          fromStart: { ms: slow.ms, events: slow.s.replayed.events },
        };
      }
      console.log(`state?at= cost: ${JSON.stringify(figures)}`);
    },
    Math.max(60_000, EVENTS * 2),
  );
});
