import type { FastifyReply } from 'fastify';
import type * as t from 'io-ts';
import { type FieldError, fieldErrors } from '../../domain/strict.ts';

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

export function problem(
  status: number,
  slug: string,
  title: string,
  detail: string,
  extra: object = {},
): Problem {
  return { type: `/problems/${slug}`, title, status, detail, ...extra };
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type(PROBLEM_TYPE).send(p);
}

export function invalid(where: string, errors: t.Errors, root = ''): Problem {
  const list = fieldErrors(errors, root);
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

/** Decodes a value or throws the 400 problem naming each bad field. */
export function decodeOr400<A>(
  codec: t.Type<A, unknown, unknown>,
  value: unknown,
  where: string,
  root = '',
): A {
  const r = codec.decode(value);
  if (r._tag === 'Left') throw new ProblemError(invalid(where, r.left, root));
  return r.right;
}

export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}
