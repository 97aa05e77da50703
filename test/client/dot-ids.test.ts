/**
 * ids with `.`, `:` and the dot segments `.` / `..` in paths. Ids are 1..128 of
 * [A-Za-z0-9._:-] but not "." nor "..", which the server refuses (400): in a URL path they are dot
 * segments, which fetch resolves away (getAgent('.') became GET /agents, the list). An empty id
 * is no segment at all (getAgent('') was GET /agents/, the list too).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, failure, startClientFixture } from './fixture.ts';

const WS = 'client-ids';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

/** A client of the workspace that notes each request it sends. */
function recording() {
  const sent: string[] = [];
  const c = p.client(WS, {
    fetch: (url, init) => {
      sent.push(`${init?.method} ${url}`);
      return fetch(url, init);
    },
  });
  return { c, sent };
}

describe('ids in paths', () => {
  for (const id of ['a.b', 'a:b', 'x-_.:y', '...', 'a..b', '.a', 'b.']) {
    it(`agent "${id}": register, get, set state, update, remove`, async () => {
      const c = p.client(WS);
      const reg = await c.registerAgent({ id, skills: ['s'] });
      expect(reg.applied).toBe(true);
      expect((await c.getAgent(id)).id).toBe(id);
      const st = await c.setAgentState(id, 'away');
      expect(st.applied && st.value.id).toBe(id);
      const up = await c.updateAgent(id, { name: 'n' });
      expect(up.applied && up.value.id).toBe(id);
      const rm = await c.removeAgent(id);
      expect(rm.applied && rm.value.id).toBe(id);
      const gone = await failure(c.getAgent(id));
      expect(gone.type).toBe('/problems/agent-not-found');
    });
  }

  it('"." and "..": refused by the client, never sent to another route', async () => {
    const { c, sent } = recording();
    await c.registerAgent({ id: 'other', skills: ['s'] });
    sent.length = 0;
    for (const id of ['.', '..']) {
      // getAgent('.') answered GET /agents (the list) as if it were the agent's document.
      const got = await c.getAgent(id).then(
        (a) => a,
        (e: unknown) => e,
      );
      expect(got).toBeInstanceOf(TypeError);
      for (const call of [
        c.getContact(id),
        c.setAgentState(id, 'away'),
        c.removeAgent(id),
        c.completeContact(id),
        c.revokeKey(id),
      ])
        expect(
          await call.then(
            () => 'sent',
            (e: unknown) => e,
          ),
        ).toBeInstanceOf(TypeError);
    }
    expect(sent).toEqual([]);
  });

  it('an empty id: refused by the client, never sent to another route', async () => {
    const { c, sent } = recording();
    await c.registerAgent({ id: 'listed', skills: ['s'] });
    sent.length = 0;
    // getAgent('') was GET /agents/, the list, answered as if it were an agent's document.
    const got = await c.getAgent('').then(
      (a) => a,
      (e: unknown) => e,
    );
    expect(got).toBeInstanceOf(TypeError);
    for (const call of [
      c.getContact(''),
      c.updateAgent('', { name: 'x' }),
      c.setAgentState('', 'away'),
      c.removeAgent(''),
      c.completeContact(''),
      c.revokeKey(''),
      p.client('').getSettings(),
    ])
      expect(
        await call.then(
          () => 'sent',
          (e: unknown) => e,
        ),
      ).toBeInstanceOf(TypeError);
    expect(sent).toEqual([]);
    // The root path is no id: the wallboard page is still reachable.
    expect((await c.send('GET', '/')).status).toBe(200);
  });
});
