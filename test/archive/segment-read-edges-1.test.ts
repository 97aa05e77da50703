/**
 * A segment in the middle of the chain whose file cannot be read at all (not this user's to read,
 * as a copy restored by another user with the archive's owner-only mode; a folder where the file
 * must be; a failing disk): `GET /events` and `GET /state?at=` answered 500 `/problems/internal`
 * and the audit stopped with the file system's error, naming neither the segment nor what to do.
 * Now it is a break of the archive like an emptied segment: 503 `/problems/archive-unreadable`
 * with the positions around the hole, a read after it served, and an `archive` violation in the
 * audit naming the segment.
 */
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Archiver } from '../../src/archive/archiver.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { positionPredecessor } from '../../src/domain/values.ts';
import { inProcessApi } from '../support/api.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sb-segment-read-edges-1-'));
const api = inProcessApi([], { env: { ROLES: 'api', ARCHIVE_DIR: dir } });
afterAll(() => rm(dir, { recursive: true, force: true }));
const run = Date.now().toString(36);
const log = pino({ level: 'silent' });

const headerOf = async (file: string) => {
  const text = (await readFile(file)).toString('utf8');
  return JSON.parse(text.slice(0, text.indexOf('\n'))) as { first: string; last: string };
};

describe('a segment whose file cannot be read', () => {
  it('is a hole named by GET /events, GET /state and the audit, not an internal error', async () => {
    const redis = api.running.redis;
    const ws = `segment-read-edges-1-${run}`;
    await writeLog(redis, ws, { events: 300, agents: 4, seed: 7 });
    const store = new DiskArchive(dir);
    await new Archiver(redis, store, log, {
      segmentEntries: 50,
      everyMs: 10,
      retention: { count: 50 },
    }).drain(ws);
    const events = path.join(dir, ws, 'events');
    const names = (await readdir(events)).sort();
    expect(names.length).toBeGreaterThan(4);
    const before = await headerOf(path.join(events, names[1]!));
    const after = await headerOf(path.join(events, names[3]!));
    // Segment 2 a folder under its name: reading it fails (EISDIR), as a file of another owner
    // fails with EACCES for a process not run as root.
    await rename(path.join(events, names[2]!), path.join(events, `${names[2]}.away`));
    await mkdir(path.join(events, names[2]!));

    const fromStart = await api.call('GET', `/v1/workspaces/${ws}/events?after=0-0&limit=1000`);
    expect(fromStart.status, JSON.stringify(fromStart.body).slice(0, 300)).toBe(503);
    expect(fromStart.body.type).toBe('/problems/archive-unreadable');
    expect(fromStart.body.lostAfter).toBe(before.last);
    expect(fromStart.body.resumeAt).toBe(after.first);

    const inside = await api.call('GET', `/v1/workspaces/${ws}/events?after=${before.last}&limit=10`);
    expect(inside.status, JSON.stringify(inside.body).slice(0, 300)).toBe(503);
    expect(inside.body.type).toBe('/problems/archive-unreadable');
    const resumed = await api.ok('GET', ws, `/events?after=${positionPredecessor(after.first)}&limit=2`);
    expect((resumed.events as { position: string }[])[0]?.position).toBe(after.first);

    const state = await api.call('GET', `/v1/workspaces/${ws}/state?at=${after.last}`);
    expect(state.status, JSON.stringify(state.body).slice(0, 300)).toBe(503);
    expect(state.body.type).toBe('/problems/archive-unreadable');

    const report = await auditWorkspace(redis, ws, { archive: new DiskArchive(dir) });
    expect(report.ok).toBe(false);
    const archive = report.violations.filter((v) => v.kind === 'archive');
    expect(archive.length, JSON.stringify(report.violations.slice(0, 3))).toBeGreaterThan(0);
    expect(JSON.stringify(archive[0])).toContain(names[2]!);
    expect(JSON.stringify(archive[0])).toContain('cannot be read');
  });
});
