/**
 * The archiver's work and trouble on /metrics (docs/METRICS.md): a real `ROLES=archiver` process
 * with METRICS_PORT serves, per workspace and stream, the segments it wrote and the entries it
 * archived (counters, 0 from the lease on), and 1 for a stream it refuses (here an archive folder
 * it cannot write: a file where the folder must be) until the folder is mended. And the log line
 * after a segment says what the trim did: an archiver whose trim changed nothing (another one
 * archived further between its segment and its trim) does not say it trimmed the stream.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { Archiver } from '../../src/archive/archiver.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { parseRetention, type Retention } from '../../src/archive/retention.ts';
import type { LogStream } from '../../src/archive/segment.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { blockedArchive, startArchiver } from '../support/blocked-archive.ts';
import { killAllProcesses } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { waitFor } from '../support/wait.ts';

/** The value of one series of a /metrics text (undefined when absent). */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('the archiver on /metrics', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();
  afterAll(async () => {
    await killAllProcesses();
  });

  it('counts segments and entries per stream, and shows a refused stream until it is mended', async () => {
    const dir = await tempDir('sb-archiver-metrics-1-');
    const a = await blockedArchive(suite.redis, 'archiver-metrics-1', 3, dir, 'commands');
    const { ws, k } = a;
    const blocked = path.join(dir, ws, 'commands');
    const eventsBefore = await suite.redis.xlen(k.events);
    const commandsBefore = await suite.redis.xlen(k.commands);

    const p = await startArchiver(suite.server, a, {
      // Long enough not to lapse on a loaded machine (a lapse ends the archiver's run of the
      // workspace: its refused stream is then another process's to report).
      LEASE_TTL_MS: '3000',
      METRICS_PORT: '0',
    });
    const { value: url } = await waitFor('the /metrics url in the log', () => {
      const m = /"url":"(http:\/\/[^"]+)\/metrics"/.exec(p.logText());
      return m ? { value: m[1]! } : undefined;
    });
    const scrape = async () => {
      const r = await fetch(`${url}/metrics`).catch((err: Error) => {
        throw new Error(`GET ${url}/metrics: ${err.message}; the log:\n${p.logText()}`);
      });
      expect(r.status).toBe(200);
      return r.text();
    };
    const of = (stream: LogStream) => `workspace="${ws}",stream="${stream}"`;

    await waitFor(
      () => `the events archived, the commands refused; the log:\n${p.logText()}`,
      async () => (await suite.redis.xlen(k.events)) <= 10 && p.logText().includes('"level":50'),
      { timeoutMs: 10_000 },
    );
    const eventsArchived = eventsBefore - (await suite.redis.xlen(k.events));
    // The process counts right after its trim: a scrape may come between the two.
    let text = '';
    await waitFor(
      () => `${eventsArchived} events counted on /metrics; the last scrape:\n${text}`,
      async () => {
        text = await scrape();
        return sample(text, 'switchboard_archiver_entries_archived_total', of('events')) === eventsArchived;
      },
      { timeoutMs: 5_000 },
    );
    expect(
      sample(text, 'switchboard_archiver_entries_archived_total', of('events')),
      `the events archived, in:\n${text}`,
    ).toBe(eventsArchived);
    expect(sample(text, 'switchboard_archiver_segments_written_total', of('events'))).toBe(
      Math.ceil(eventsArchived / 100),
    );
    // The refused stream: nothing written, and said so.
    expect(sample(text, 'switchboard_archiver_entries_archived_total', of('commands'))).toBe(0);
    expect(sample(text, 'switchboard_archiver_segments_written_total', of('commands'))).toBe(0);
    expect(sample(text, 'switchboard_archiver_streams_refused', of('commands'))).toBe(1);
    expect(sample(text, 'switchboard_archiver_streams_refused', of('events'))).toBe(0);
    expect(await suite.redis.xlen(k.commands)).toBe(commandsBefore);

    // Mended: archived from the next pass on, and no longer refused.
    await rm(blocked);
    await waitFor(
      'the commands to be archived once the folder is mended',
      async () => (await suite.redis.xlen(k.commands)) <= 10,
      { timeoutMs: 10_000 },
    );
    const commandsArchived = commandsBefore - (await suite.redis.xlen(k.commands));
    await waitFor(
      () => `${commandsArchived} commands counted on /metrics; the last scrape:\n${text}`,
      async () => {
        text = await scrape();
        return (
          sample(text, 'switchboard_archiver_entries_archived_total', of('commands')) === commandsArchived
        );
      },
      { timeoutMs: 5_000 },
    );
    expect(sample(text, 'switchboard_archiver_streams_refused', of('commands'))).toBe(0);
    expect(sample(text, 'switchboard_archiver_entries_archived_total', of('commands'))).toBe(
      commandsArchived,
    );
    expect(sample(text, 'switchboard_archiver_segments_written_total', of('commands'))).toBe(
      Math.ceil(commandsArchived / 100),
    );
    expect(await p.stop()).toBe(0);
  }, 30_000);

  it('does not log a trim that changed nothing as one that trimmed the stream', async () => {
    const ws = `archiver-metrics-2-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await writeLog(suite.redis, ws, { events: 300, agents: 5, seed: 4 });
    const dir = await tempDir('sb-archiver-metrics-2-');
    /** The archive as A sees it: another archiver goes on right after A reads its segment back. */
    class Racing extends DiskArchive {
      afterRead: (() => Promise<unknown>) | undefined;
      override async read(workspace: string, stream: LogStream, name: string): Promise<Buffer> {
        const bytes = await super.read(workspace, stream, name);
        const meanwhile = this.afterRead;
        this.afterRead = undefined;
        await meanwhile?.();
        return bytes;
      }
    }
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const opts = { retention: parseRetention('10') as Retention, segmentEntries: 100, everyMs: 50 };
    const racing = new Racing(dir);
    const a = new Archiver(suite.redis, racing, pino({ level: 'debug' }, sink), opts);
    const b = new Archiver(suite.redis, new DiskArchive(dir), pino({ level: 'silent' }), opts);
    // A writes segment 0; before its trim, B (its lease lapsed unnoticed) takes the archive from
    // there: trims for segment 0, writes segment 1 and trims for it. A's trim then changes nothing.
    racing.afterRead = () => b.step(ws, 'events');
    expect(await a.step(ws, 'events')).toBe(100);
    expect(parseAnchor(await suite.redis.hget(k.archive, 'events'))?.index).toBe(1);
    await new Promise((r) => setImmediate(r));
    const about = lines.filter((l) => l.segment !== undefined && l.workspace === ws);
    expect(about.length, JSON.stringify(lines)).toBe(1);
    const [line] = about;
    expect(String(line!.msg), JSON.stringify(line)).not.toMatch(/trimmed the stream/);
    expect(line!.level, 'a trim that changed nothing is said at debug').toBe(20);
    expect(line!.trimmed).toBe(false);
  }, 30_000);
});
