import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import * as t from 'io-ts';
import type { WebSocket } from 'ws';
import { strict } from '../../domain/strict.ts';
import { AfterPosition, comparePositions, Id, positionPredecessor } from '../../domain/values.ts';
import { CHECK_REDIS, FOREIGN_EVENT, redisAdvice } from '../redis/advice.ts';
import { LiveEvent, lastEventPosition, streamHistory } from '../redis/event-log.ts';
import type { WorkspaceTail } from '../redis/tail.ts';
import { frameWriter, ownSelection, type Selection, sharedSelection, textWriter } from './frames.ts';
import { KeyWatch } from './key-watch.ts';
import { workspaceOf } from './params.ts';
import {
  decodeOr400,
  HistoryUnreadableError,
  ProblemError,
  positionAhead,
  sendProblem,
  sendUpgradeRequired,
} from './problem.ts';
import { TypeList } from './queries.ts';

// `ticket`: a one-time ticket from POST /ws-tickets, read by the authentication before the upgrade.
// `heartbeat=0`: no heartbeat messages on this feed (for consumers that take every message for an event).
const LiveQuery = strict(
  {},
  {
    after: AfterPosition,
    type: TypeList,
    agent: Id,
    ticket: t.string,
    heartbeat: t.keyof({ '0': null, '1': null }, '0 or 1'),
  },
  'LiveQuery',
);
type LiveQuery = t.TypeOf<typeof LiveQuery>;
/** How often a live socket is pinged when the config gives no LIVE_PING_MS. */
const PING_EVERY_MS = 15_000;
const KEY_CHECK_EVERY_MS = 500;
/** How often a replay waiting for its reader looks at the socket's unsent bytes again. */
const DRAIN_POLL_MS = 10;

/**
 * Each live socket's resume position (the last event it is done with), so a close the route does
 * not make itself (the server stopping) can still tell the client where to resume.
 */
export const resumeAfter = new WeakMap<object, () => string>();

/** The most bytes of a WebSocket close reason (RFC 6455: 125 bytes of payload, 2 of them the code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * The close reason of a replay that met a hole of the archive: the problem type, and, when the
 * archive tells where the history reads again, `resumeAfter=<position>`, the `after=` that reads on
 * from there (the 503's `resumeAfter`), if it is past `last` (the position the feed is done with).
 * Not written `after=`: a close's `after=` is the last event the feed is done with, which a client
 * resumes from (src/client/live.ts) and which loses nothing; this one skips the hole. The longest
 * position (41 characters) keeps it within MAX_CLOSE_REASON_BYTES (121 bytes).
 */
export function archiveUnreadableReason(resumeAt: string | null, last: string): string {
  const base = 'history unreadable from the archive (/problems/archive-unreadable)';
  if (resumeAt === null) return base;
  const after = positionPredecessor(resumeAt);
  if (comparePositions(after, last) <= 0) return base;
  const reason = `${base}; resumeAfter=${after}`;
  return Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES ? reason : base;
}

/**
 * What to do about a history read that failed: a file the archive could not read (the error
 * names its path) is the archive directory's, anything else Redis's.
 */
function failureAdvice(err: unknown): string {
  if (typeof (err as { syscall?: unknown })?.syscall === 'string')
    return 'The archive could not be read (err names the path): check that ARCHIVE_DIR is mounted and readable by this process.';
  const advice = redisAdvice(err);
  return advice === CHECK_REDIS ? `Most often Redis does not answer. ${advice}` : advice;
}

/**
 * `GET /events/live`: with `after`, the history since that position is replayed first, then
 * live events follow. Live events that arrive during the replay are held and sent after it;
 * every send is guarded by the last position sent, so the hand-over has no gap and no duplicate.
 */
export async function liveRoutes(app: FastifyInstance): Promise<void> {
  const { redis, tails, watch } = app.deps;
  const history = app.deps.history ?? streamHistory(redis);
  const {
    liveMaxBufferedBytes: maxBufferedBytes,
    liveMaxHeldEvents: maxHeldEvents,
    liveHeartbeatMs,
    livePingMs = PING_EVERY_MS,
  } = app.deps.config;
  /** What the check before the upgrade decoded and opened, for the handler that runs after it. */
  const accepted = new WeakMap<
    object,
    { ws: string; q: LiveQuery; tail: WorkspaceTail; streamEnd: string | undefined }
  >();
  // One check a key, twice a second, for all the feeds it holds open.
  const keys = app.apiKeyActive
    ? new KeyWatch((keyId) => app.apiKeyActive!(keyId), KEY_CHECK_EVERY_MS)
    : undefined;
  // Set as the server begins to stop, when the open feeds are closed with 1001: an upgrade still
  // being checked then opens after that, and is closed the same way at once.
  let stopping = false;
  app.addHook('preClose', (done) => {
    stopping = true;
    done();
  });

  app.get(
    '/events/live',
    {
      websocket: true,
      // Read by the server's upgrade check: only routes marked so accept a WebSocket.
      config: { websocket: true },
      // Reject bad queries before the upgrade, as a plain problem+json answer.
      preValidation: async (req, reply) => {
        try {
          const ws = workspaceOf(req.params);
          const decoded = decodeOr400(LiveQuery, req.query, 'query');
          // An agent key's feed carries its own agent's events only, whatever the query says.
          const own = req.principal?.role === 'agent' ? req.principal.agentId : undefined;
          const q = own !== undefined ? { ...decoded, agent: own } : decoded;
          // The tail is ready before the upgrade, so the handler subscribes at once: a client that
          // sees the socket open misses nothing appended after that.
          if (req.ws) {
            const tail = await tails.get(ws);
            // Without `after`, the feed starts after the last event in the stream now. The tail can
            // be behind it: it reads on a connection of its own (a new one may still be connecting),
            // and Redis 7.0 answers a blocked XREAD with one stream, so a command's outcome can be
            // read, and answered, before its events. Those events must not reach a later feed.
            // Not read for after=0-0, the log's start, which no end is before; unless this instance
            // has seen Redis fail (GET /health's 503): then a Redis that still does not answer is a
            // 503 redis-unavailable before the upgrade, not a feed that opens and is closed with
            // 1011 when its replay cannot read.
            const end =
              q.after === '0-0' && watch.pausedReason === undefined
                ? undefined
                : await lastEventPosition(redis, ws);
            // An `after` past the last event names no event yet: the feed would wait for nothing
            // (events are answered or sent only once appended), so it is refused before the upgrade.
            if (q.after !== undefined && comparePositions(q.after, end ?? '0-0') > 0)
              return sendProblem(
                reply,
                positionAhead(
                  `after=${q.after} is after the last event of workspace "${ws}" (${end ?? 'none yet'}): resume from the last position your feed handed on.`,
                  end ?? null,
                ),
              );
            const streamEnd = q.after === undefined ? (end ?? '0-0') : undefined;
            accepted.set(req, { ws, q, tail, streamEnd });
          }
        } catch (err) {
          if (err instanceof ProblemError) return sendProblem(reply, err.problem);
          throw err;
        }
        if (!req.ws)
          return sendUpgradeRequired(reply, 'Open this route as a WebSocket (Upgrade: websocket).');
      },
    },
    async (socket: WebSocket, req) => {
      const { ws, q, tail, streamEnd } = accepted.get(req)!; // every upgrade passed the check above
      accepted.delete(req);
      const log = req.log.child({ workspace: ws, subscriber: req.id });
      // The last position this subscriber is done with: sent, or passed over by its filters. It is
      // the only position a close may advertise: resuming after it loses nothing and repeats nothing.
      // Without `after`: the later of the stream's end at the upgrade and what the tail has read
      // by now (what it read before this subscribes is never handed to it).
      let last =
        q.after ?? (comparePositions(streamEnd!, tail.eventPosition) > 0 ? streamEnd! : tail.eventPosition);
      resumeAfter.set(socket, () => last);
      if (stopping) {
        socket.close(1001, `server shutting down; reconnect with after=${last}`);
        return;
      }
      let replaying = q.after !== undefined;
      /** Live events the filters keep, held during the replay; `heldThrough`: the last one passed over or held. */
      const held: LiveEvent[] = [];
      let heldThrough: string | undefined;
      let alive = true;
      /** Whether the tail's batches are known to come after `last` (see sendAll). */
      let inOrder = false;
      const writeFrames = frameWriter(socket);
      /** When this subscriber was last sent anything: a heartbeat goes after `every` ms of silence. */
      let sentAt = Date.now();
      const write = (s: Selection): void => {
        writeFrames(s);
        sentAt = Date.now();
      };

      // Subscribers with the same filters share what is made of each batch (see frames.ts).
      const filterKey = `${q.type ? [...q.type].sort().join(',') : '*'}|${q.agent ?? ''}`;
      const wanted = (e: LiveEvent): boolean => {
        if (q.type && (!e.type || !q.type.has(e.type))) return false;
        if (q.agent) {
          if (!e.decodable) return false;
          const env = e.envelope;
          const d = env.data as { agentId?: unknown; fromAgentId?: unknown; id?: unknown };
          const about =
            d.agentId ??
            d.fromAgentId ??
            (env.type.startsWith('Agent') && env.type !== 'AgentStateChanged' ? d.id : undefined);
          if (about !== q.agent) return false;
        }
        return true;
      };

      const tooSlow = (why: string, extra: object): void => {
        unsubscribe();
        held.length = 0;
        log.warn({ ...extra, resumeAfter: last }, `subscriber ${why}; closing`);
        socket.close(1013, `${why}; reconnect with after=${last}`);
      };

      /**
       * Writes what the filters select of `events` (all after `last`), unless the socket is too full.
       * The replay's own pages are not held to the limit: the replay waits for the socket to drain
       * before reading each page (see below), so a reader slower than Redis paces it.
       */
      const deliver = (events: readonly LiveEvent[], s: Selection): void => {
        if (s.frames !== null) {
          if (!replaying && socket.bufferedAmount > maxBufferedBytes) {
            // The events passed over before the first one it wants are done with.
            if (s.first > 0) last = events[s.first - 1]!.position;
            tooSlow('too slow', { position: events[s.first]!.position, buffered: socket.bufferedAmount });
            return;
          }
          write(s);
        }
        last = events[events.length - 1]!.position;
      };

      /**
       * Events in stream order, from the tail (`shared`: the same batch every subscriber is handed)
       * or from this subscriber's replay: those after `last` are delivered.
       */
      const sendAll = (events: readonly LiveEvent[], shared: boolean): void => {
        if (events.length === 0 || socket.readyState !== socket.OPEN) return;
        // Once a batch of the tail's came after `last`, every later one does (the tail reads in order).
        if (shared && inOrder) {
          deliver(events, sharedSelection(events, filterKey, wanted));
          return;
        }
        // Only the hand-over from the replay brings events at or before `last` (the replay sent them).
        if (comparePositions(events[0]!.position, last) <= 0) {
          const from = events.findIndex((e) => comparePositions(e.position, last) > 0);
          if (from < 0) return;
          const rest = events.slice(from);
          deliver(rest, ownSelection(rest, wanted));
          return;
        }
        inOrder = shared;
        deliver(events, shared ? sharedSelection(events, filterKey, wanted) : ownSelection(events, wanted));
      };

      // Redis came back with less: the events appended since the loss lie below the lost ones this
      // subscriber may be done with; it goes on after what the tail reads on after. A replaying
      // feed's replay reads on from there itself (a page read across the resume is read again),
      // and the live events it held past that position (lost ones) are dropped; the tail's events
      // from there on are held for the hand-over as before.
      let resumes = 0;
      const unresume = tail.onResume((position, lost) => {
        // A position the stream still holds (an event appended since the loss that a replay read,
        // or a feed opened after one) is not moved back: what follows it is read on as ever.
        const gone = comparePositions(last, lost.end) > 0 || last === lost.read;
        if (gone && comparePositions(last, position) > 0) {
          last = position;
          inOrder = false;
        }
        if (!replaying) return;
        resumes++;
        const kept = held.filter((e) => comparePositions(e.position, position) <= 0);
        held.length = 0;
        held.push(...kept);
        if (heldThrough !== undefined && comparePositions(heldThrough, position) > 0) heldThrough = position;
      });
      const unsubscribeBatches = tail.subscribeBatches((batch) => {
        if (!replaying) {
          sendAll(batch, true);
          return;
        }
        // Only what the filters keep is held, and counted: a narrow feed is not closed for events
        // it would never send. (The selection is the one its filter's live subscribers share.)
        const keep = sharedSelection(batch, filterKey, wanted).events;
        if (held.length + keep.length <= maxHeldEvents) {
          for (const e of keep) held.push(e);
          if (batch.length > 0) heldThrough = batch[batch.length - 1]!.position;
        }
        // The replay cannot keep up with the live feed: holding more would grow without bound.
        else tooSlow('too far behind', { held: held.length });
      });
      /**
       * Closes the feed with 1011 after its history failed to come (`what`: the replay, or the
       * events trimmed past the tail): a history the archive cannot give whole is named as such
       * (reconnecting would meet the same damage; the reason names the after= that reads on past
       * the hole when the archive tells it), any other failure with where to resume.
       */
      const closeFailed = (err: unknown, what: string): void => {
        if (err instanceof HistoryUnreadableError) {
          log.error(
            {
              err: err.message,
              resumeAfter: last,
              lostAfter: err.hole.lostAfter,
              resumeAt: err.hole.resumeAt,
            },
            `${what === 'replay' ? 'history' : what} unreadable from the archive; closing`,
          );
          socket.close(1011, archiveUnreadableReason(err.hole.resumeAt, last));
          return;
        }
        // The close tells the client where to resume; the line, what the operator looks at.
        log.warn(
          { err: (err as Error).message, resumeAfter: last },
          `${what} failed; closed with 1011, its client told to reconnect with after=${last}. See err. ${failureAdvice(err)}`,
        );
        socket.close(1011, `replay failed; reconnect with after=${last}`);
      };
      // Events the archiver trimmed past the tail that the archive does not give: the tail goes on
      // after them, so the feed is closed with where to resume, as a replay that meets them is.
      const unfilled = tail.onFillFailed((err, before) => {
        // A feed already at or past the events that did not come (one that joined since) misses none.
        if (socket.readyState !== socket.OPEN || comparePositions(last, before) >= 0) return;
        unsubscribe();
        held.length = 0;
        closeFailed(err, 'the fill of events trimmed past the event tail');
      });
      const unsubscribe = (): void => {
        unsubscribeBatches();
        unresume();
        unfilled();
      };

      // The heartbeat: a message of its own (no `type`, no `position`: not an event) on a feed that
      // sent nothing for `every` ms, naming the position to resume after. Protocol pings do not
      // reach every client (a browser never sees them; a proxy may answer them itself), so a
      // client that hears nothing for two intervals knows the path is dead (docs/API.md).
      const every = q.heartbeat === '0' ? undefined : liveHeartbeatMs;
      const writeText = textWriter(socket);
      let beat: ReturnType<typeof setTimeout> | undefined;
      const sendHeartbeat = (everyMs: number): void => {
        writeText(JSON.stringify({ heartbeat: { after: last, at: new Date().toISOString(), everyMs } }));
        sentAt = Date.now();
      };
      // None while Redis does not answer this instance (its check paused it, or the workspace's tail
      // cannot read the log): a heartbeat would tell the client the feed is alive while no event can
      // reach it, and keep it here. Without one its watch drops the socket within two intervals and
      // reopens with `after=`, through a load balancer on an instance that reads (HAProxy keeps a
      // tunnel open on a server its check marked down). Then checked every quarter second, to
      // resume at once.
      const heartbeat = (): void => {
        beat = undefined;
        if (every === undefined || socket.readyState !== socket.OPEN) return;
        if (Date.now() - sentAt >= every && tail.reading && watch.pausedReason === undefined)
          sendHeartbeat(every);
        const wait = every - (Date.now() - sentAt);
        beat = setTimeout(heartbeat, wait > 0 ? wait : Math.min(every, 250));
      };
      if (every !== undefined) {
        // One as the feed opens: where it starts (a client that gave no `after` has a position to
        // resume from before any event comes) and the interval its watch should run on.
        sendHeartbeat(every);
        beat = setTimeout(heartbeat, every);
      }

      // A ping waits behind every byte unsent before it: a client reading a large backlog (a long
      // replay over a slow link) answers it late, though it is alive and reading. Bytes waiting on
      // the socket mean the system's buffer for it is full, so the system takes more only as the
      // client acknowledges data. A client that answered no ping is therefore still alive when
      // bytes waited at the last ping and some were taken since; and for one more interval when
      // they wait now and did not then (the buffer filled meanwhile), or when it had just taken all
      // that waited (the last of it still in the system's buffer, ahead of the ping). One that
      // answers nothing and takes nothing is dropped as before, at most one interval later.
      const raw = (socket as unknown as { _socket?: Socket })._socket;
      const internals = raw as unknown as
        | { _bytesDispatched?: number; _handle?: { writeQueueSize?: number } | null }
        | undefined;
      /**
       * Bytes the system has taken for the client: those handed to libuv less those it still queues
       * (as they go out, not once a whole write is done); else those of the writes completed.
       */
      const taken = (): number => {
        if (!raw) return 0;
        const queued = internals?._handle?.writeQueueSize;
        const dispatched = internals?._bytesDispatched;
        if (typeof queued === 'number' && typeof dispatched === 'number') return dispatched - queued;
        return (raw.bytesWritten ?? 0) - raw.writableLength;
      };
      /** `taken()` at the last ping if bytes were waiting then; undefined if none were. */
      let takenAtPing: number | undefined;
      /** Whether, at the last ping, the client had just taken what waited (it may still be in the system's buffer). */
      let drained = false;
      const ping = setInterval(() => {
        const waiting = raw !== undefined && raw.writableLength > 0;
        const progressed = takenAtPing !== undefined && taken() > takenAtPing;
        const reading = takenAtPing === undefined ? waiting || drained : progressed;
        if (!alive && !reading) {
          socket.terminate();
          return;
        }
        alive = false;
        drained = progressed && !waiting;
        takenAtPing = waiting ? taken() : undefined;
        socket.ping();
      }, livePingMs);
      socket.on('pong', () => {
        alive = true;
      });
      // The key is checked at the upgrade, and then twice a second: a socket of a key revoked
      // meanwhile is closed (1008) within about a second, as every request of it is refused.
      const principal = req.principal;
      const unwatch = principal
        ? keys?.watch(principal.keyId, () => {
            if (socket.readyState !== socket.OPEN) return;
            log.info({ keyId: principal.keyId }, 'API key revoked; closing its live feed');
            socket.close(1008, 'API key revoked');
          })
        : undefined;
      socket.on('close', () => {
        clearInterval(ping);
        clearTimeout(beat);
        unwatch?.();
        unsubscribe();
        log.debug('subscriber left');
      });
      socket.on('error', () => socket.terminate());
      socket.on('message', () => {
        // Subscribers only listen; anything they send is ignored.
      });

      if (replaying) {
        // An entry of the history that is no event is skipped (see WorkspaceTail), once per replay.
        const malformed = (position: string, why: Error): void =>
          log.warn(
            { position, err: why.message },
            `event stream entry is not an event; skipped. ${FOREIGN_EVENT}`,
          );
        // Paced by the reader: a page is read once what was sent is half gone. A reader that stops
        // for good is ended by the ping below; live events held meanwhile are capped.
        const sentHalf = async (): Promise<void> => {
          while (socket.bufferedAmount > maxBufferedBytes / 2 && socket.readyState === socket.OPEN)
            await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
        };
        try {
          for (;;) {
            await sentHalf();
            if (socket.readyState !== socket.OPEN) break;
            const readAt = resumes;
            const page = await history(ws, last, 500);
            // Read before a resume: it may hold lost events; read again from `last` (the resume's
            // position when the replay was past it).
            if (readAt !== resumes) continue;
            sendAll(
              page.map((e) => new LiveEvent(e, malformed)),
              false,
            );
            if (page.length < 500 || socket.readyState !== socket.OPEN) break;
          }
          // The last page is the replay's too: live events are held to the limit once the reader
          // has taken it (a page of large events alone can pass the limit).
          await sentHalf();
        } catch (err) {
          closeFailed(err, 'replay');
          return;
        }
        replaying = false;
        sendAll(held.splice(0), false);
        // The held batches' events the filters passed over are done with too (the replay read up to
        // where the tail began handing them on): the position a close or heartbeat names is past them.
        if (
          heldThrough !== undefined &&
          socket.readyState === socket.OPEN &&
          comparePositions(heldThrough, last) > 0
        )
          last = heldThrough;
      }
      log.debug({ after: q.after ?? null, from: last }, 'subscriber joined');
    },
  );
}
