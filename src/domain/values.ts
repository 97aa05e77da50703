import { isLeft } from 'fp-ts/lib/Either.js';
import * as t from 'io-ts';

/** Strings checked by pattern and length: the vocabulary every codec shares. */
function patterned(name: string, pattern: RegExp, min: number, max: number): t.Type<string, string, unknown> {
  return t.refinement(t.string, (s) => s.length >= min && s.length <= max && pattern.test(s), name);
}

export const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
export const SKILL_PATTERN = /^[A-Za-z0-9._-]+$/;
export const POSITION_PATTERN = /^\d{1,20}-\d{1,20}$/;

/** How an id is described to a client that gave another. */
export const ID_RULE = '1..128 characters of [A-Za-z0-9._:-], not "." or ".."';
/**
 * An agent's or contact's id: 1..128 of [A-Za-z0-9._:-], but not "." nor "..", which are dot
 * segments in a URL path (/agents/.. is /v1/workspaces/{ws}): no client could address them.
 */
export function isId(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 128 && ID_PATTERN.test(s) && s !== '.' && s !== '..';
}
export const Id = withMessage(t.refinement(t.string, isId, 'Id'), ID_RULE);
export const WorkspaceId = withMessage(
  patterned('WorkspaceId', /^[A-Za-z0-9_-]+$/, 1, 64),
  '1..64 characters of [A-Za-z0-9_-]',
);
export const Skill = withMessage(
  patterned('Skill', SKILL_PATTERN, 1, 64),
  '1..64 characters of [A-Za-z0-9._-]',
);
/**
 * How long an Idempotency-Key is remembered, seconds: the server's IDEMPOTENCY_TTL_S (its default
 * and range), which the auditor holds keys to.
 */
export const IDEMPOTENCY_TTL_S = { default: 86_400, min: 60, max: 30 * 86_400 } as const;

/** The largest part of a stream position: Redis keeps both as unsigned 64-bit integers. */
export const MAX_POSITION_PART = 18_446_744_073_709_551_615n;
export const MAX_POSITION = `${MAX_POSITION_PART}-${MAX_POSITION_PART}`;

function isPosition(s: string): boolean {
  if (!POSITION_PATTERN.test(s)) return false;
  const [ms = '', seq = ''] = s.split('-');
  return BigInt(ms) <= MAX_POSITION_PART && BigInt(seq) <= MAX_POSITION_PART;
}

/**
 * A position as Redis writes it, without leading zeros ("007-01" is "7-1"): what every reader
 * compares, some digit by digit (positionBefore), so a position a client gives is decoded to it.
 */
function positionCodec(name: string, valid: (s: string) => boolean): t.Type<string, string, unknown> {
  return new t.Type<string, string, unknown>(
    name,
    (u): u is string => typeof u === 'string' && valid(u),
    (u, c) => {
      if (typeof u !== 'string' || !valid(u)) return t.failure(u, c);
      const [ms = '', seq = ''] = u.split('-');
      return t.success(`${BigInt(ms)}-${BigInt(seq)}`);
    },
    (a) => a,
  );
}

// Redis refuses ids past 64 bits: a position it cannot parse must be a 400 here, not a failed read.
export const Position = withMessage(
  positionCodec('Position', isPosition),
  `a stream position "<ms>-<seq>" such as "1732200000000-0", each part an integer of at most ${MAX_POSITION_PART}`,
);

/** A position to read after: nothing can follow the largest id, and Redis refuses to range after it. */
export const AfterPosition = withMessage(
  positionCodec('AfterPosition', (s) => isPosition(s) && comparePositions(s, MAX_POSITION) < 0),
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

/** Proficiency: a skill's level 1..5 (an agent's) or the minimum a contact needs. */
export const MAX_LEVEL = 5;
/**
 * Skills as routing knows them: an agent with skill X at level L holds "X" and "X#2".."X#L"; a
 * contact needing X at level m or above needs "X#m" ("X" for level 1). Routing only ever asks
 * whether an agent holds every skill a contact needs, so levels need nothing else.
 */
export const ROUTING_SKILL_PATTERN = /^[A-Za-z0-9._-]{1,64}(#[2-5])?$/;
export const routingSkill = (name: string, level: number): string => (level <= 1 ? name : `${name}#${level}`);

/** A skill with a level, as clients write it: `{"name": "Billing", "level": 4}`. */
export type LeveledSkill = { readonly name: string; readonly level: number };
/** A requirement with a minimum level: `{"name": "Billing", "minLevel": 3}`. */
export type Requirement = { readonly name: string; readonly minLevel: number };

const isLevel = (n: unknown): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_LEVEL;

/**
 * A list of skills, each a name or `{name, <levelField>}`, as routing strings: names distinct
 * (one given twice keeps its highest level), 1..32 of them; `expand` turns a name and level into
 * the routing strings it stands for.
 */
function leveledSkills(
  name: string,
  levelField: 'level' | 'minLevel',
  expand: (skill: string, level: number) => string[],
): t.Type<string[], string[], unknown> {
  const itemMessage = `each skill is 1..64 characters of [A-Za-z0-9._-], or {"name": <skill>, "${levelField}": 1..${MAX_LEVEL}}`;
  return withMessage(
    new t.Type<string[], string[], unknown>(
      name,
      (u): u is string[] =>
        Array.isArray(u) && u.every((s) => typeof s === 'string' && ROUTING_SKILL_PATTERN.test(s)),
      (u, c) => {
        if (!Array.isArray(u)) return t.failure(u, c, 'must be an array of skills');
        const levels = new Map<string, number>();
        for (const item of u) {
          let skill: unknown = item;
          let level: unknown = 1;
          if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
            const keys = Object.keys(item);
            if (keys.length !== 2 || !keys.includes('name') || !keys.includes(levelField))
              return t.failure(u, c);
            skill = (item as Record<string, unknown>).name;
            level = (item as Record<string, unknown>)[levelField];
          }
          if (!Skill.is(skill) || !isLevel(level)) return t.failure(u, c);
          levels.set(skill, Math.max(level, levels.get(skill) ?? 0));
        }
        if (levels.size < 1 || levels.size > MAX_SKILLS) return t.failure(u, c);
        return t.success(canonicalSkills([...levels].flatMap(([skill, level]) => expand(skill, level))));
      },
      (a) => a,
    ),
    `1..${MAX_SKILLS} skills; ${itemMessage}`,
  );
}

/** An agent's skills: a name (level 1) or `{name, level}`: it holds the skill at every level up to its own. */
export const AgentSkills = leveledSkills('AgentSkills', 'level', (skill, level) =>
  Array.from({ length: level }, (_, i) => routingSkill(skill, i + 1)),
);
/** What a contact needs: a name (any level) or `{name, minLevel}`. */
export const Requirements = leveledSkills('Requirements', 'minLevel', (skill, level) => [
  routingSkill(skill, level),
]);

/** Skills as commands in the stream carry them: routing strings, made canonical (sorted, distinct). */
export const RoutingSkills = withMessage(
  new t.Type<string[], string[], unknown>(
    'RoutingSkills',
    (u): u is string[] =>
      Array.isArray(u) && u.every((s) => typeof s === 'string' && ROUTING_SKILL_PATTERN.test(s)),
    (u, c) => {
      if (!Array.isArray(u) || !u.every((s) => typeof s === 'string' && ROUTING_SKILL_PATTERN.test(s)))
        return t.failure(u, c);
      const out = canonicalSkills(u as string[]);
      return out.length >= 1 && out.length <= MAX_SKILLS * MAX_LEVEL ? t.success(out) : t.failure(u, c);
    },
    (a) => a,
  ),
  'routing skills: each a skill or <skill>#<2..5>',
);

/** Routing strings back as clients write them: an agent's levels, or a contact's minimums. */
export function publicSkills(
  routing: readonly string[],
  kind: 'agent' | 'contact',
): (string | LeveledSkill | Requirement)[] {
  if (!routing.some((s) => s.includes('#'))) return [...routing];
  const levels = new Map<string, number>();
  for (const s of routing) {
    const at = s.indexOf('#');
    const name = at < 0 ? s : s.slice(0, at);
    const level = at < 0 ? 1 : Number(s.slice(at + 1));
    levels.set(name, Math.max(level, levels.get(name) ?? 0));
  }
  return [...levels].map(([name, level]) =>
    level <= 1 ? name : kind === 'agent' ? { name, level } : { name, minLevel: level },
  );
}

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

const MAX_NAME_CHARS = 200;

/**
 * 1..200 characters, counted as code points (as JSON Schema's maxLength in the OpenAPI document
 * counts them): an emoji or a CJK extension character is one, though two UTF-16 units.
 */
function isNameLength(s: string): boolean {
  if (s.length <= MAX_NAME_CHARS) return s.length >= 1;
  if (s.length > 2 * MAX_NAME_CHARS) return false;
  let chars = 0;
  for (const _ of s) chars++;
  return chars <= MAX_NAME_CHARS;
}

export const Name = withMessage(
  t.refinement(t.string, (s) => isNameLength(s) && isWellFormed(s), 'Name'),
  'a string of 1..200 characters of well-formed Unicode',
);

/**
 * What a name a client gives (an agent's, an API key's) may not hold, since a name is shown as one
 * line (log lines, CSV exports, pages, `keys list`): control characters (C0, DEL, C1: line breaks,
 * tabs, terminal escapes), the line and paragraph separators, and the bidirectional embeddings,
 * overrides and isolates (U+202A..U+202E, U+2066..U+2069), invisible characters that make the
 * text after them read in another order than it is (a spoof). Other invisible characters stay:
 * the bidirectional marks (U+200E, U+200F, U+061C) are part of right-to-left names as people type
 * them, and the zero-width joiners parts of emoji and of words in some scripts.
 */
const NAME_CONTROLS = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
/** How a name with one of them is refused. */
export const NAME_TEXT_RULE =
  'must not contain control characters (line breaks, tabs, escapes) nor bidirectional embeddings, overrides or isolates (U+202A..U+202E, U+2066..U+2069)';

/** Whether a name is free of control characters, line breaks and bidi controls (its length is checked apart). */
export function isNameText(s: string): boolean {
  return !NAME_CONTROLS.test(s);
}

/**
 * A name as clients give it (POST /agents, PATCH /agents/{id}, POST /keys): a Name on one line,
 * without the characters above. Commands in the stream keep `Name`: one appended before this rule
 * still decodes.
 */
export const OneLineName = withMessage(
  t.refinement(Name, isNameText, 'OneLineName'),
  'a string of 1..200 characters of well-formed Unicode, without control characters (line breaks, tabs, escapes) nor bidirectional embeddings, overrides or isolates (U+202A..U+202E, U+2066..U+2069)',
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
    // 1e309 parses as Infinity, which JSON writes as null: a value the client never sent.
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return false;
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
  `a JSON object of at most 16 KiB, nested at most ${MAX_ATTRIBUTES_DEPTH} levels, with well-formed Unicode strings and numbers a double holds`,
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
 * The position right before `p`: the largest one an earlier entry can have (`<ms>-<seq-1>`, or
 * `<ms-1>-<max>` before `<ms>-0`, each part a 64-bit integer as Redis has them); '0-0' has none and
 * is its own. The `after=` that reads on from `p` itself; and no position lies between `a` and `p`
 * when `a` is before `p` and not before `positionPredecessor(p)`.
 */
export function positionPredecessor(p: string): string {
  const [ms = '0', seq = '0'] = p.split('-');
  if (BigInt(seq) > 0n) return `${ms}-${BigInt(seq) - 1n}`;
  if (BigInt(ms) === 0n) return '0-0';
  return `${BigInt(ms) - 1n}-${MAX_POSITION_PART}`;
}

/**
 * The position right after `p`: the smallest one a later entry can have (`<ms>-<seq+1>`, or
 * `<ms+1>-0` after the largest sequence); null after the largest position, which no entry follows.
 */
export function positionSuccessor(p: string): string | null {
  const [ms = '0', seq = '0'] = p.split('-');
  if (BigInt(seq) < MAX_POSITION_PART) return `${ms}-${BigInt(seq) + 1n}`;
  if (BigInt(ms) < MAX_POSITION_PART) return `${BigInt(ms) + 1n}-0`;
  return null;
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
