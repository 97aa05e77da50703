/**
 * A contact's document in each state (queued, offered, assigned, completed, abandoned), from
 * `GET /contacts/{id}`, a command's answer and `GET /state?at=`, and a page of `GET /events`, each
 * valid against the OpenAPI document's schemas, and those schemas say which fields are always
 * there. `Contact` and the `GET /events` page once required none, so a client generated from
 * the document had to treat a contact's `state` or a page's `next` as possibly missing.
 * `channel` is left out of the required fields: a contact written before channels has none
 * (src/domain/views.ts), though docs/API.md lists it without `?`.
 */
import { describe, expect, it } from 'vitest';
import { ContactDocument } from '../../src/domain/views.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { componentValidator, doc, getAnswerSchema, getAnswerValidator } from '../support/openapi-schemas.ts';

const WS = 'contact-document-edges-1';
const api = inProcessApi([WS]);
const { ok, until } = api;

const validContact = componentValidator('Contact');
const validPage = getAnswerValidator('/v1/workspaces/{ws}/events');

const checkValid = (label: string, d: unknown) => {
  expect(validContact(d), `${label}: ${JSON.stringify(validContact.errors)} in ${JSON.stringify(d)}`).toBe(
    true,
  );
};

describe('the contact document and the events page against the OpenAPI schemas', () => {
  it('require the fields every document has', () => {
    expect(doc.components.schemas.Contact!.required).toEqual(Object.keys(ContactDocument.types[0].props));
    expect(getAnswerSchema('/v1/workspaces/{ws}/events').required).toEqual(['events', 'next']);
  });

  it('gives documents valid against them in every state', async () => {
    await ok('PUT', WS, '/settings', { offerTimeoutMs: 60_000 });
    await ok('POST', WS, '/agents', { id: 'a1', skills: ['s'] });
    const queued = await ok('POST', WS, '/contacts', { id: 'c1', skills: ['s'], attributes: { v: 1 } });
    checkValid('queued (command)', queued);
    await ok('POST', WS, '/agents/a1/state', { state: 'available' });
    checkValid('offered', await until(WS, '/contacts/c1', (c) => c.state === 'offered'));
    checkValid('accepted', await ok('POST', WS, '/contacts/c1/accept', { agentId: 'a1' }));
    checkValid('completed', await ok('POST', WS, '/contacts/c1/complete', {}));
    await ok('POST', WS, '/agents/a1/state', { state: 'away' });
    await ok('POST', WS, '/contacts', { id: 'c2', skills: ['s'], maxWaitMs: 60_000 });
    checkValid('abandoned', await ok('POST', WS, '/contacts/c2/abandon', {}));

    const page = await ok('GET', WS, '/events?limit=1000');
    expect(validPage(page), JSON.stringify(validPage.errors)).toBe(true);
    const events = page.events as { position: string }[];
    const state = await ok('GET', WS, `/state?at=${events[events.length - 1]!.position}`);
    for (const c of state.contacts as Json[]) checkValid(`state?at= ${c.id}`, c);
    expect((state.contacts as Json[]).length).toBe(2);
  });
});
