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
export const Position = withMessage(
  patterned('Position', POSITION_PATTERN, 3, 41),
  'a stream position such as "1732200000000-0"',
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
export const Capacity = withMessage(
  t.refinement(t.number, (n) => Number.isInteger(n) && n >= 1 && n <= 100, 'Capacity'),
  'an integer from 1 to 100',
);
export const Name = withMessage(
  t.refinement(t.string, (s) => s.length >= 1 && s.length <= 200, 'Name'),
  'a string of 1..200 characters',
);
export const Attributes = withMessage(
  t.refinement(t.UnknownRecord, (r) => !Array.isArray(r) && JSON.stringify(r).length <= 16_384, 'Attributes'),
  'a JSON object of at most 16 KiB',
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
      return r._tag === 'Left' ? t.failure(u, c, message) : r;
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

export function positionTime(position: string): number {
  return Number(position.split('-')[0]);
}
