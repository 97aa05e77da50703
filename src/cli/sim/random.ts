/**
 * Seeded randomness shared by the simulator and the benchmarks, so a run can be repeated: the
 * same seed gives the same skills, the same handle times and the same arrival plan.
 */
import { randomInt } from 'node:crypto';

export type Rng = () => number;

/** mulberry32: a small, fast 32-bit generator; returns floats in [0, 1). */
export function seededRandom(seed: number): Rng {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for runs that were not given one (reported, so the run can be repeated). */
export function randomSeed(): number {
  return randomInt(0, 2 ** 31);
}

export const LANGUAGES = ['English', 'Spanish'] as const;
export const EXPERTISE = ['Support', 'Disputes', 'Billing'] as const;

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

/**
 * The reference ACD's skills: one language and one expertise (6 combinations), in the canonical
 * (byte) order Switchboard stores skill sets in.
 */
export function seedSkills(rng: Rng): string[] {
  const language = pick(rng, LANGUAGES);
  const expertise = pick(rng, EXPERTISE);
  return [language, expertise].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A uniform draw in [min, max]. */
export function uniform(rng: Rng, min: number, max: number): number {
  return min + (max - min) * rng();
}
