import type { FastifyInstance } from 'fastify';
import { comparePositions } from '../../domain/values.ts';
import { workspaceKeys } from '../redis/keys.ts';
import { appliedPosition } from '../redis/projection-reads.ts';
import { ProblemError, positionAhead, problem } from './problem.ts';

/**
 * `?minPosition=` of any query: waits (bounded by QUERY_TIMEOUT_MS) until the projector has applied
 * that command position, so a client reads its own writes; a position after the last command is a
 * 409 position-ahead at once, one not applied in time a 503 position-not-reached.
 */
export type AwaitPosition = (ws: string, minPosition: string | undefined) => Promise<void>;

export function positionWaiter(app: FastifyInstance): AwaitPosition {
  const { redis, tails, config } = app.deps;
  return async (ws, minPosition) => {
    if (minPosition === undefined) return;
    if (comparePositions(await appliedPosition(redis, ws), minPosition) >= 0) return;
    // A position after the command stream's last entry names no command yet (a command's position
    // is answered once it is appended): no wait would reach it, so it is refused at once.
    const last = (await redis.xrevrange(workspaceKeys(ws).commands, '+', '-', 'COUNT', 1))[0]?.[0] ?? null;
    if (comparePositions(minPosition, last ?? '0-0') > 0)
      throw new ProblemError(
        positionAhead(
          `minPosition ${minPosition} is after the last command of workspace "${ws}" (${last ?? 'none yet'}): pass the position a command's answer gave.`,
          last,
          'minPosition',
        ),
      );
    const tail = await tails.get(ws);
    const reached = tail.waitPosition(minPosition, config.queryTimeoutMs);
    try {
      // Re-read after subscribing: the projector may have passed it in between (the wait is then
      // ended here, not left to the next outcome or the timeout).
      if (comparePositions(await appliedPosition(redis, ws), minPosition) >= 0) return;
      if (await reached.promise) return;
    } finally {
      reached.cancel();
    }
    throw new ProblemError(
      problem(
        503,
        'position-not-reached',
        'Projections behind',
        `The projections have not applied ${minPosition} within ${config.queryTimeoutMs} ms; retry shortly.`,
      ),
    );
  };
}
