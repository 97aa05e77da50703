/**
 * How long entries stay in Redis before the archiver moves them to the archive (`LOG_RETENTION`):
 * an age (`24h`; units ms, s, m, h, d), a count of entries (`1000000`), or both (`24h,1000000`).
 * An entry is moved once it is past either limit: older than the age, or not among the newest
 * `count` entries of its stream. Commands are moved only once the projector has applied them.
 */
export interface Retention {
  readonly ageMs?: number;
  readonly count?: number;
}

export const DEFAULT_RETENTION = '24h';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The retention, or what is wrong with the text. */
export function parseRetention(text: string): Retention | string {
  const usage = `must be an age such as 24h (units ms, s, m, h, d), a count of entries such as 1000000, or both separated by a comma such as 24h,1000000 (got "${text}")`;
  let ageMs: number | undefined;
  let count: number | undefined;
  for (const item of text.split(',').map((s) => s.trim())) {
    const age = /^(\d+)(ms|s|m|h|d)$/.exec(item);
    if (age && ageMs === undefined) ageMs = Number(age[1]) * UNITS[age[2]!]!;
    else if (/^\d+$/.test(item) && count === undefined) count = Number(item);
    else return usage;
  }
  if (
    (ageMs !== undefined && !Number.isSafeInteger(ageMs)) ||
    (count !== undefined && !Number.isSafeInteger(count))
  )
    return usage;
  return { ...(ageMs !== undefined ? { ageMs } : {}), ...(count !== undefined ? { count } : {}) };
}

export const DEFAULT_CONTACT_RETENTION = '1h';

/**
 * How long a finished contact's document stays readable (`CONTACT_RETENTION`): an age (`1h`) or
 * `off` (kept for ever: Redis then grows with every contact). Undefined for `off`; a string says
 * what is wrong.
 */
export function parseContactRetention(text: string): number | undefined | string {
  if (text === 'off') return undefined;
  const age = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  const ms = age ? Number(age[1]) * UNITS[age[2]!]! : Number.NaN;
  return Number.isSafeInteger(ms)
    ? ms
    : `must be an age such as 1h (units ms, s, m, h, d) or off (got "${text}")`;
}

/** As LOG_RETENTION would say it. */
export function showRetention(r: Retention): string {
  return [r.ageMs !== undefined ? `${r.ageMs}ms` : undefined, r.count]
    .filter((x) => x !== undefined)
    .join(',');
}
