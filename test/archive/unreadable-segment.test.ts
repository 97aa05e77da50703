/**
 * A segment whose header cannot be read (a file emptied, or cut short inside its first line) is
 * one `archive` violation at that segment, saying what is wrong with it; the intact segment after
 * it is not reported too (how many entries the unreadable one held is unknown, so the next one's
 * count up to its end cannot be held to it). The user restores the one damaged file, not two.
 */
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';

describe('an archive segment whose header cannot be read', () => {
  const suite = suiteRedis();
  const ws = `unreadable-${Date.now().toString(36)}`;
  const dirs: string[] = [];
  let dir: string;
  let events: StreamEntry[];

  beforeAll(async () => {
    await writeLog(suite.redis, ws, { events: 500, agents: 12, seed: 7 });
    events = (await suite.redis.xrange(workspaceKeys(ws).events, '-', '+')) as StreamEntry[];
    dir = await mkdtemp(path.join(tmpdir(), 'sb-unreadable-'));
    dirs.push(dir);
    await new Archiver(suite.redis, new DiskArchive(dir), pino({ level: 'silent' }), {
      retention: { count: 10 },
      segmentEntries: 100,
      everyMs: 50,
    }).drain(ws);
  });

  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** The archive violations of an audit of a copy of the archive whose second events segment `change` damaged. */
  async function damaged(change: (file: string) => Promise<void>) {
    const copy = await mkdtemp(path.join(tmpdir(), 'sb-unreadable-'));
    dirs.push(copy);
    await cp(dir, copy, { recursive: true });
    const segments = path.join(copy, ws, 'events');
    const names = (await readdir(segments)).sort();
    expect(names.length).toBeGreaterThan(3);
    await change(path.join(segments, names[1]!));
    const report = await auditWorkspace(suite.redis, ws, {
      archive: new DiskArchive(copy),
      compareState: false,
    });
    return { names, found: report.violations.filter((v) => v.kind === 'archive') };
  }

  it('an emptied segment is one violation, at it, saying it is empty', async () => {
    const { names, found } = await damaged((file) => truncate(file, 0));
    expect(found.map((v) => v.message)).toEqual([
      `segment ${names[1]}: the file is empty (0 bytes): cut short, or never written whole`,
    ]);
    expect(found[0]).toMatchObject({ stream: 'events', position: events[100]![0] });
  });

  it('a segment cut short inside its header is one violation, at it', async () => {
    const { names, found } = await damaged(async (file) => {
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.slice(0, 40));
    });
    expect(found.map((v) => v.message)).toEqual([
      `segment ${names[1]}: its first line is not a segment header`,
    ]);
    expect(found[0]).toMatchObject({ stream: 'events', position: events[100]![0] });
  });
});
