import { isUtf8 } from 'node:buffer';
import { type Problem, problem } from './problem.ts';

/**
 * The byte offset of the first byte of `body` that is not part of a UTF-8 character, or -1. Read
 * from the lenient decoding: every character before the first U+FFFD it made is what the bytes say,
 * and a U+FFFD the body itself holds is the three bytes EF BF BD.
 */
function firstNonUtf8Byte(body: Buffer): number {
  let at = 0;
  for (const ch of body.toString('utf8')) {
    if (ch === '\ufffd' && !(body[at] === 0xef && body[at + 1] === 0xbf && body[at + 2] === 0xbd)) return at;
    at += Buffer.byteLength(ch);
  }
  return -1;
}

const invalidJson = (detail: string): Problem =>
  problem(400, 'invalid-json', 'Body is not valid JSON', detail);

/**
 * A JSON body, as its bytes: undefined when empty, else the parsed value, or the 400 invalid-json.
 * JSON is UTF-8 (RFC 8259, section 8.1), whatever charset the Content-Type names: bytes that are
 * not UTF-8 are refused, not read as U+FFFD (a name sent in Latin-1 would be stored mangled, and
 * two different bodies under one Idempotency-Key would read as the same request).
 */
export function parseJsonBody(body: Buffer): { value: unknown } | { problem: Problem } {
  if (!isUtf8(body)) {
    const at = firstNonUtf8Byte(body);
    const byte = (body[at] ?? 0).toString(16).toUpperCase().padStart(2, '0');
    return {
      problem: invalidJson(
        `The body is not UTF-8, as JSON must be (RFC 8259): the byte 0x${byte} at offset ${at} is not part of a UTF-8 character; send it in UTF-8. Nothing was changed.`,
      ),
    };
  }
  const text = body.toString('utf8');
  if (text.trim() === '') return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { problem: invalidJson(`${(err as Error).message}; send a JSON object.`) };
  }
}

/**
 * The 415 for a body sent in a content coding, or undefined. Bodies are read as sent: a gzipped
 * body would otherwise be refused as "not UTF-8" (which names nothing the client can change) and a
 * plain one labelled with a coding taken as if the header were not there. `identity` is no coding
 * (RFC 9110, section 8.4.1); a request without a body is not concerned.
 */
export function contentEncodingProblem(
  header: string | string[] | undefined,
  hasBody: boolean,
): Problem | undefined {
  if (header === undefined || !hasBody) return undefined;
  const value = Array.isArray(header) ? header.join(', ') : header;
  const codings = value
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '');
  if (codings.every((c) => c === 'identity')) return undefined;
  const message = 'must be absent (or identity): bodies are read as sent, in no content coding';
  return problem(
    415,
    'unsupported-encoding',
    'Unsupported content encoding',
    `The body is sent with Content-Encoding "${value}"; this API reads bodies in no content coding: send the JSON as it is, without Content-Encoding. Nothing was changed.`,
    { errors: [{ path: 'Content-Encoding', message }] },
  );
}
