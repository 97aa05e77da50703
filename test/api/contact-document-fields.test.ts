/**
 * The documents' types name every field docs/API.md ("Documents") says a document has: the typed
 * client's `ContactView` and `StateAt.contacts` are built on src/domain/views.ts, so a field missing
 * there is one a TypeScript client cannot read without a cast (a contact's `steps`, `step`,
 * `preferredAgents`, `preferredUntil` were missing). The OpenAPI document's schemas name them too.
 */
import { readFileSync } from 'node:fs';
import type * as t from 'io-ts';
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { AgentDocument, ContactDocument } from '../../src/domain/views.ts';

const doc = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
const documents = doc.slice(doc.indexOf('### Documents'), doc.indexOf('### Events'));
/** The field names of the documented form `- <Name>: \`{a, b?, c: x|y, ...}\``. */
const documented = (name: string): string[] => {
  const at = documents.indexOf(`- ${name}: \``);
  const body = documents.slice(documents.indexOf('{', at) + 1, documents.indexOf('}`', at));
  return body
    .split(',')
    .map((f) => f.trim().split(/[?:\s]/)[0]!)
    .filter(Boolean);
};
const props = (codec: t.IntersectionC<[t.TypeC<t.Props>, t.PartialC<t.Props>]>) => [
  ...Object.keys(codec.types[0].props),
  ...Object.keys(codec.types[1].props),
];
const schema = (name: string) =>
  Object.keys(
    (openapi.components.schemas as unknown as Record<string, { properties: object }>)[name]!.properties,
  );

describe('documents: every documented field in the types and the OpenAPI schemas', () => {
  it('a contact', () => {
    const fields = documented('Contact');
    expect(fields).toContain('preferredUntil');
    expect([...fields].filter((f) => !props(ContactDocument as never).includes(f))).toEqual([]);
    expect(schema('Contact')).toEqual(expect.arrayContaining(fields));
  });
  it('an agent', () => {
    const fields = documented('Agent');
    expect(fields).toContain('wrapUpUntil');
    expect([...fields].filter((f) => !props(AgentDocument as never).includes(f))).toEqual([]);
    expect(schema('Agent')).toEqual(expect.arrayContaining(fields));
  });
});
