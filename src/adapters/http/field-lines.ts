import type { IncomingMessage } from 'node:http';

/**
 * How many field lines named `name` (lower case) a request has. Node joins a header given more than
 * once with ", ", so only a value holding ", " can come from more than one line: the raw lines are
 * counted then only.
 */
export function fieldLines(req: IncomingMessage, name: string): number {
  const value = req.headers[name];
  if (value === undefined) return 0;
  if (typeof value !== 'string' || !value.includes(', ')) return 1;
  let n = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) n++;
  return n;
}
