/**
 * Command requests at the edges of API.md's rules, against a real Switchboard (in process, real
 * Redis): a body-less command sent with no body, `null` or `{}` is the same request for its
 * Idempotency-Key, and an Idempotency-Key is its workspace's; an empty body under another media
 * type is no body (not a 415); a 400 names every bad part of the request at once (query, body,
 * header); ids with dots and colons, up to 128 characters, round-trip through Location and GET.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand, fingerprintOf } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'cmd-edges';
const OTHER = 'cmd-edges-other';
const api = inProcessApi([WS, OTHER]);
const B = `/v1/workspaces/${WS}`;

interface Sent {
  readonly status: number;
  readonly headers: Record<string, string | string[] | number | undefined>;
  readonly body: Record<string, unknown>;
}

/** A request with a raw body (JSON text, sent as application/json) and headers. */
async function send(
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  raw?: string,
  headers: Record<string, string> = {},
): Promise<Sent> {
  const res = await api.running.api!.inject({
    method,
    url,
    ...(raw !== undefined ? { payload: raw } : {}),
    headers: { ...(raw !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
  });
  return { status: res.statusCode, headers: res.headers, body: res.json() };
}

const streamLength = () => api.running.redis.xlen(workspaceKeys(WS).commands);

describe('a body-less command and its Idempotency-Key', () => {
  it('no body, null and {} are one request: the repeat is replayed, not refused as a reused key', async () => {
    for (const [i, [first, second]] of (
      [
        [undefined, '{}'],
        ['{}', undefined],
        ['{}', 'null'],
        [' { } ', '{}'],
      ] as const
    ).entries()) {
      const id = `bodyless-${i}`;
      expect(
        (await send('POST', `${B}/contacts`, JSON.stringify({ id, skills: ['nobody-has-it'] }))).status,
      ).toBe(201);
      const h = { 'idempotency-key': `bodyless-key-${i}` };
      const a = await send('POST', `${B}/contacts/${id}/abandon`, first, h);
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      const len = await streamLength();
      const b = await send('POST', `${B}/contacts/${id}/abandon`, second, h);
      expect(b.status, JSON.stringify(b.body)).toBe(200);
      expect(b.headers['idempotent-replayed']).toBe('true');
      expect(b.body).toEqual(a.body);
      expect(await streamLength()).toBe(len);
    }
  });

  it('a key recorded for a {} body before no body and {} were one request still matches its retry', async () => {
    // What this route recorded until now for `{}`: the body as sent. Its retry is the same request.
    const id = 'bodyless-recorded';
    expect(
      (await send('POST', `${B}/contacts`, JSON.stringify({ id, skills: ['nobody-has-it'] }))).status,
    ).toBe(201);
    const parts = ['POST', '/v1/workspaces/:ws/contacts/:id/abandon', { ws: WS, id }] as const;
    expect(fingerprintOf(...parts, {})).not.toBe(fingerprintOf(...parts, null));
    const first = await appendCommand(api.running.redis, {
      workspace: WS,
      command: { type: 'AbandonContact', contactId: id },
      idempotencyKey: 'bodyless-recorded-key',
      fingerprint: fingerprintOf(...parts, {}),
    });
    const h = { 'idempotency-key': 'bodyless-recorded-key' };
    const again = await send('POST', `${B}/contacts/${id}/abandon`, '{}', h);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toMatchObject({ id, state: 'abandoned', position: first.position });
    expect((await send('POST', `${B}/contacts/${id}/complete`, '{}', h)).status).toBe(422);
  });
});

describe("an Idempotency-Key is its workspace's", () => {
  it('the same key and body in another workspace is another request, applied there', async () => {
    const h = { 'idempotency-key': 'per-workspace' };
    const body = '{"wrapUpMs":5}';
    const here = await send('PUT', `${B}/settings`, body, h);
    const there = await send('PUT', `/v1/workspaces/${OTHER}/settings`, body, h);
    expect([here.status, there.status]).toEqual([200, 200]);
    expect(there.headers['idempotent-replayed']).toBeUndefined();
    expect(there.body.position).not.toBe(here.body.position);
    expect((await send('GET', `/v1/workspaces/${OTHER}/settings`)).body.wrapUpMs).toBe(5);
  });
});

describe('a body-less command with an empty body under another media type', () => {
  it("is the command without a body (fetch's body '' and curl's -d '' send one), not a 415", async () => {
    const id = 'typed-empty';
    expect(
      (await send('POST', `${B}/contacts`, JSON.stringify({ id, skills: ['nobody-has-it'] }))).status,
    ).toBe(201);
    for (const type of ['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded']) {
      const gone = await send('DELETE', `${B}/agents/nobody-here`, '', { 'content-type': type });
      expect(gone.status, `${type}: ${JSON.stringify(gone.body)}`).toBe(404);
      expect(gone.body.type).toBe('/problems/agent-not-found');
    }
    const r = await send('POST', `${B}/contacts/${id}/abandon`, '', {
      'content-type': 'text/plain;charset=UTF-8',
      'content-length': '0',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.state).toBe('abandoned');
    // fetch itself, over a socket: `body: ''` goes as text/plain with Content-Length 0.
    const { port } = api.running.api!.server.address() as { port: number };
    const fetched = await fetch(`http://127.0.0.1:${port}${B}/agents/nobody-here`, {
      method: 'DELETE',
      body: '',
    });
    expect(fetched.status, await fetched.clone().text()).toBe(404);
    expect(((await fetched.json()) as { type: string }).type).toBe('/problems/agent-not-found');
    // A command that needs a body names it, as without a Content-Type.
    const bodiless = await send('POST', `${B}/agents`, '', {
      'content-type': 'text/plain',
      'content-length': '0',
    });
    expect(bodiless.status).toBe(400);
    expect(bodiless.body.errors).toEqual([{ path: '(body)', message: 'must be a JSON object' }]);
    // A JSON body of whitespace alone (a tool's lone newline) is no body either (docs/API.md).
    const blank = await send('DELETE', `${B}/agents/nobody-here`, ' \n', {
      'content-type': 'application/json',
    });
    expect(blank.status, JSON.stringify(blank.body)).toBe(404);
    const blankCreate = await send('POST', `${B}/agents`, '\n', { 'content-type': 'application/json' });
    expect(blankCreate.status).toBe(400);
    expect(blankCreate.body.errors).toEqual([{ path: '(body)', message: 'must be a JSON object' }]);
    // A body that is there is still read as JSON only.
    const text = await send('POST', `${B}/contacts/${id}/abandon`, 'x', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.body.type).toBe('/problems/unsupported-media-type');
  });
});

describe('a 400 names every bad part of the request', () => {
  it('a bad body and a bad Idempotency-Key: both named, nothing appended', async () => {
    const len = await streamLength();
    const r = await send('POST', `${B}/contacts`, '{"skills":[],"priority":10}', {
      'idempotency-key': 'has space',
    });
    expect(r.status).toBe(400);
    expect(r.body.type).toBe('/problems/invalid-request');
    const paths = (r.body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['Idempotency-Key', 'priority', 'skills']);
    expect(String(r.body.detail)).toMatch(/Idempotency-Key/);
    expect(await streamLength()).toBe(len);
  });

  it('a query parameter and a bad body: both named', async () => {
    const r = await send('PATCH', `${B}/agents/someone?force=1`, '{"capacity":0}');
    expect(r.status).toBe(400);
    const paths = (r.body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['capacity', 'force']);
  });

  it('a field left out that must be there is said to be required, with what it takes', async () => {
    const cases: [string, string, string | undefined, string][] = [
      ['POST', `${B}/contacts`, '{}', 'skills'],
      ['POST', `${B}/agents`, '{"skills":["s"]}', 'id'],
      ['POST', `${B}/agents/someone/state`, '{}', 'state'],
      ['GET', `${B}/stats/intervals?from=2026-12-05T00:00:00Z`, undefined, 'to'],
    ];
    for (const [method, url, body, field] of cases) {
      const r = await send(method as 'POST' | 'GET', url, body);
      expect(r.status, url).toBe(400);
      const named = (r.body.errors as { path: string; message: string }[]).find((e) => e.path === field);
      expect(named?.message, `${url}: ${JSON.stringify(r.body.errors)}`).toMatch(/^is required: \S/);
      expect(String(r.body.detail)).toContain(`${field} is required: `);
    }
    // A field that is there and bad is not said to be missing.
    const bad = await send('POST', `${B}/contacts`, '{"skills":[]}');
    expect((bad.body.errors as { message: string }[])[0]!.message).not.toMatch(/required/);
  });

  it('a bad Idempotency-Key alone is named as before', async () => {
    const r = await send('DELETE', `${B}/agents/someone`, undefined, { 'idempotency-key': 'x'.repeat(201) });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ path: 'Idempotency-Key', message: expect.any(String) }]);
  });
});

describe('ids with dots and colons, up to 128 characters', () => {
  it('round-trip through Location and GET, for agents and contacts', async () => {
    const ids = [`a.b:c-${'x'.repeat(122)}`, '...', 'x.', ':', 'urn:tel:_1'];
    expect(ids[0]!.length).toBe(128);
    for (const id of ids) {
      const agent = await send('POST', `${B}/agents`, JSON.stringify({ id, skills: ['s'] }));
      expect(agent.status, id).toBe(201);
      const at = String(agent.headers.location);
      expect((await send('GET', at)).body.id).toBe(id);
      expect((await send('PATCH', at, '{"name":"N"}')).body.name).toBe('N');
      const contact = await send('POST', `${B}/contacts`, JSON.stringify({ id, skills: ['nobody-has-it'] }));
      expect(contact.status, id).toBe(201);
      const cat = String(contact.headers.location);
      expect((await send('GET', cat)).body.id).toBe(id);
      expect((await send('POST', `${cat}/abandon`)).body.state).toBe('abandoned');
      expect((await send('DELETE', at)).status).toBe(200);
    }
  });
});
