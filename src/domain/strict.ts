import { isLeft } from 'fp-ts/lib/Either.js';
import * as t from 'io-ts';

/**
 * An object codec that rejects properties it does not know, so a misspelt field
 * ("skils") is named in the 400 instead of silently ignored.
 */
export function strict<R extends t.Props, O extends t.Props>(required: R, optional: O, name: string) {
  const req = t.type(required);
  const opt = t.partial(optional);
  const base = t.intersection([req, opt], name);
  const known = new Set([...Object.keys(required), ...Object.keys(optional)]);
  type A = t.TypeOf<typeof base>;
  return new t.Type<A, unknown, unknown>(
    name,
    (u): u is A => base.is(u),
    (u, c) => {
      if (typeof u !== 'object' || u === null || Array.isArray(u))
        return t.failure(u, c, 'must be a JSON object');
      const errors: t.ValidationError[] = [];
      for (const key of Object.keys(u)) {
        if (!known.has(key)) {
          errors.push({
            value: (u as Record<string, unknown>)[key],
            // An empty name is shown as "" (an empty key would not name the field at all).
            context: [...c, { key: key === '' ? '""' : key, type: t.never, actual: u }],
            message: 'is not a known field',
          });
        }
      }
      // Both halves see the same context, so error paths name the fields themselves.
      const r1 = req.validate(u, c);
      const r2 = opt.validate(u, c);
      if (isLeft(r1)) errors.push(...r1.left);
      if (isLeft(r2)) errors.push(...r2.left);
      if (errors.length > 0 || isLeft(r1) || isLeft(r2)) return t.failures(errors);
      // Drop undefined optionals so stored JSON stays minimal.
      const out: Record<string, unknown> = {};
      const decoded = [r1.right as Record<string, unknown>, r2.right as Record<string, unknown>];
      for (const [half, keys] of [
        [decoded[0], Object.keys(required)],
        [decoded[1], Object.keys(optional)],
      ] as const) {
        for (const k of keys) if (half?.[k] !== undefined) out[k] = half[k];
      }
      return t.success(out as A);
    },
    (a) => a,
  );
}

export interface FieldError {
  path: string;
  message: string;
}

/**
 * Turns io-ts errors into one `{path, message}` per bad field; paths are dotted (`skills.2`). A field
 * left out that must be there says so first: `is required: <what it takes>`.
 */
export function fieldErrors(errors: t.Errors, root = ''): FieldError[] {
  const seen = new Map<string, string>();
  for (const e of errors) {
    const named = pathOf(e);
    const path = [root, named].filter((p) => p !== '').join('.') || '(body)';
    const expected = e.context[e.context.length - 1]?.type.name ?? 'a value';
    const message = e.message ?? `must be ${expected}`;
    if (!seen.has(path))
      seen.set(
        path,
        e.value === undefined && named !== '' ? `is required: ${message.replace(/^must be /, '')}` : message,
      );
  }
  return [...seen].map(([path, message]) => ({ path, message }));
}

function pathOf(e: t.ValidationError): string {
  const parts: string[] = [];
  for (let i = 1; i < e.context.length; i++) {
    const c = e.context[i]!;
    // The members of an intersection are keyed "0", "1": they do not step into the value.
    if (e.context[i - 1]!.type instanceof t.IntersectionType) continue;
    if (c.key !== '') parts.push(c.key);
  }
  return parts.join('.');
}
