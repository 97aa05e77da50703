/**
 * The live tail under a random schedule of stalls, trims and reconnections: one API instance
 * (ARCHIVE_DIR set) and several live feeds (from a position, from the end, joining and leaving
 * as it runs, some reading slowly), while each round appends a burst of events, may hold the
 * instance still (SIGSTOP), may close its Redis connections (CLIENT KILL) and may run the
 * archiver (segments of 100, the newest 50 kept). At the end every feed the server did not close
 * has had exactly the log's events (archive and stream, as GET /events gives them) after where it
 * started, once each, in order; a feed the server closed was closed with a documented code and
 * reason, and a feed reopened with after=<its last> gives the rest. (A tail that took the
 * archiver's trim for entries Redis lost on a reconnection sent its feeds back to the start of
 * what the stream held, and the trimmed events reached none of them: the default schedule fails
 * so on the tree before that was mended.)
 *
 * TAIL_CHAOS_SEED picks the schedule (a fixed one by default), TAIL_CHAOS_ROUNDS its length.
 */
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { DiskArchive } from '../../src/archive/store.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import { archiveLog, logFields } from '../support/archive-log.ts';
import { appendFields, openLiveFeed, stalledApiSuite } from '../support/stalled-tail.ts';
import { sleep, waitFor } from '../support/wait.ts';

const SEED = Number(process.env.TAIL_CHAOS_SEED ?? 20261207);
const ROUNDS = Number(process.env.TAIL_CHAOS_ROUNDS ?? 12);

interface Feed {
  readonly name: string;
  /** Where it starts: its after=, or (from the end) the position its first heartbeat names. */
  readonly start: string;
  readonly socket: WebSocket;
  readonly received: string[];
  /** Set when the socket closed: by the client (`byClient`) or the server. */
  close?: { code: number; reason: string; byClient: boolean };
  closingByClient: boolean;
}

/** A position's ms and seq, compared. */
function cmp(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/** A documented close of a live feed by the server (docs/API.md), and the after= it names if any. */
const DOCUMENTED: readonly [number, RegExp][] = [
  [1013, /^(too slow|too far behind); reconnect with after=(\d+-\d+)$/],
  [1011, /^replay failed; reconnect with after=(\d+-\d+)$/],
  [1011, /^history unreadable from the archive \(\/problems\/archive-unreadable\)/],
  [1001, /^server shutting down; reconnect with after=(\d+-\d+)$/],
];

describe('live feeds under random stalls, trims and reconnections of their instance', () => {
  const t = stalledApiSuite('tail-chaos', {
    // A small limit of unsent bytes: a slow reader may be closed with 1013 and reopen.
    LIVE_MAX_BUFFERED_BYTES: '65536',
    // And a replay behind the live events by more than this: closed with 1013 (too far behind).
    LIVE_MAX_HELD_EVENTS: '300',
    // The tail's fills are logged at info: counted at the end.
    LOG_LEVEL: 'info',
  });
  const { suite, ws, k } = t;

  it(`gives every feed the log after its start, once, in order (seed ${SEED}, ${ROUNDS} rounds)`, async () => {
    const { api, dir } = t;
    const redis = suite.redis;
    const rnd = seededRandom(SEED);
    const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
    const fields = await logFields(redis, `${ws}-source`, SEED % 1000);
    /** Positions appended so far, in order: checked against GET /events at the end. */
    const known: string[] = [];
    let appended = 0;
    const append = async (n: number) => {
      known.push(...(await appendFields(redis, k.events, fields, appended, appended + n)));
      appended += n;
    };
    const archive = () => archiveLog(redis, new DiskArchive(dir), ws);
    const killConnections = () => suite.admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');

    const feeds: Feed[] = [];
    let opened = 0;
    const openFeed = async (after: string | undefined, name = `feed-${++opened}`): Promise<Feed> => {
      const live = await openLiveFeed(api.url!, ws, after);
      const feed: Feed = {
        name,
        start: live.start,
        socket: live.socket,
        received: live.received,
        closingByClient: false,
      };
      void live.closed.then(({ code, reason }) => {
        feed.close = { code, reason, byClient: feed.closingByClient };
      });
      feeds.push(feed);
      return feed;
    };
    const slowly = (feed: Feed, ms: number) => {
      const raw = (feed.socket as unknown as { _socket?: Socket })._socket;
      raw?.pause();
      setTimeout(() => raw?.resume(), ms).unref();
    };

    await append(120);
    await openFeed(known[0]);
    await openFeed(undefined);
    await openFeed(known.at(-1));

    const schedule: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const open = feeds.filter((f) => !f.close && !f.closingByClient);
      // Feeds join (from a position the log holds, archived or not, or from the end) and leave.
      if (rnd() < 0.5) {
        const fromEnd = rnd() < 0.4;
        const at = fromEnd ? undefined : known[int(0, known.length - 1)];
        const slow = rnd() < 0.4;
        schedule.push(`open ${at ?? 'end'}${slow ? ' slow' : ''}`);
        const feed = await openFeed(at);
        // A reader that takes nothing for a while, its replay (if any) paced by it meanwhile.
        if (slow) slowly(feed, int(500, 2500));
      }
      if (open.length > 2 && rnd() < 0.25) {
        const leaving = open[int(0, open.length - 1)]!;
        schedule.push(`leave ${leaving.name}`);
        leaving.closingByClient = true;
        leaving.socket.close();
      }
      for (const f of open) if (rnd() < 0.2) slowly(f, int(200, 1500));

      const stall = rnd() < 0.6;
      const kill = rnd() < 0.5;
      const trim = rnd() < 0.6;
      const burst = int(20, 400);
      schedule.push(
        `round ${round}: burst ${burst}${stall ? ' stall' : ''}${kill ? ' kill' : ''}${trim ? ' trim' : ''}`,
      );
      if (stall) api.kill('SIGSTOP');
      try {
        if (kill && rnd() < 0.5) await killConnections();
        await append(burst);
        if (kill) await killConnections();
        if (trim) await archive();
        if (stall) await sleep(int(50, 800));
      } finally {
        if (stall) api.kill('SIGCONT');
      }
      await sleep(int(0, 400));
    }

    // The log as the API gives it (archive and stream).
    const log: string[] = [];
    for (let after = '0-0'; ; ) {
      const res = await fetch(`${api.url}/v1/workspaces/${ws}/events?after=${after}&limit=1000`);
      expect(res.status).toBe(200);
      const page = ((await res.json()) as { events: { position: string }[] }).events;
      log.push(...page.map((e) => e.position));
      if (page.length < 1000) break;
      after = page.at(-1)!.position;
    }
    const end = log.at(-1)!;
    expect(log, 'the log holds every event appended').toEqual(known);
    expect(log).toHaveLength(appended);
    const logAfter = (start: string) => log.filter((p) => cmp(p, start) > 0);

    await waitFor(
      'every open feed to reach the end of the log',
      () => feeds.every((f) => f.close || f.closingByClient || f.received.at(-1) === end),
      { timeoutMs: 20_000, everyMs: 50 },
    ).catch(() => {});

    const report = (f: Feed) =>
      `${f.name} from ${f.start} (seed ${SEED}; ${schedule.join('; ')}): received ${f.received.length}, close ${JSON.stringify(f.close)}`;
    for (const f of feeds) {
      if (f.closingByClient) {
        // A feed its client left: what it got is the log after its start, from its start on.
        expect(f.received, report(f)).toEqual(logAfter(f.start).slice(0, f.received.length));
        continue;
      }
      if (!f.close) {
        expect(f.received, report(f)).toEqual(logAfter(f.start));
        continue;
      }
      const doc = DOCUMENTED.find(([code, reason]) => code === f.close!.code && reason.test(f.close!.reason));
      expect(doc, `an undocumented close: ${report(f)}`).toBeDefined();
      expect(f.received, report(f)).toEqual(logAfter(f.start).slice(0, f.received.length));
      const named = doc![1].exec(f.close.reason)?.[2] ?? doc![1].exec(f.close.reason)?.[1];
      const last = f.received.at(-1) ?? f.start;
      if (named && /^\d+-\d+$/.test(named)) expect(named, report(f)).toBe(last);
      const again = await openFeed(last, `${f.name}-again`);
      await waitFor('the reopened feed to reach the end of the log', () => again.received.at(-1) === end, {
        timeoutMs: 15_000,
        everyMs: 50,
      }).catch(() => {});
      expect(again.close, report(again)).toBeUndefined();
      expect(again.received, report(again)).toEqual(logAfter(last));
    }
    for (const f of feeds) f.socket.close();
    // No trim was taken for entries Redis lost (realign), and every fill the archive gave.
    const text = api.logText();
    expect(text, `seed ${SEED}`).not.toMatch(/no longer holds the last event/);
    expect(text, `seed ${SEED}`).not.toMatch(/the archive does not give them/);
  }, 120_000);
});
