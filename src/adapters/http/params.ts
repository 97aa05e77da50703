import * as t from 'io-ts';
import { strict } from '../../domain/strict.ts';
import { Id, Position, WorkspaceId, withMessage } from '../../domain/values.ts';
import { decodeOr400 } from './problem.ts';

export const WorkspaceParams = t.type({ ws: WorkspaceId });
export const AgentParams = t.type({ ws: WorkspaceId, id: Id });
export const ContactParams = t.type({ ws: WorkspaceId, id: Id });

export function workspaceOf(params: unknown): string {
  return decodeOr400(WorkspaceParams, params, 'path').ws;
}

export function idParams(params: unknown): { ws: string; id: string } {
  return decodeOr400(AgentParams, params, 'path');
}

/**
 * A number in a query (`limit`, `serviceLevelMs`): decimal digits, read by their value, so leading
 * zeros are taken at any length (`limit=0000000001` is 1), as a position's parts are.
 */
export const isIntegerIn = (s: string, min: number, max: number): boolean =>
  /^\d+$/.test(s) && Number(s) >= min && Number(s) <= max;

/** No query parameter at all: the routes that read none (commands, keys, tickets) name any given in a 400. */
export const NoQuery = strict({}, {}, 'NoQuery');

/** `?minPosition=` on any query. */
export const MinPositionQuery = strict({}, { minPosition: Position }, 'MinPositionQuery');

/** Idempotency keys: visible ASCII (no spaces), bounded, so they can be part of a Redis key. */
export const IdempotencyKey = withMessage(
  t.refinement(t.string, (s) => /^[\x21-\x7e]{1,200}$/.test(s), 'IdempotencyKey'),
  '1..200 visible ASCII characters (no spaces)',
);
