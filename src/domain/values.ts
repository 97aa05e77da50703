import { isLeft } from 'fp-ts/lib/Either.js';
import * as t from 'io-ts';

/** Strings checked by pattern and length: the vocabulary every codec shares. */
function patterned(name: string, pattern: RegExp, min: number, max: number): t.Type<string, string, unknown> {
  return t.refinement(t.string, (s) => s.length >= min && s.length <= max && pattern.test(s), name);
}

export const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
export const SKILL_PATTERN = /^[A-Za-z0-9._-]+$/;
export const POSITION_PATTERN = /^\d{1,20}-\d{1,20}$/;

export const Id = withMessage(patterned('Id', ID_PATTERN, 1, 128), '1..128 characters of [A-Za-z0-9._:-]');
export const WorkspaceId = withMessage(
  patterned('WorkspaceId', /^[A-Za-z0-9_-]+$/, 1, 64),
  '1..64 characters of [A-Za-z0-9_-]',
);
export const Skill = withMessage(
  patterned('Skill', SKILL_PATTERN, 1, 64),
  '1..64 characters of [A-Za-z0-9._-]',
);
/** The largest part of a stream position: Redis keeps both as unsigned 64-bit integers. */
export const MAX_POSITION_PART = 18_446_744_073_709_551_615n;
export const MAX_POSITION = `${MAX_POSITION_PART}-${MAX_POSITION_PART}`;

function isPosition(s: string): boolean {
  if (!POSITION_PATTERN.test(s)) return false;
  const [ms = '', seq = ''] = s.split('-');
  return BigInt(ms) <= MAX_POSITION_PART && BigInt(seq) <= MAX_POSITION_PART;
}

// Redis refuses ids past 64 bits: a position it cannot parse must be a 400 here, not a failed read.
export const Position = withMessage(
  t.refinement(t.string, isPosition, 'Position'),
  `a stream position "<ms>-<seq>" such as "1732200000000-0", each part an integer of at most ${MAX_POSITION_PART}`,
);

/** A position to read after: nothing can follow the largest id, and Redis refuses to range after it. */
export const AfterPosition = withMessage(
  t.refinement(t.string, (s) => isPosition(s) && comparePositions(s, MAX_POSITION) < 0, 'AfterPosition'),
  `a stream position "<ms>-<seq>" such as "1732200000000-0", each part an integer of at most ${MAX_POSITION_PART}, below ${MAX_POSITION}`,
);

export const MAX_SKILLS = 32;

/** 1..32 skills; duplicates are merged and the list is sorted so that every store sees one canonical form. */
export const Skills = withMessage(
  new t.Type<string[], string[], unknown>(
    'Skills',
    (u): u is string[] => Array.isArray(u) && u.every((s) => Skill.is(s)),
    (u, c) => {
      if (!Array.isArray(u)) return t.failure(u, c, 'must be an array of skills');
      const out = new Set<string>();
      for (const s of u) {
        if (!Skill.is(s)) return t.failure(u, c, `each skill must be 1..64 characters of [A-Za-z0-9._-]`);
        out.add(s);
      }
      if (out.size < 1 || out.size > MAX_SKILLS) return t.failure(u, c, `must hold 1..${MAX_SKILLS} skills`);
      return t.success(canonicalSkills([...out]));
    },
    (a) => a,
  ),
  `1..${MAX_SKILLS} skills, each 1..64 characters of [A-Za-z0-9._-]`,
);

export const Priority = withMessage(
  t.refinement(t.number, (n) => Number.isInteger(n) && n >= 0 && n <= 9, 'Priority'),
  'an integer from 0 to 9',
);
const isCount = (n: unknown): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 100;

/** A contact's channel (voice, chat, email, ...): lower-case, declared in the workspace's settings. */
export const CHANNEL_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
export const Channel = withMessage(
  patterned('Channel', CHANNEL_PATTERN, 1, 32),
  '1..32 characters of [a-z0-9_-], starting with a letter',
);
export const DEFAULT_CHANNEL = 'voice';
/** The most channels a workspace declares (and an agent's per-channel capacity names). */
export const MAX_CHANNELS = 16;

/** Capacity per channel: `{"voice": 1, "chat": 3}`. */
export type ChannelCapacity = Readonly<Record<string, number>>;

/**
 * An agent's capacity: one number (contacts at once, on any channel), or a number per channel
 * (an agent takes contacts of a channel it names while that channel has room).
 */
export const Capacity = withMessage(
  new t.Type<number | ChannelCapacity, number | ChannelCapacity, unknown>(
    'Capacity',
    (u): u is number | ChannelCapacity =>
      isCount(u) ||
      (typeof u === 'object' &&
        u !== null &&
        !Array.isArray(u) &&
        Object.keys(u).length >= 1 &&
        Object.keys(u).length <= MAX_CHANNELS &&
        Object.entries(u).every(([k, v]) => CHANNEL_PATTERN.test(k) && isCount(v))),
    (u, c) => {
      if (isCount(u)) return t.success(u);
      if (typeof u !== 'object' || u === null || Array.isArray(u) || Object.keys(u).length < 1)
        return t.failure(u, c);
      const entries = Object.entries(u as Record<string, unknown>);
      if (entries.length > MAX_CHANNELS || !entries.every(([k, v]) => CHANNEL_PATTERN.test(k) && isCount(v)))
        return t.failure(u, c);
      // Channels in byte order: one canonical form in every store.
      const sorted = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return t.success(Object.fromEntries(sorted) as ChannelCapacity);
    },
    (a) => a,
  ),
  `an integer from 1 to 100 (contacts at once on any channel), or an object of 1..${MAX_CHANNELS} channels, each an integer from 1 to 100, such as {"voice": 1, "chat": 3}`,
);

/** The name of a skill as a channel's queues and pools know it: `<channel>/<skill>`. */
export function onChannel(skills: readonly string[], channel: string): string[] {
  return skills.map((s) => `${channel}/${s}`);
}
/**
 * A lone UTF-16 surrogate (JSON "\ud800") has no UTF-8 form: the Lua steps could not decode the
 * command, so it would be appended and then rejected. In a `u` regex a well-formed pair is one
 * code point, so only lone halves match.
 */
const LONE_SURROGATE = /\p{Surrogate}/u;

export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

export const Name = withMessage(
  t.refinement(t.string, (s) => s.length >= 1 && s.length <= 200 && isWellFormed(s), 'Name'),
  'a string of 1..200 characters of well-formed Unicode',
);

export const MAX_ATTRIBUTES_BYTES = 16_384;
export const MAX_ATTRIBUTES_DEPTH = 32;

/**
 * Walks the value with an explicit stack: a body can nest far deeper than the call stack allows
 * (10,000 levels fit in 60 KB), so neither this check nor JSON.stringify may recurse before the
 * depth is known to be small.
 */
function isAttributes(u: unknown): boolean {
  if (typeof u !== 'object' || u === null || Array.isArray(u)) return false;
  const stack: [value: unknown, depth: number][] = [[u, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, depth] = item;
    if (typeof value === 'string') {
      if (!isWellFormed(value)) return false;
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_ATTRIBUTES_DEPTH) return false;
    for (const [key, child] of Object.entries(value)) {
      if (!isWellFormed(key)) return false;
      stack.push([child, depth + 1]);
    }
  }
  return JSON.stringify(u).length <= MAX_ATTRIBUTES_BYTES;
}

export const Attributes = withMessage(
  t.refinement(t.UnknownRecord, isAttributes, 'Attributes'),
  `a JSON object of at most 16 KiB, nested at most ${MAX_ATTRIBUTES_DEPTH} levels, with well-formed Unicode strings`,
);

/** Byte order, the order Redis uses for members and the Lua steps assume. */
export function canonicalSkills(skills: readonly string[]): string[] {
  return [...new Set(skills)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The name of a skill set, as the queue of that set is keyed. */
export function skillSetName(skills: readonly string[]): string {
  return canonicalSkills(skills).join(',');
}

/** Attaches a human description used when a value fails to decode. */
export function withMessage<C extends t.Any>(codec: C, message: string): C {
  return new t.Type(
    codec.name,
    codec.is,
    (u, c) => {
      const r = codec.validate(u, c);
      return isLeft(r) ? t.failure(u, c, message) : r;
    },
    codec.encode,
  ) as unknown as C;
}

/** Position order: streams compare by milliseconds, then by sequence. */
export function comparePositions(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/**
 * Whether stream position `a` comes before `b` ("<ms>-<seq>", no leading zeros): compared digit
 * by digit, without BigInt or new strings, since replays and readers run it for every entry.
 */
export function positionBefore(a: string, b: string): boolean {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const c = compareDigits(a, 0, da, b, 0, db);
  return c < 0 || (c === 0 && compareDigits(a, da + 1, a.length, b, db + 1, b.length) < 0);
}

function compareDigits(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  if (ae - as !== be - bs) return ae - as - (be - bs);
  for (let i = 0; i < ae - as; i++) {
    const d = a.charCodeAt(as + i) - b.charCodeAt(bs + i);
    if (d !== 0) return d;
  }
  return 0;
}

export function positionTime(position: string): number {
  return Number(position.split('-')[0]);
}
