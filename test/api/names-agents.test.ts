/**
 * An agent's name is one line of text, as a key's is: a name with a control character (a line
 * break, a tab, an escape, NUL, DEL, a C1 control), a line or paragraph separator, or a
 * bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE and its kin, which make a name read
 * differently from what it is) is a 400 naming `name` on POST /agents and PATCH /agents/{id}, and
 * nothing is appended. Every printable name (any script, emoji sequences, joiners) stays a name.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'api-names-agents';
const api = inProcessApi([WS]);

const BAD_NAMES = [
  'Ana\nadmin',
  'Ana\r',
  'tab\there',
  'nul\u0000',
  'esc \u001b[31mred',
  'del\u007f',
  'c1\u0085',
  'line\u2028sep',
  'para\u2029sep',
  // Bidirectional controls: overrides, embeddings, isolates (the marks stay: see below).
  'Ana \u202egnp.exe',
  'lre\u202a',
  'rle\u202b',
  'pdf\u202c',
  'lro\u202d',
  'lri\u2066',
  'rli\u2067',
  'fsi\u2068',
  'pdi\u2069',
];

// Printable today, printable tomorrow: spaces, punctuation, any script, emoji (with a zero-width
// joiner), a Persian word with a zero-width non-joiner, a backslash and quotes.
const GOOD_NAMES = [
  'Ana María (Team B) – eu-west',
  '呼叫中心 🎧',
  '👩‍💻 Ana',
  'می‌خواهم',
  'שרה כהן',
  'a\\b "quoted"',
  // The bidirectional marks, as right-to-left names are typed: they reorder nothing after them.
  'שרה\u200f (ops)',
  'lrm\u200e',
  'alm\u061c',
];

const commands = () => api.running.redis.xlen(workspaceKeys(WS).commands);

describe('agent names', () => {
  it('POST /agents refuses a name with a control or bidi character: 400 naming name, nothing appended', async () => {
    const before = await commands();
    for (const name of BAD_NAMES) {
      const what = JSON.stringify(name);
      const body = await api.problem(
        'POST',
        WS,
        '/agents',
        { id: 'bad', skills: ['x'], name },
        400,
        'invalid-request',
      );
      const errors = body.errors as { path: string; message: string }[];
      expect(
        errors.map((e) => e.path),
        what,
      ).toEqual(['name']);
      expect(errors[0]!.message, what).toMatch(/control characters/);
    }
    expect(await commands()).toBe(before);
    const missing = await api.call('GET', `/v1/workspaces/${WS}/agents/bad`);
    expect(missing.status).toBe(404);
  });

  it('PATCH /agents/{id} refuses one too, and the name stays as it was', async () => {
    await api.ok('POST', WS, '/agents', { id: 'ana', skills: ['x'], name: 'Ana' });
    const before = await commands();
    for (const name of BAD_NAMES) {
      const body = await api.problem('PATCH', WS, '/agents/ana', { name }, 400, 'invalid-request');
      expect((body.errors as { path: string }[]).map((e) => e.path)).toEqual(['name']);
    }
    expect(await commands()).toBe(before);
    expect(await api.ok('GET', WS, '/agents/ana')).toMatchObject({ name: 'Ana' });
  });

  it('printable names stay names, as given', async () => {
    for (const [i, name] of GOOD_NAMES.entries()) {
      const made = await api.ok('POST', WS, '/agents', { id: `good-${i}`, skills: ['x'], name });
      expect(made).toMatchObject({ id: `good-${i}`, name });
      const changed = await api.ok('PATCH', WS, `/agents/good-${i}`, { name: `${name}!` });
      expect(changed).toMatchObject({ name: `${name}!` });
    }
  });
});
