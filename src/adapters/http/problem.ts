import type { FastifyReply } from 'fastify';
import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import type * as t from 'io-ts';
import { UnionType } from 'io-ts';
import { type FieldError, fieldErrors } from '../../domain/strict.ts';
import { positionPredecessor } from '../../domain/values.ts';
import { isSharedFailure, redisAdvice } from '../redis/advice.ts';

/** RFC 9457 problem details: the one shape of every error Switchboard answers. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly errors?: readonly FieldError[];
  readonly [extension: string]: unknown;
}

export const PROBLEM_TYPE = 'application/problem+json';

/**
 * Every problem type Switchboard answers, with its status: docs/API.md and the OpenAPI document
 * list exactly these (a test holds them to it), so a client can rely on `type` alone.
 */
export const PROBLEM_TYPES = {
  'invalid-request': 400,
  'invalid-json': 400,
  'invalid-url': 400,
  'malformed-request': 400,
  'bad-handshake': 400,
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'no-route': 404,
  'agent-not-found': 404,
  'contact-not-found': 404,
  'key-not-found': 404,
  'request-timeout': 408,
  'agent-exists': 409,
  'contact-exists': 409,
  'agent-busy': 409,
  'contact-not-queued': 409,
  'contact-not-assigned': 409,
  'contact-not-offered': 409,
  'offer-not-yours': 409,
  'position-ahead': 409,
  'settings-conflict': 409,
  'body-too-large': 413,
  'uri-too-long': 414,
  'unsupported-media-type': 415,
  'unsupported-encoding': 415,
  'expectation-failed': 417,
  'idempotency-key-reused': 422,
  'unknown-command': 422,
  'malformed-command': 422,
  'command-failed': 422,
  'skill-set-limit': 422,
  'channel-not-declared': 422,
  'channels-not-removable': 422,
  'range-too-large': 422,
  'upgrade-required': 426,
  'rate-limited': 429,
  'too-many-websockets': 429,
  'headers-too-large': 431,
  internal: 500,
  'bad-gateway': 502,
  'redis-unavailable': 503,
  'not-replicated': 503,
  'position-not-reached': 503,
  'shutting-down': 503,
  'too-many-connections': 503,
  'archive-unreadable': 503,
  starting: 503,
  'no-instance-available': 503,
  'gateway-timeout': 504,
} as const;

export type ProblemSlug = keyof typeof PROBLEM_TYPES;

export function problem(
  status: number,
  slug: ProblemSlug,
  title: string,
  detail: string,
  extra: object = {},
): Problem {
  return { type: `/problems/${slug}`, title, status, detail, ...extra };
}

/**
 * 409: a position after the last of the log it names; `lastPosition` says where that log ends.
 * `field`: the parameter that gave it (`minPosition`, `after`, `at`), named in `errors` as a 400
 * names a bad field.
 */
export const positionAhead = (detail: string, lastPosition: string | null, field?: string): Problem =>
  problem(409, 'position-ahead', 'Position not in the log yet', detail, {
    lastPosition,
    ...(field !== undefined
      ? {
          errors: [
            {
              path: field,
              message:
                'is after the last position of the log: ask for one the log holds (lastPosition, or an earlier one)',
            },
          ],
        }
      : {}),
  });

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type(PROBLEM_TYPE).send(p);
}

/**
 * A value that failed every member of a union (`maxWaitMs`: a number in range, or null) fails
 * once, as the field itself: `maxWaitMs` named with "… or must be null", not `maxWaitMs.0` and
 * `maxWaitMs.1` (io-ts reports each member under its index).
 */
function unionsAsFields(errors: t.Errors): t.Errors {
  const out: t.ValidationError[] = [];
  const merged = new Map<string, { error: t.ValidationError; messages: string[] }>();
  for (const e of errors) {
    const at = e.context.findIndex((c) => c.type instanceof UnionType);
    if (at < 0 || at === e.context.length - 1) {
      out.push(e);
      continue;
    }
    const context = e.context.slice(0, at + 1);
    const key = context.map((c) => c.key).join('.');
    const message = e.message ?? `must be ${e.context[e.context.length - 1]?.type.name ?? 'a value'}`;
    const seen = merged.get(key);
    if (seen) {
      const more = message.replace(/^must be /, '');
      if (!seen.messages.includes(more)) seen.messages.push(more);
      continue;
    }
    const entry = { error: { value: e.value, context }, messages: [message] };
    merged.set(key, entry);
    out.push(entry.error);
  }
  return out.map((e) => {
    const m = [...merged.values()].find((x) => x.error === e);
    return m ? { ...e, message: m.messages.join(', or ') } : e;
  });
}

/** What a query field given more than once is told (no query field takes a list; its values arrive as one). */
export function givenTimes(n: number): string {
  return `is given ${n} times: give it once`;
}

/**
 * A query field given more than once (`after=1-0&after=2-0`) arrives as a list: its error says so,
 * not what one value must be (each may be fine). A field no route knows is still named as unknown.
 */
function repeatedQueryFields(errors: t.Errors): t.Errors {
  return errors.map((e) =>
    Array.isArray(e.value) && e.context.length === 2 && e.message !== 'is not a known field'
      ? { ...e, message: givenTimes(e.value.length) }
      : e,
  );
}

export function invalid(where: string, errors: t.Errors, root = ''): Problem {
  const list = fieldErrors(unionsAsFields(where === 'query' ? repeatedQueryFields(errors) : errors), root);
  return problem(
    400,
    'invalid-request',
    'Invalid request',
    `The ${where} has ${list.length === 1 ? 'a bad field' : `${list.length} bad fields`}: ${list
      .map((e) => `${e.path} ${e.message}`)
      .join('; ')}. Nothing was changed.`,
    { errors: list },
  );
}

/** Decodes a value, or gives the 400 problem naming each bad field. */
export function decodeOrProblem<A>(
  codec: t.Type<A, unknown, unknown>,
  value: unknown,
  where: string,
  root = '',
): E.Either<Problem, A> {
  return pipe(
    codec.decode(value),
    E.mapLeft((errors) => invalid(where, errors, root)),
  );
}

/** Decodes a value or throws the 400 problem naming each bad field. */
export function decodeOr400<A>(
  codec: t.Type<A, unknown, unknown>,
  value: unknown,
  where: string,
  root = '',
): A {
  const r = decodeOrProblem(codec, value, where, root);
  if (E.isLeft(r)) throw new ProblemError(r.left);
  return r.right;
}

/** Errors of the Redis client that mean Redis cannot be reached (or cannot take writes) right now. */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string; code?: string };
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    e.name === 'ClusterAllFailedError' ||
    // Redis, or the connections to it, not answering or refusing (advice.ts): a cluster moving its
    // slots (a failover) too, where the client's redirections can run out first.
    isSharedFailure(err) ||
    // Redis stopping a step at a key of a slot being moved. The steps that could be stopped with
    // part of their writes made declare their workspace's slot guard (keys.ts, slotGuardOf) and
    // are refused whole before they run (TRYAGAIN); a retry with the same Idempotency-Key applies
    // once.
    /^ERR Script attempted to (access a non local key in a cluster node|execute a (write )?command while the cluster is down)/.test(
      e.message ?? '',
    )
  );
}

/** 426 for a plain request to a WebSocket route, with the header that names the upgrade. */
export function sendUpgradeRequired(reply: FastifyReply, detail: string): FastifyReply {
  return sendProblem(
    reply.header('upgrade', 'websocket'),
    problem(426, 'upgrade-required', 'Upgrade required', detail),
  );
}

/**
 * 503 while Redis cannot be reached, or refuses writes (at its memory limit, or failing to
 * persist): sent with `retry-after: 1`. The detail says which, when the error tells. `read`: the
 * request only reads (GET, HEAD, a live feed's upgrade), which no Idempotency-Key is for.
 */
export const redisUnavailable = (err?: unknown, read = false): Problem => {
  const message = String((err as { message?: unknown } | undefined)?.message ?? '');
  const detail = message.startsWith('OOM ')
    ? 'Redis is at its memory limit (maxmemory) and refuses writes; raise maxmemory or free memory (shorter LOG_RETENTION or CONTACT_RETENTION, the archiver running), then retry with the same Idempotency-Key.'
    : message.startsWith('MISCONF ')
      ? 'Redis refuses writes because it cannot persist its data (see its log: disk full or not writable); fix that, then retry with the same Idempotency-Key.'
      : read
        ? 'Redis is not reachable right now; nothing was read. Ask again in a second (Retry-After).'
        : // Sent to Redis and not answered in time, it may run when Redis goes on (applied).
          'Redis did not answer in time or is not reachable: the request may have been applied. Retry it with the same Idempotency-Key (it is applied once); without one, read what it changes before you send it again.';
  return problem(503, 'redis-unavailable', 'Storage unavailable', detail);
};

/**
 * The log line of a request answered 503 redis-unavailable: what the operator does about it (the
 * problem's detail tells the client what to do).
 */
export const redisUnavailableLog = (err?: unknown): string =>
  `redis unavailable; answered 503 (Retry-After: 1). ${redisAdvice(err)}`;

/** 500 for a failure no route foresaw; the error is logged under the request id. */
export const internalError = (requestId: string): Problem =>
  problem(
    500,
    'internal',
    'Internal error',
    `The server failed on this request (id ${requestId}); it is logged under that id.`,
  );

/**
 * 503: a history the archive cannot give whole (a segment missing, cut short or altered, or an
 * ARCHIVE_DIR that is not the archiver's). Never answered with a hole in it; what the operator must
 * do is logged, not told to the client (it names the server's directories). What the client is told
 * is the hole's positions (`hole`: lostAfter, resumeAt, and resumeAfter, the after= that reads on).
 */
export const archiveUnreadable = (
  workspace: string,
  requestId: string,
  hole: HistoryHole = { lostAfter: null, resumeAt: null },
): Problem => {
  const resumeAfter = hole.resumeAt === null ? null : positionPredecessor(hole.resumeAt);
  const lost =
    hole.lostAfter === null && hole.resumeAt === null
      ? 'Which events are lost is not known from the archive'
      : `The events ${hole.lostAfter === null ? 'from the start of the history' : `after ${hole.lostAfter}`} ${hole.resumeAt === null ? 'to a position the archive does not tell' : `and before ${hole.resumeAt}`} cannot be read`;
  const readOn =
    resumeAfter === null
      ? 'Positions after the damaged part can still be read'
      : `To read on past them, ask again with after=${resumeAfter} (the history reads again at ${hole.resumeAt})`;
  return problem(
    503,
    'archive-unreadable',
    'History unreadable',
    `The history of workspace "${workspace}" cannot be read whole from the archive: a part of it is missing or damaged on the server. ${lost}. ${readOn}; or wait until an operator restores the archive (the server's log, under request id ${requestId}, says what is wrong and how to mend it). Nothing was changed.`,
    { lostAfter: hole.lostAfter, resumeAt: hole.resumeAt, resumeAfter },
  );
};

/**
 * The hole in a history: `lostAfter`, the last position before it that reads (null: from the start
 * of the history, or not known); `resumeAt`, the first one after it that reads (null: not known).
 */
export interface HistoryHole {
  readonly lostAfter: string | null;
  readonly resumeAt: string | null;
}

/**
 * What a history reader throws when it cannot give the history whole (the archive's reader
 * extends it: src/archive/log-reader.ts). Answered as `archiveUnreadable`, its message logged.
 */
export class HistoryUnreadableError extends Error {
  constructor(
    message: string,
    readonly workspace: string,
    readonly hole: HistoryHole = { lostAfter: null, resumeAt: null },
  ) {
    super(message);
  }
}

export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}
