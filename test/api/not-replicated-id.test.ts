/**
 * A 503 not-replicated to a command about a document names it, as the 201 and the 202 do: with
 * DURABILITY=replicated and a Redis with no replica, POST /contacts without an id answers 503 with
 * the `id` the server made (besides `commandId` and `position`), so the client can read the
 * contact the command may still make; a retry with the same Idempotency-Key names the same id
 * (the first request's, not one made for the retry). Every member is declared in the OpenAPI
 * document's Problem.
 */
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'api-not-replicated-id';
// A standalone Redis has no replica: every command is a 503 not-replicated (the single target
// only: vitest.config.ts).
const api = inProcessApi([WS], { env: { DURABILITY: 'replicated', REPLICA_WAIT_MS: '10' } });

const declared = new Set(Object.keys(openapi.components.schemas.Problem.properties));

async function post(path: string, payload: unknown, key: string) {
  const res = await api.running.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${WS}${path}`,
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    payload: JSON.stringify(payload),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

describe('503 not-replicated names the document', () => {
  it('POST /contacts without an id: the 503 carries the id the server made, and its retry the same', async () => {
    const first = await post('/contacts', { skills: ['x'] }, 'contact-1');
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    expect(first.body).toMatchObject({
      type: '/problems/not-replicated',
      appended: true,
      applied: 'unknown',
    });
    expect(first.body.id, JSON.stringify(first.body)).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.body.commandId).toEqual(expect.any(String));
    expect(first.body.position).toEqual(expect.any(String));
    expect([...Object.keys(first.body)].filter((m) => !declared.has(m))).toEqual([]);
    // The command was appended and applies: the contact is where the id says.
    await api.until(WS, `/contacts/${first.body.id}`, (c) => c.id === first.body.id);

    const retry = await post('/contacts', { skills: ['x'] }, 'contact-1');
    expect(retry.status).toBe(503);
    expect(retry.body).toMatchObject({ id: first.body.id, commandId: first.body.commandId });
  });

  it('POST /agents: the 503 carries the agent id', async () => {
    const r = await post('/agents', { id: 'ana', skills: ['x'] }, 'agent-1');
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ type: '/problems/not-replicated', id: 'ana' });
  });
});
