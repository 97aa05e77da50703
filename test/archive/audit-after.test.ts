/**
 * `npm run audit -- --after P` reports what comes after P. A segment whose entries do not hash to
 * its header shows at its first entry (the altered one may be any of them): when the segment
 * reaches past P, the break is reported under `--after P` too, since the entries after P it holds
 * are no longer vouched for; a damaged segment that ends at or before P is not (counted apart).
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { archivedLog } from '../support/archive-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

describe('an audit --after P over an altered segment', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();
  /** `npm run audit`'s check of `ws` against its archive, from P when given (the documents not compared). */
  const auditAfter = (ws: string, store: DiskArchive, after?: string) =>
    auditWorkspace(suite.redis, ws, {
      archive: store,
      compareState: false,
      ...(after !== undefined ? { after } : {}),
    });

  it('reports the break of a segment reaching past P, not of one that ends before it', async () => {
    const ws = `audit-after-${Date.now().toString(36)}`;
    const { events, store, dir, names } = await archivedLog(
      suite.redis,
      ws,
      await tempDir('sb-audit-after-'),
      11,
    );
    const file = path.join(dir, names[2]!);
    const lines = (await readFile(file, 'utf8')).split('\n');
    expect(JSON.parse(lines[81]!)[0]).toBe(events[280]);
    // Event 280 (of segment 2, events 200..299) altered: a byte that changes no field, so the
    // replay finds nothing, only the hash does.
    lines[81] = lines[81]!.replace('",["', '", ["');
    await writeFile(file, lines.join('\n'));

    const audit = (after?: string) => auditAfter(ws, store, after);
    const whole = await audit();
    expect(whole.violations).toEqual([
      expect.objectContaining({ kind: 'archive', stream: 'events', position: events[200] }),
    ]);
    // P inside the segment, before the altered entry: the break is reported (where it shows).
    const inside = await audit(events[250]);
    expect(inside.ok).toBe(false);
    expect(inside.violations).toEqual(whole.violations);
    // P after the segment: its break is before P, counted apart.
    const past = await audit(events[300]);
    expect(past.violations).toEqual([]);
    expect(past.violationsBeforeAfter).toBe(1);
  }, 30_000);

  it('reports a segment whose header cannot be read when P lies inside it, or before the next one', async () => {
    const ws = `audit-after-empty-${Date.now().toString(36)}`;
    const { events, store, dir, names } = await archivedLog(
      suite.redis,
      ws,
      await tempDir('sb-audit-after-empty-'),
      12,
    );
    expect(names).toHaveLength(4);
    // Segment 2 (events 200..299) and the last, 3 (300..349), emptied: their headers, hence how far
    // they reach, cannot be read. Segment 2 reaches at most up to segment 3's first position (its
    // name); nothing bounds segment 3.
    await writeFile(path.join(dir, names[2]!), '');
    await writeFile(path.join(dir, names[3]!), '');
    const broken = (i: number) =>
      expect.objectContaining({ kind: 'archive', stream: 'events', position: events[i] });

    const audit = (after?: string) => auditAfter(ws, store, after);
    const whole = await audit();
    expect(whole.violations).toContainEqual(broken(200));
    expect(whole.violations).toContainEqual(broken(300));
    // P inside segment 2: the entries after P it held cannot be read; the audit names the break.
    const inside = await audit(events[250]);
    expect(inside.ok).toBe(false);
    expect(inside.violations).toContainEqual(broken(200));
    // P at segment 3's first entry: segment 2 is before it (counted apart), segment 3 is not.
    const next = await audit(events[300]);
    expect(next.violations).not.toContainEqual(broken(200));
    expect(next.violations).toContainEqual(broken(300));
    expect(next.violationsBeforeAfter).toBeGreaterThanOrEqual(1);
    // P past any entry segment 3 may have held: still reported, since how far it reached is unknown.
    const end = await audit(events[380]);
    expect(end.ok).toBe(false);
    expect(end.violations).toContainEqual(broken(300));
  }, 30_000);

  it('names a segment missing before one whose header cannot be read, not the unreadable one', async () => {
    const ws = `audit-missing-empty-${Date.now().toString(36)}`;
    const { store, dir, names } = await archivedLog(
      suite.redis,
      ws,
      await tempDir('sb-audit-missing-empty-'),
      13,
    );
    expect(names).toHaveLength(4);
    // Segment 1 removed, segment 2 emptied (there, but its header unreadable).
    await rm(path.join(dir, names[1]!));
    await writeFile(path.join(dir, names[2]!), '');
    const report = await auditWorkspace(suite.redis, ws, { archive: store, compareState: false });
    const archive = report.violations.filter((v) => v.kind === 'archive').map((v) => v.message);
    expect(
      archive.some((m) => /segment 1 of the events archive is missing/.test(m)),
      archive.join('\n'),
    ).toBe(true);
    expect(
      archive.some((m) => /segment 2 of the events archive is missing/.test(m)),
      archive.join('\n'),
    ).toBe(false);
  }, 30_000);
});
