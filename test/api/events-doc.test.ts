/**
 * The events as documented: every event type Switchboard writes is named in docs/API.md's list of
 * types, its fact data described there and in the OpenAPI document's Event schema, and every
 * member the envelope's meta may carry is named in docs/API.md's envelope and the OpenAPI Event.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { EVENT_TYPES, EventMeta } from '../../src/domain/events.ts';

const doc = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
const section = (from: string, to: string) =>
  doc.slice(doc.indexOf(from), doc.indexOf(to, doc.indexOf(from)));

describe('docs/API.md and the OpenAPI document name every event type and meta member', () => {
  it('every type in the list, with its fact data, in both', () => {
    const list = section('Types include', '.\n');
    const facts = section('- Fact data:', '\n- `at`');
    const event = openapi.components.schemas.Event.properties;
    for (const type of EVENT_TYPES) {
      expect(list, type).toContain(type);
      if (type !== 'AssignmentMade') expect(facts, type).toContain(`\`${type}\``);
      expect(event.data.description, type).toContain(type);
    }
  });

  it("every meta member in the envelope's description, in both", () => {
    const envelope = section('Envelope, the same everywhere', 'Types include');
    for (const name of Object.keys(EventMeta.props)) {
      expect(envelope, name).toContain(`${name}?`);
      expect(openapi.components.schemas.Event.properties.meta.description, name).toContain(name);
    }
  });
});
