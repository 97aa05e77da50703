import type { FastifyInstance } from 'fastify';
import { strict } from '../../domain/strict.ts';
import { Position } from '../../domain/values.ts';
import { positionWaiter } from './min-position.ts';
import { workspaceOf } from './params.ts';
import { decodeOr400, ProblemError, positionAhead } from './problem.ts';

/**
 * `GET /v1/workspaces/{ws}/state?at=<event position>`: the agents, contacts and queue as they
 * were right after that event, computed from the log by the domain model (the auditor's replay,
 * from the latest snapshot at or before it: src/audit/state-at.ts). The composition root injects
 * the computation (`ApiDeps.stateAt`): the API does not know the auditor.
 */
export interface StateAtAnswer {
  readonly workspace: string;
  /** The position asked for. */
  readonly at: string;
  /** The last event replayed (null: the log has no event up to `at`). */
  readonly position: string | null;
  /** The last command replayed (null: none). */
  readonly checkpoint: string | null;
  /** Public agent documents, sorted by id. */
  readonly agents: readonly Record<string, unknown>[];
  /** Public contact documents, sorted by id. */
  readonly contacts: readonly Record<string, unknown>[];
  /** Queued contacts in routing order: priority descending, then arrival. */
  readonly queue: readonly QueuedAt[];
  /** The event position of the snapshot the replay started from (null: the beginning of the log). */
  readonly snapshot: string | null;
  readonly replayed: { readonly events: number; readonly commands: number };
}

export interface QueuedAt {
  readonly contactId: string;
  readonly skills: readonly string[];
  readonly priority: number;
  readonly queuedAt: string;
}

/** The state at a position, or the workspace's last event when the position is after it. */
export type StateAt = (
  workspace: string,
  at: string,
) => Promise<{ readonly state: StateAtAnswer } | { readonly ahead: string | null }>;

const StateQuery = strict({ at: Position }, { minPosition: Position }, 'StateQuery');

export async function stateRoutes(app: FastifyInstance): Promise<void> {
  const stateAt = app.deps.stateAt;
  if (!stateAt) return;
  const awaitPosition = positionWaiter(app);
  app.get('/state', async (req) => {
    const ws = workspaceOf(req.params);
    const { at, minPosition } = decodeOr400(StateQuery, req.query, 'query');
    await awaitPosition(ws, minPosition);
    const r = await stateAt(ws, at);
    if ('state' in r) return r.state;
    throw new ProblemError(
      positionAhead(
        r.ahead === null
          ? `Workspace "${ws}" has no event yet, so there is no state at ${at}; wait or ask for an earlier position.`
          : `${at} is after the last event of workspace "${ws}" (${r.ahead}); wait or ask for an earlier position.`,
        r.ahead,
        'at',
      ),
    );
  });
}
