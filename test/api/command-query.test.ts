/**
 * A command is all in its path and body. A field given as a query parameter
 * (`POST /contacts?priority=9`) was not read, and the command applied without it (priority 0, an id
 * of the server's): it is a 400 naming the parameter, and nothing is appended.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';

const WS = 'command-query';
const api = inProcessApi([WS]);

describe('query parameters on commands', () => {
  it('are a 400 naming each; nothing is appended', async () => {
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['x'] });
    const before = (await api.ok('GET', WS, '/events')).events;
    const named = async (method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, payload?: unknown) =>
      (
        (await api.problem(method, WS, path, payload, 400, 'invalid-request')).errors as { path: string }[]
      ).map((e) => e.path);
    expect(await named('POST', '/contacts?priority=9&id=c1', { skills: ['x'] })).toEqual(['priority', 'id']);
    expect(await named('POST', '/agents/a1/state?state=away', { state: 'available' })).toEqual(['state']);
    expect(await named('PUT', '/settings?wrapUpMs=5000', {})).toEqual(['wrapUpMs']);
    expect(await named('PATCH', '/agents/a1?name=x', { name: 'y' })).toEqual(['name']);
    expect(await named('DELETE', '/agents/a1?force=1')).toEqual(['force']);
    expect((await api.ok('GET', WS, '/events')).events).toEqual(before);
    // Without one, as before.
    expect((await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['x'], priority: 9 })).priority).toBe(
      9,
    );
  });
});
