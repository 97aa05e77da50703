import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import type * as t from 'io-ts';
import { describe, expect, it } from 'vitest';
import {
  ChangeAgentStateBody,
  Command,
  commandTarget,
  QueueContactBody,
  RegisterAgentBody,
  UpdateAgentBody,
} from '../../src/domain/commands.ts';
import { type FieldError, fieldErrors } from '../../src/domain/strict.ts';
import {
  AfterPosition,
  Attributes,
  Capacity,
  canonicalSkills,
  comparePositions,
  Id,
  MAX_ATTRIBUTES_DEPTH,
  MAX_SKILLS,
  Name,
  Position,
  Priority,
  positionTime,
  Skill,
  Skills,
  skillSetName,
  WorkspaceId,
} from '../../src/domain/values.ts';

function decoded<A>(codec: t.Decoder<unknown, A>, value: unknown): A {
  const r = codec.decode(value);
  if (isLeft(r))
    throw new Error(`expected ${JSON.stringify(value)} to decode: ${JSON.stringify(fieldErrors(r.left))}`);
  return r.right;
}

function errorsOf(codec: t.Decoder<unknown, unknown>, value: unknown): FieldError[] {
  const r = codec.decode(value);
  if (isRight(r)) throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
  return fieldErrors(r.left);
}

/** The field an error is about: the last segment of its dotted path. */
const fieldOf = (e: FieldError) => e.path.split('.').pop();

describe('value codecs', () => {
  it('Id takes 1..128 characters of [A-Za-z0-9._:-], but not the dot segments "." and ".."', () => {
    for (const ok of ['a', 'agent-7', 'A.b_c:d-e', '...', '.a', 'x'.repeat(128)])
      expect(Id.is(ok) && Id.decode(ok)._tag).toBe('Right');
    for (const bad of ['', '.', '..', 'a b', 'a/b', 'é', 'x'.repeat(129), 7, null])
      expect(Id.decode(bad)._tag).toBe('Left');
    expect(errorsOf(Id, 'a b')).toEqual([
      { path: '(body)', message: '1..128 characters of [A-Za-z0-9._:-], not "." or ".."' },
    ]);
  });

  it('WorkspaceId and Skill have their own alphabets', () => {
    expect(WorkspaceId.decode('team_1-eu')._tag).toBe('Right');
    expect(WorkspaceId.decode('a:b')._tag).toBe('Left'); // ':' would break the key layout
    expect(WorkspaceId.decode('x'.repeat(65))._tag).toBe('Left');
    expect(Skill.decode('English.v2')._tag).toBe('Right');
    expect(Skill.decode('a,b')._tag).toBe('Left'); // ',' joins skill-set names
    expect(Skill.decode('a:b')._tag).toBe('Left');
  });

  it('Skills are canonicalised: duplicates merged, sorted in byte order', () => {
    expect(decoded(Skills, ['Support', 'English', 'Support'])).toEqual(['English', 'Support']);
    expect(decoded(Skills, ['b', 'B', 'a', '_'])).toEqual(['B', '_', 'a', 'b']);
    expect(canonicalSkills(['s10', 's2', 's1', 's2'])).toEqual(['s1', 's10', 's2']);
    expect(skillSetName(['Support', 'English'])).toBe('English,Support');
    // 33 entries that are 32 distinct skills are fine; 33 distinct are not.
    expect(decoded(Skills, [...Array.from({ length: 32 }, (_, i) => `s${i}`), 's0'])).toHaveLength(
      MAX_SKILLS,
    );
    expect(Skills.decode(Array.from({ length: 33 }, (_, i) => `s${i}`))._tag).toBe('Left');
    expect(Skills.decode([])._tag).toBe('Left');
    expect(Skills.decode('English')._tag).toBe('Left');
    expect(Skills.decode(['ok', 'not ok'])._tag).toBe('Left');
  });

  it('Priority is an integer 0..9 and Capacity 1..100', () => {
    for (const p of [0, 5, 9]) expect(Priority.decode(p)._tag).toBe('Right');
    for (const p of [-1, 10, 1.5, '1', null]) expect(Priority.decode(p)._tag).toBe('Left');
    for (const c of [1, 100]) expect(Capacity.decode(c)._tag).toBe('Right');
    for (const c of [0, 101, 2.5, '2']) expect(Capacity.decode(c)._tag).toBe('Left');
  });

  it('Attributes are a JSON object of at most 16 KiB', () => {
    expect(decoded(Attributes, { vip: true, tags: [] })).toEqual({ vip: true, tags: [] });
    expect(Attributes.decode([1, 2])._tag).toBe('Left');
    expect(Attributes.decode('x')._tag).toBe('Left');
    expect(Attributes.decode({ blob: 'x'.repeat(17_000) })._tag).toBe('Left');
  });

  it(`Attributes nest at most ${MAX_ATTRIBUTES_DEPTH} levels, checked without recursion`, () => {
    const nest = (levels: number, inner: (v: unknown) => unknown): unknown => {
      let v: unknown = 1;
      for (let i = 1; i < levels; i++) v = inner(v);
      return { top: v };
    };
    expect(Attributes.decode(nest(MAX_ATTRIBUTES_DEPTH, (v) => ({ a: v })))._tag).toBe('Right');
    expect(Attributes.decode(nest(MAX_ATTRIBUTES_DEPTH, (v) => [v]))._tag).toBe('Right');
    expect(Attributes.decode(nest(MAX_ATTRIBUTES_DEPTH + 1, (v) => ({ a: v })))._tag).toBe('Left');
    expect(Attributes.decode(nest(MAX_ATTRIBUTES_DEPTH + 1, (v) => [v]))._tag).toBe('Left');
    // Deeper than JSON.stringify can recurse: refused, not a RangeError.
    expect(Attributes.decode(nest(200_000, (v) => ({ a: v })))._tag).toBe('Left');
  });

  it('strings a body carries are well-formed Unicode: no lone surrogate', () => {
    expect(decoded(Name, 'Ana 😀 é')).toBe('Ana 😀 é');
    for (const bad of ['\ud800', 'x\udfff', '\ude00\ud83d', '😀\ud83d'])
      expect(Name.decode(bad)._tag, JSON.stringify(bad)).toBe('Left');
    expect(decoded(Attributes, { emoji: '😀', '😀': ['ok'] })).toEqual({ emoji: '😀', '😀': ['ok'] });
    expect(Attributes.decode({ note: '\ud800' })._tag).toBe('Left');
    expect(Attributes.decode({ '\udc00': 1 })._tag).toBe('Left');
    expect(Attributes.decode({ a: [{ b: ['ok', '\udbff'] }] })._tag).toBe('Left');
  });

  it('a name is 1..200 characters (code points, as the OpenAPI maxLength counts them), not UTF-16 units', () => {
    // 200 emoji are 400 UTF-16 units: still 200 characters.
    expect(decoded(Name, '😀'.repeat(200))).toBe('😀'.repeat(200));
    expect(decoded(Name, `${'𠀀'.repeat(199)}a`)).toHaveLength(399);
    for (const bad of ['', '😀'.repeat(201), 'a'.repeat(201)])
      expect(Name.decode(bad)._tag, `${bad.length} units`).toBe('Left');
  });

  it('positions order by milliseconds, then sequence, beyond 2^53', () => {
    expect(Position.decode('1732200000000-0')._tag).toBe('Right');
    expect(Position.decode('1732200000000')._tag).toBe('Left');
    // Each part is an unsigned 64-bit integer, as Redis stream ids are.
    expect(Position.decode('18446744073709551615-18446744073709551615')._tag).toBe('Right');
    expect(Position.decode('0018446744073709551615-0')._tag).toBe('Left');
    for (const p of ['18446744073709551616-0', '0-18446744073709551616', '0-99999999999999999999'])
      expect(Position.decode(p)._tag, p).toBe('Left');
    expect(AfterPosition.decode('18446744073709551615-18446744073709551614')._tag).toBe('Right');
    expect(AfterPosition.decode('18446744073709551615-18446744073709551615')._tag).toBe('Left');
    expect(comparePositions('9-0', '10-0')).toBe(-1);
    expect(comparePositions('10-2', '10-10')).toBe(-1);
    expect(comparePositions('10-3', '10-3')).toBe(0);
    expect(comparePositions('18446744073709551615-1', '18446744073709551615-0')).toBe(1);
    expect(positionTime('1732200000123-7')).toBe(1732200000123);
  });
});

describe('request bodies', () => {
  it('RegisterAgentBody: required id and skills, optional name and capacity', () => {
    expect(decoded(RegisterAgentBody, { id: 'a1', skills: ['Support', 'English'] })).toEqual({
      id: 'a1',
      skills: ['English', 'Support'],
    });
    expect(decoded(RegisterAgentBody, { id: 'a1', skills: ['x'], name: 'Ann', capacity: 3 })).toEqual({
      id: 'a1',
      skills: ['x'],
      name: 'Ann',
      capacity: 3,
    });
    const missing = errorsOf(RegisterAgentBody, { id: 'a1' });
    expect(missing.map(fieldOf)).toEqual(['skills']);
  });

  it('names every unknown field, next to the invalid ones', () => {
    const errors = errorsOf(RegisterAgentBody, { id: 'a b', skils: ['x'], skills: ['x'], colour: 'red' });
    expect(errors).toContainEqual({ path: 'skils', message: 'is not a known field' });
    expect(errors).toContainEqual({ path: 'colour', message: 'is not a known field' });
    expect(errors.filter((e) => fieldOf(e) === 'id')).toEqual([
      expect.objectContaining({ message: '1..128 characters of [A-Za-z0-9._:-], not "." or ".."' }),
    ]);
    expect(errors).toHaveLength(3);
  });

  it('reports each bad field once, with the codec message', () => {
    const errors = errorsOf(QueueContactBody, { skills: ['a', 'bad skill'], priority: 10, attributes: [1] });
    expect(errors.map(fieldOf).sort()).toEqual(['attributes', 'priority', 'skills']);
    expect(errors.find((e) => fieldOf(e) === 'priority')?.message).toBe('an integer from 0 to 9');
    expect(errors.find((e) => fieldOf(e) === 'attributes')?.message).toBe(
      'a JSON object of at most 16 KiB, nested at most 32 levels, with well-formed Unicode strings and numbers a double holds',
    );
  });

  it('paths of invalid fields are the field names, dotted (API.md), with no codec internals', () => {
    expect(errorsOf(RegisterAgentBody, { id: 'a1', skills: ['a'], capacity: 0 })).toEqual([
      {
        path: 'capacity',
        message:
          'an integer from 1 to 100 (contacts at once on any channel), or an object of 1..16 channels, each an integer from 1 to 100, such as {"voice": 1, "chat": 3}',
      },
    ]);
    expect(
      errorsOf(QueueContactBody, { skills: ['a'], priority: 10, id: 'x y' })
        .map((e) => e.path)
        .sort(),
    ).toEqual(['id', 'priority']);
  });

  it('capacity per channel and a contact channel: channel names checked, channels in byte order', () => {
    expect(decoded(RegisterAgentBody, { id: 'a', skills: ['x'], capacity: { voice: 1, chat: 3 } })).toEqual({
      id: 'a',
      skills: ['x'],
      capacity: { chat: 3, voice: 1 },
    });
    expect(
      Object.keys(
        (
          decoded(RegisterAgentBody, { id: 'a', skills: ['x'], capacity: { voice: 1, chat: 3 } }) as {
            capacity: object;
          }
        ).capacity,
      ),
    ).toEqual(['chat', 'voice']);
    for (const capacity of [
      {},
      { Voice: 1 },
      { voice: 0 },
      { voice: 101 },
      { voice: 1.5 },
      { '1x': 1 },
      [1],
      'voice',
    ])
      expect(errorsOf(RegisterAgentBody, { id: 'a', skills: ['x'], capacity }).map((e) => e.path)).toEqual([
        'capacity',
      ]);
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`c${i}`, 1]));
    expect(errorsOf(UpdateAgentBody, { capacity: many }).map((e) => e.path)).toEqual(['capacity']);
    expect(decoded(QueueContactBody, { skills: ['a'], channel: 'chat' })).toEqual({
      skills: ['a'],
      channel: 'chat',
    });
    for (const channel of ['', 'Chat', 'x y', 'a'.repeat(33), 3, null])
      expect(errorsOf(QueueContactBody, { skills: ['a'], channel }).map((e) => e.path)).toEqual(['channel']);
  });

  it('rejects bodies that are not objects', () => {
    for (const body of [null, [], 'x', 3]) {
      expect(errorsOf(UpdateAgentBody, body)).toEqual([{ path: '(body)', message: 'must be a JSON object' }]);
    }
  });

  it('UpdateAgentBody: every field optional, undefined ones dropped', () => {
    expect(decoded(UpdateAgentBody, {})).toEqual({});
    expect(decoded(UpdateAgentBody, { name: undefined, capacity: 2, skills: ['b', 'a'] })).toEqual({
      capacity: 2,
      skills: ['a', 'b'],
    });
    expect(errorsOf(UpdateAgentBody, { id: 'a2' })).toEqual([
      { path: 'id', message: 'is not a known field' },
    ]);
  });

  it('ChangeAgentStateBody: available, away or offline', () => {
    for (const state of ['available', 'away', 'offline'])
      expect(decoded(ChangeAgentStateBody, { state })).toEqual({ state });
    for (const state of ['busy', 'wrapup', 'AVAILABLE', undefined])
      expect(errorsOf(ChangeAgentStateBody, { state }).map(fieldOf)).toEqual(['state']);
  });

  it('QueueContactBody: skills required; id, priority, attributes optional', () => {
    expect(
      decoded(QueueContactBody, {
        skills: ['Support', 'English'],
        id: 'c1',
        priority: 9,
        attributes: { x: 1 },
      }),
    ).toEqual({ skills: ['English', 'Support'], id: 'c1', priority: 9, attributes: { x: 1 } });
    expect(decoded(QueueContactBody, { skills: ['a'] })).toEqual({ skills: ['a'] });
    expect(errorsOf(QueueContactBody, { skills: ['a'], prio: 1 })).toEqual([
      { path: 'prio', message: 'is not a known field' },
    ]);
  });
});

describe('stream commands', () => {
  it('decodes each command type, skills canonical', () => {
    const cases: unknown[] = [
      { type: 'RegisterAgent', agentId: 'a', skills: ['b', 'a', 'b'], capacity: 2, name: 'Ann' },
      { type: 'UpdateAgent', agentId: 'a', capacity: 1 },
      { type: 'ChangeAgentState', agentId: 'a', state: 'away' },
      { type: 'RemoveAgent', agentId: 'a' },
      { type: 'QueueContact', contactId: 'c', skills: ['z', 'a'], priority: 3, attributes: {} },
      { type: 'AbandonContact', contactId: 'c' },
      { type: 'CompleteContact', contactId: 'c' },
    ];
    for (const c of cases) expect(Command.decode(c)._tag).toBe('Right');
    const reg = decoded(Command, cases[0]);
    expect(reg.type === 'RegisterAgent' && reg.skills).toEqual(['a', 'b']);
    const q = decoded(Command, cases[4]);
    expect(q.type === 'QueueContact' && q.skills).toEqual(['a', 'z']);
  });

  it('rejects unknown types and missing or invalid fields', () => {
    expect(Command.decode({ type: 'Nope' })._tag).toBe('Left');
    expect(Command.decode({ type: 'RegisterAgent', agentId: 'a', skills: ['x'] })._tag).toBe('Left'); // no capacity
    expect(Command.decode({ type: 'QueueContact', contactId: 'c', skills: ['x'], priority: 12 })._tag).toBe(
      'Left',
    );
    expect(Command.decode({ type: 'ChangeAgentState', agentId: 'a', state: 'busy' })._tag).toBe('Left');
  });

  it('commandTarget names the document a command is about', () => {
    expect(commandTarget({ type: 'RemoveAgent', agentId: 'a1' })).toEqual({ kind: 'agent', id: 'a1' });
    expect(commandTarget({ type: 'AbandonContact', contactId: 'c1' })).toEqual({ kind: 'contact', id: 'c1' });
  });
});
