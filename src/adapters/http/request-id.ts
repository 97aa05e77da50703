import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { fieldLines } from './field-lines.ts';

/** The longest X-Request-Id taken as given (docs/API.md): a longer one is replaced. */
export const MAX_REQUEST_ID = 128;
const REQUEST_ID = new RegExp(`^[\\x20-\\x7e]{1,${MAX_REQUEST_ID}}$`);

/**
 * A request's id: the client's X-Request-Id, trimmed (an answer's header cannot carry the
 * whitespace left at an end), so the id answered is the one logged and recorded with the command. One that is none of 1..128 printable ASCII characters is replaced by
 * a new one, as when none is given: it is written in every log line and event of the request, so its
 * size is bounded and it holds nothing a log reader could mistake (control or non-ASCII bytes).
 */
export function requestIdOf(given: string | string[] | undefined): string {
  const id = typeof given === 'string' ? given.trim() : '';
  return REQUEST_ID.test(id) ? id : randomUUID();
}

/**
 * The id of a request: its X-Request-Id as `requestIdOf` takes it, but a new one when it was given
 * more than once (Node joins them with ", ": "a, b" is neither id, and is no trace's).
 */
export function requestIdOfRequest(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (fieldLines(req, 'x-request-id') > 1) return randomUUID();
  return requestIdOf(given);
}
