/**
 * An archiver that stops between reading the archive's mark and reading the entries to archive (a
 * process paused, SIGSTOP, or one whose lease lapsed mid-step) while another archiver writes the
 * next segment and trims the stream: when it goes on, it must not write a second segment of the
 * same index (from what is left of the trimmed stream, under another name, so the store's
 * no-replace rule does not stop it). The archive stays one chain and the log reads whole. And one
 * that goes on after another archived past the tip it kept lists the archive again, rather than
 * refuse it as another workspace's; so does one that lists the archive just before another
 * archives past it (the mark then read is past the tip just listed).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { readLogAfter } from '../../src/archive/log-reader.ts';
import { parseRetention, type Retention } from '../../src/archive/retention.ts';
import { type LogStream, parseSegmentName } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';

const log = pino({ level: 'silent' });

/**
 * `redis` whose next TIME waits for `gate`: the archiver's step reads it after the mark, before the
 * entries (in a pipeline behind a command on the stream, so it goes to the workspace's node).
 */
function pausedAtTime(redis: RedisClient, gate: Promise<void>, reached: () => void): RedisClient {
  let paused = false;
  const pause = async () => {
    if (paused) return;
    paused = true;
    reached();
    await gate;
  };
  return new Proxy(redis, {
    get(target, prop) {
      if (prop === 'time')
        return async () => {
          await pause();
          return target.time();
        };
      if (prop === 'pipeline')
        return () => {
          const pipeline = target.pipeline();
          let timed = false;
          const proxied: typeof pipeline = new Proxy(pipeline, {
            get(p, name) {
              const v = Reflect.get(p, name, p) as unknown;
              if (typeof v !== 'function') return v;
              const f = (v as (...a: unknown[]) => unknown).bind(p);
              if (name === 'exec')
                return async (...a: unknown[]) => {
                  if (timed) await pause();
                  return f(...a);
                };
              return (...a: unknown[]) => {
                if (name === 'time' || (name === 'call' && String(a[0]).toUpperCase() === 'TIME'))
                  timed = true;
                const r = f(...a);
                // Chained calls go on through this proxy.
                return r === p ? proxied : r;
              };
            },
          });
          return proxied;
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('an archiver that goes on after another archived past it', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();

  it('writes no second segment of the same index: one chain, every entry once', async () => {
    const ws = `stale-archiver-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 450, agents: 10, seed: 7 });
    const commands = (await suite.redis.xrange(k.commands, '-', '+')) as StreamEntry[];
    expect(commands.length).toBeGreaterThan(300);
    const dir = await tempDir('sb-stale-archiver-');
    const store = new DiskArchive(dir);
    const opts = { retention: parseRetention('10') as Retention, segmentEntries: 100, everyMs: 50 };

    const a = new Archiver(suite.redis, store, log, opts);
    expect(await a.step(ws, 'commands')).toBe(100);

    // B reads the archive's end (segment 0) and the mark, then stops.
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let reached!: () => void;
    const atPause = new Promise<void>((r) => {
      reached = r;
    });
    const b = new Archiver(pausedAtTime(suite.redis, gate, reached), store, log, opts);
    const late = b.step(ws, 'commands').then(
      (n) => n,
      (err: Error) => err,
    );
    await atPause;
    // Meanwhile A archives segment 1 and trims the stream past it.
    expect(await a.step(ws, 'commands')).toBe(100);
    expect(parseAnchor(await suite.redis.hget(k.archive, 'commands'))).toMatchObject({ index: 1 });
    release();
    expect(await late, 'the late step archives nothing').toBe(0);

    const indexes = (await store.list(ws, 'commands')).map((n) => parseSegmentName(n)?.index);
    expect(indexes, 'one segment per index').toEqual([0, 1]);

    // A finishes the work: the log reads every command once, in order, and the chain is whole.
    await a.drain(ws);
    const read: StreamEntry[] = [];
    for await (const page of readLogAfter(suite.redis, store, ws, 'commands', '0-0')) read.push(...page);
    expect(read).toEqual(commands);
    const audit = await auditWorkspace(suite.redis, ws, { archive: store });
    expect(audit.violations).toEqual([]);
  }, 30_000);

  it('takes a mark past what it knew of the archive for news, not for a foreign archive', async () => {
    const ws = `stale-tip-${Date.now().toString(36)}`;
    await writeLog(suite.redis, ws, { events: 450, agents: 10, seed: 8 });
    const dir = await tempDir('sb-stale-archiver-');
    const store = new DiskArchive(dir);
    const opts = { retention: parseRetention('10') as Retention, segmentEntries: 100, everyMs: 50 };
    const a = new Archiver(suite.redis, store, log, opts);
    const b = new Archiver(suite.redis, store, log, opts);
    // B archives segment 0 and knows the archive ends there; A (the lease moved) goes on past it.
    expect(await b.step(ws, 'commands')).toBe(100);
    expect(await a.step(ws, 'commands')).toBe(100);
    // B, going on before it heard its lease was lost, reads the archive again: no refusal.
    expect(await b.step(ws, 'commands')).toBe(100);
    const indexes = (await store.list(ws, 'commands')).map((n) => parseSegmentName(n)?.index);
    expect(indexes).toEqual([0, 1, 2]);
    const audit = await auditWorkspace(suite.redis, ws, { archive: store });
    expect(audit.violations).toEqual([]);
  }, 30_000);

  it('takes a mark past the tip it has just listed for news, not for a foreign archive', async () => {
    const ws = `stale-list-${Date.now().toString(36)}`;
    await writeLog(suite.redis, ws, { events: 450, agents: 10, seed: 9 });
    const dir = await tempDir('sb-stale-archiver-');
    /** The archive as A sees it: another archiver goes on right after A's next listing. */
    class Racing extends DiskArchive {
      afterList: (() => Promise<unknown>) | undefined;
      override async list(workspace: string, stream: LogStream): Promise<string[]> {
        const names = await super.list(workspace, stream);
        const meanwhile = this.afterList;
        this.afterList = undefined;
        await meanwhile?.();
        return names;
      }
    }
    const racing = new Racing(dir);
    const opts = { retention: parseRetention('10') as Retention, segmentEntries: 100, everyMs: 50 };
    const a = new Archiver(suite.redis, racing, log, opts);
    const b = new Archiver(suite.redis, new DiskArchive(dir), log, opts);
    expect(await b.step(ws, 'commands')).toBe(100);
    // A (the lease just taken) lists the archive: segment 0; B, whose lease lapsed unnoticed,
    // archives segment 1 and trims before A reads the mark.
    racing.afterList = () => b.step(ws, 'commands');
    const moved = await a.step(ws, 'commands').catch((err: Error) => err.message);
    expect(moved, 'no refusal of the archive as a foreign one').toBe(100);
    const indexes = (await racing.list(ws, 'commands')).map((n) => parseSegmentName(n)?.index);
    expect(indexes).toEqual([0, 1, 2]);
    const audit = await auditWorkspace(suite.redis, ws, { archive: racing });
    expect(audit.violations).toEqual([]);
  }, 30_000);
});
