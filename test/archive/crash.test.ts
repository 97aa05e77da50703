/**
 * Crash safety of the archiver, in real processes killed with SIGKILL: `ROLES=archiver` with the
 * test hook `ARCHIVE_PAUSE_AT` stops for good right after a segment is durable (before the trim)
 * or right after the trim; the process is killed there, another archiver process takes the lease
 * and carries on. Afterwards every entry is read once, in order, across archive and stream, and
 * the auditor over both finds nothing lost, nothing doubled and an unbroken chain.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { readLogAfter } from '../../src/archive/log-reader.ts';
import { decodeSegment, type LogStream } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

describe('an archiver killed with SIGKILL', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  const dirs: string[] = [];
  afterAll(async () => {
    await killAllProcesses();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const archiverProcess = (ws: string, dir: string, pauseAt?: string) =>
    startProcess({
      roles: 'archiver',
      redis: suite.server,
      name: `archiver${pauseAt ? `@${pauseAt}` : ''}`,
      env: {
        WORKSPACES: ws,
        DISCOVER_WORKSPACES: 'false',
        ARCHIVE_DIR: dir,
        LOG_RETENTION: '10',
        ARCHIVE_SEGMENT_ENTRIES: '100',
        ARCHIVE_EVERY_MS: '50',
        LEASE_TTL_MS: '500',
        ARCHIVE_PAUSE_AT: pauseAt,
      },
    });

  async function entries(store: DiskArchive, ws: string, stream: LogStream): Promise<StreamEntry[]> {
    const out: StreamEntry[] = [];
    for await (const page of readLogAfter(suite.redis, store, ws, stream, '0-0')) out.push(...page);
    return out;
  }

  for (const point of ['segment-written', 'trimmed'] as const) {
    it(`loses nothing and doubles nothing when killed at ${point}`, async () => {
      const ws = `archive-crash-${run}-${point}`;
      const k = workspaceKeys(ws);
      await writeLog(suite.redis, ws, { events: 450, agents: 10, seed: point.length });
      const commands = (await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[];
      const events = (await suite.redis.xrange(k.events, '-', '+')) as StreamEntry[];
      const clean = await auditWorkspace(suite.redis, ws);
      expect(clean.violations).toEqual([]);
      const dir = await mkdtemp(path.join(tmpdir(), 'sb-archive-crash-'));
      dirs.push(dir);
      const store = new DiskArchive(dir);

      const first = await archiverProcess(ws, dir, point);
      await waitFor(`${first.name} to pause`, () => first.logText().includes('archiver paused'), {
        timeoutMs: 20_000,
      });
      first.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');

      // Where it stopped: the commands' first segment is durable; trimmed (and marked) or not.
      const names = await store.list(ws, 'commands');
      expect(names).toHaveLength(1);
      const seg = decodeSegment(await store.read(ws, 'commands', names[0]!));
      expect(seg.problems).toEqual([]);
      expect(seg.header).toMatchObject({ index: 0, count: 100, first: commands[0]![0] });
      const anchor = parseAnchor(await suite.redis.hget(k.archive, 'commands'));
      if (point === 'segment-written') {
        expect(anchor).toBeUndefined();
        expect(await suite.redis.xlen(k.commands)).toBe(commands.length);
      } else {
        expect(anchor).toMatchObject({ index: 0, last: commands[99]![0], total: 100 });
        expect(await suite.redis.xlen(k.commands)).toBe(commands.length - 100);
      }
      // Read and audited right there: every entry once, in order, the chain whole.
      expect(await entries(store, ws, 'commands')).toEqual(commands);
      const mid = await auditWorkspace(suite.redis, ws, { archive: store });
      expect(mid.violations).toEqual([]);
      expect(mid).toMatchObject({ commands: clean.commands, events: clean.events, pendingCommands: 0 });

      // Another archiver takes the lease once the dead one's expires, and finishes the work.
      const second = await archiverProcess(ws, dir);
      await waitFor(
        'the second archiver to move everything past the retention',
        async () => (await suite.redis.xlen(k.commands)) <= 10 && (await suite.redis.xlen(k.events)) <= 10,
        { timeoutMs: 20_000 },
      );
      expect(await second.stop()).toBe(0);
      expect(second.logText()).not.toMatch(/"level":(50|60)/);

      expect(await entries(store, ws, 'commands')).toEqual(commands);
      expect(await entries(store, ws, 'events')).toEqual(events);
      const segments = await store.list(ws, 'commands');
      expect(segments.length).toBe(Math.ceil((commands.length - 10) / 100));
      const after = await auditWorkspace(suite.redis, ws, { archive: store });
      expect(after.violations).toEqual([]);
      expect(after).toMatchObject({
        ok: true,
        state: 'compared',
        commands: clean.commands,
        events: clean.events,
        decisionsChecked: clean.decisionsChecked,
      });
    }, 45_000);
  }
});
