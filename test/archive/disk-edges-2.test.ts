/**
 * A real `ROLES=archiver` process whose ARCHIVE_DIR is a small file system of its own (a tmpfs the
 * test mounts): filled up as it archives, then made read-only. The process keeps running, says
 * what is wrong and what to do in one error line, shows the stream refused on /metrics, trims
 * nothing it has not written whole (every entry gone from Redis is in a segment that reads back
 * whole), and archives the rest by itself once the file system has room or is writable again,
 * with the audit over archive and streams clean.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { decodeSegment, type LogStream } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { waitFor } from '../support/wait.ts';

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('an archive on a small file system of its own', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();
  const mounts: string[] = [];
  afterAll(async () => {
    await killAllProcesses();
    for (const m of mounts.reverse()) {
      try {
        execFileSync('umount', ['-l', m]);
      } catch {}
    }
  });

  async function mounted(prefix: string, size: string): Promise<string> {
    const mnt = path.join(await tempDir(prefix), 'archive');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mnt]);
    mounts.push(mnt);
    return mnt;
  }

  function archiver(ws: string, dir: string): Promise<SwitchboardProcess> {
    return startProcess({
      roles: 'archiver',
      redis: suite.server,
      env: {
        WORKSPACES: ws,
        DISCOVER_WORKSPACES: 'false',
        ARCHIVE_DIR: dir,
        LOG_RETENTION: '10',
        ARCHIVE_SEGMENT_ENTRIES: '100',
        ARCHIVE_EVERY_MS: '50',
        SNAPSHOT_EVERY_EVENTS: '200',
        LEASE_TTL_MS: '3000',
        METRICS_PORT: '0',
      },
    });
  }

  async function metrics(p: SwitchboardProcess): Promise<string> {
    const { value: url } = await waitFor('the /metrics url in the log', () => {
      const m = /"url":"(http:\/\/[^"]+)\/metrics"/.exec(p.logText());
      return m ? { value: m[1]! } : undefined;
    });
    return (await fetch(`${url}/metrics`)).text();
  }

  /** Every entry trimmed from Redis is in a segment on disk that reads back whole, chained. */
  async function nothingTrimmedUnwritten(ws: string, dir: string): Promise<void> {
    const k = workspaceKeys(ws);
    for (const stream of ['commands', 'events'] as LogStream[]) {
      const mark = parseAnchor(await suite.redis.hget(k.archive, stream));
      const folder = path.join(dir, ws, stream);
      const names = (await readdir(folder).catch(() => [])).filter((n) => n.endsWith('.jsonl')).sort();
      let total = 0;
      for (const n of names) {
        const d = decodeSegment(await readFile(path.join(folder, n)));
        expect(d.problems, `${stream}/${n}`).toEqual([]);
        total += d.entries.length;
      }
      expect(total, `${stream}: the entries on disk cover the mark`).toBeGreaterThanOrEqual(mark?.total ?? 0);
    }
  }

  it('a full file system: refused with what to do, nothing lost, archived once there is room', async () => {
    const ws = `disk-edges-2-full-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 2000, agents: 5, seed: 21 });
    const dir = await mounted('sb-disk-edges-2-', '256k');
    const before = { commands: await suite.redis.xlen(k.commands), events: await suite.redis.xlen(k.events) };

    const p = await archiver(ws, dir);
    await waitFor(
      () => `an error for the full file system; the log:\n${p.logText()}`,
      () => /"level":50[^\n]*ENOSPC/.test(p.logText()),
      { timeoutMs: 15_000 },
    );
    const error = p.logs.find((l) => /"level":50/.test(l) && l.includes('ENOSPC'))!;
    expect(error).toMatch(/with room on its file system/);
    const text = await metrics(p);
    const refused = ['commands', 'events'].map((s) =>
      sample(text, 'switchboard_archiver_streams_refused', `workspace="${ws}",stream="${s}"`),
    );
    expect(refused, text).toContain(1);
    await nothingTrimmedUnwritten(ws, dir);
    expect(p.child.exitCode).toBeNull();

    execFileSync('mount', ['-o', 'remount,size=16m', dir]);
    await waitFor(
      () => `both streams archived once there is room; the log:\n${p.logText()}`,
      async () => (await suite.redis.xlen(k.commands)) <= 10 && (await suite.redis.xlen(k.events)) <= 10,
      { timeoutMs: 20_000 },
    );
    await waitFor(
      'no stream refused on /metrics',
      async () => !/switchboard_archiver_streams_refused\{[^}]*\} 1/.test(await metrics(p)),
      { timeoutMs: 5_000 },
    );
    await waitFor(
      'the snapshots due once there is room',
      async () => (await readdir(path.join(dir, ws, 'snapshots')).catch(() => [])).length > 0,
      { timeoutMs: 10_000 },
    );
    expect(await p.stop()).toBe(0);
    // Said once per stream, not on every pass (ARCHIVE_EVERY_MS) while the file system was full.
    const errors = p.logs
      .filter((l) => /"level":50/.test(l))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'))).msg);
    expect(errors.length, errors.join('\n')).toBeGreaterThan(0);
    expect(new Set(errors).size, errors.join('\n')).toBe(errors.length);
    expect(p.logs.some((l) => /"level":60/.test(l))).toBe(false);
    await nothingTrimmedUnwritten(ws, dir);
    expect(before.events).toBeGreaterThan(1000);
    const report = await auditWorkspace(suite.redis, ws, {
      archive: new DiskArchive(dir),
      compareState: false,
    });
    expect(report.violations).toEqual([]);
  }, 60_000);

  it('a file system made read-only while it runs: refused with what to do, archived once writable', async () => {
    const ws = `disk-edges-2-ro-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const dir = await mounted('sb-disk-edges-2-', '16m');
    const p = await archiver(ws, dir);
    execFileSync('mount', ['-o', 'remount,ro', dir]);
    await writeLog(suite.redis, ws, { events: 600, agents: 5, seed: 22 });
    await waitFor(
      () => `an error for the read-only file system; the log:\n${p.logText()}`,
      () => /"level":50[^\n]*EROFS/.test(p.logText()),
      { timeoutMs: 15_000 },
    );
    const error = p.logs.find((l) => /"level":50/.test(l) && l.includes('EROFS'))!;
    expect(error).toMatch(/a directory this user can write/);
    expect(await suite.redis.xlen(k.events)).toBeGreaterThan(500);
    expect(p.child.exitCode).toBeNull();

    execFileSync('mount', ['-o', 'remount,rw', dir]);
    await waitFor(
      () => `both streams archived once writable; the log:\n${p.logText()}`,
      async () => (await suite.redis.xlen(k.commands)) <= 10 && (await suite.redis.xlen(k.events)) <= 10,
      { timeoutMs: 20_000 },
    );
    expect(await p.stop()).toBe(0);
    await nothingTrimmedUnwritten(ws, dir);
    const report = await auditWorkspace(suite.redis, ws, {
      archive: new DiskArchive(dir),
      compareState: false,
    });
    expect(report.violations).toEqual([]);
    expect(await readdir(path.join(dir, ws, 'snapshots'))).not.toEqual([]);
  }, 60_000);
});
