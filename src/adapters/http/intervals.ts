import type { FastifyInstance } from 'fastify';
import * as t from 'io-ts';
import { INTERVAL_MS, IntervalStats } from '../../domain/intervals.ts';
import { strict } from '../../domain/strict.ts';
import { MAX_POSITION_PART, withMessage } from '../../domain/values.ts';
import { entryType, parseFields, streamHistory } from '../redis/event-log.ts';
import { DEFAULT_SERVICE_LEVEL_MS } from '../redis/projection-reads.ts';
import { workspaceOf } from './params.ts';
import { decodeOr400, ProblemError, problem } from './problem.ts';

/** The longest range one request reads, and how far before it the contacts' queues are learnt. */
const MAX_RANGE_MS = 24 * 3600_000;
const LOOKBACK_MS = 2 * 3600_000;
/** The most events one request reads: a busier range is refused (ask for a shorter one). */
const MAX_EVENTS = 2_000_000;
const PAGE = 10_000;

const Time = withMessage(
  t.refinement(t.string, (s) => /^\d{4}-\d\d-\d\dT/.test(s) && Number.isFinite(Date.parse(s)), 'Time'),
  'an ISO 8601 time such as 2026-11-30T08:00:00Z',
);
const IntervalsQuery = strict(
  { from: Time, to: Time },
  {
    serviceLevelMs: t.refinement(
      t.string,
      (s) => /^\d{1,8}$/.test(s) && Number(s) >= 1 && Number(s) <= 86_400_000,
      'serviceLevelMs',
    ),
  },
  'IntervalsQuery',
);

/**
 * GET /stats/intervals?from&to: the event log's statistics in 15-minute intervals
 * (src/domain/intervals.ts), read from the history (the archive, then the stream) each time.
 */
export async function intervalRoutes(app: FastifyInstance): Promise<void> {
  const history = app.deps.history ?? streamHistory(app.deps.redis);
  app.get('/stats/intervals', async (req) => {
    const ws = workspaceOf(req.params);
    const q = decodeOr400(IntervalsQuery, req.query, 'query');
    const from = Date.parse(q.from);
    const to = Date.parse(q.to);
    if (!(from < to) || to - from > MAX_RANGE_MS)
      throw new ProblemError(
        problem(
          400,
          'invalid-request',
          'Invalid request',
          'to must be after from, and at most 24 hours later.',
          {
            errors: [{ path: 'to', message: 'after from, at most 24 hours later' }],
          },
        ),
      );
    const stats = new IntervalStats(
      q.serviceLevelMs !== undefined ? Number(q.serviceLevelMs) : DEFAULT_SERVICE_LEVEL_MS,
    );
    const start = Math.floor(from / INTERVAL_MS) * INTERVAL_MS;
    const learnFrom = Math.max(0, start - LOOKBACK_MS);
    let cursor = learnFrom > 0 ? `${learnFrom - 1}-${MAX_POSITION_PART}` : '0-0';
    let read = 0;
    for (;;) {
      const entries = await history(ws, cursor, PAGE);
      for (const e of entries) {
        cursor = e[0];
        const ms = Number(e[0].slice(0, e[0].indexOf('-')));
        if (ms >= to)
          return { from: new Date(start).toISOString(), to: q.to, intervals: stats.result(from, to) };
        const type = entryType(e);
        const fields = parseFields(e[1]);
        if (!type || fields.event === undefined) continue;
        let data: Record<string, unknown>;
        try {
          data = (JSON.parse(fields.event) as { data?: Record<string, unknown> }).data ?? {};
        } catch {
          continue;
        }
        stats.add({ ms, type, data }, ms >= start);
      }
      read += entries.length;
      if (entries.length < PAGE) break;
      if (read >= MAX_EVENTS)
        throw new ProblemError(
          problem(
            422,
            'range-too-large',
            'Range too busy',
            `The range holds more than ${MAX_EVENTS} events; ask for a shorter one.`,
          ),
        );
    }
    return { from: new Date(start).toISOString(), to: q.to, intervals: stats.result(from, to) };
  });
}
