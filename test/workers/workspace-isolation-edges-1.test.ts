/**
 * One process serving several workspaces: a workspace whose every projector and dispatcher step
 * fails (a document of the wrong type) does not keep another's commands from answering 201, nor
 * its contacts from being routed. Each workspace has its own loops and blocking connections; the
 * steps of all of them share one client and interleave. A real Switchboard on a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { sleep, waitFor } from '../support/wait.ts';

const QUIET = 'isolation-quiet';
const BROKEN = 'isolation-broken';
// The documented default: a command with no outcome within it answers 202.
const api = inProcessApi([QUIET, BROKEN], { env: { COMMAND_TIMEOUT_MS: '2000' } });

const post = (ws: string, path: string, payload: unknown) =>
  api.running.api!.inject({ method: 'POST', url: `/v1/workspaces/${ws}${path}`, payload: payload as Json });

const contactState = async (ws: string, id: string): Promise<Json> => api.ok('GET', ws, `/contacts/${id}`);

/** Waits for the contact to be offered or assigned: its document then, and ms it took. */
async function routed(ws: string, id: string): Promise<{ doc: Json; ms: number }> {
  const t = performance.now();
  const { value } = await waitFor(
    () => `${id} to be offered`,
    async () => {
      const doc = await contactState(ws, id);
      return doc.state === 'offered' || doc.state === 'assigned' ? { value: doc } : undefined;
    },
    { timeoutMs: 5000, everyMs: 5 },
  );
  return { doc: value, ms: performance.now() - t };
}

describe('isolation between the workspaces of one process', () => {
  it("a workspace whose steps all fail: another's commands answer 201 and its contacts are assigned", async () => {
    const k = workspaceKeys(BROKEN);
    expect((await post(BROKEN, '/contacts', { id: 'x0', skills: ['X'] })).statusCode).toBe(201);
    // Its meta hash a string: every projector and dispatcher step of the workspace fails on it.
    await api.running.redis.del(k.meta);
    await api.running.redis.set(k.meta, 'not a hash');
    // Appended, never applied: no outcome within COMMAND_TIMEOUT_MS.
    const stuck = post(BROKEN, '/contacts', { id: 'x1', skills: ['X'] });
    // Offered, not assigned: each contact can be abandoned and the agent offered the next.
    await api.ok('PUT', QUIET, '/settings', { offerTimeoutMs: 30_000 });
    await api.ok('POST', QUIET, '/agents', { id: 'qb', skills: ['AfterBroken'] });
    for (let i = 0; i < 10; i++) {
      await api.ok('POST', QUIET, '/agents/qb/state', { state: 'available' });
      const r = await post(QUIET, '/contacts', { id: `qb${i}`, skills: ['AfterBroken'] });
      expect(r.statusCode, r.body).toBe(201);
      expect((await routed(QUIET, `qb${i}`)).ms).toBeLessThan(1000);
      await api.ok('POST', QUIET, `/contacts/qb${i}/abandon`, {});
      // The broken workspace's loops retry meanwhile (100 ms, then longer).
      await sleep(50);
    }
    expect((await stuck).statusCode).toBe(202);
  }, 60_000);
});
