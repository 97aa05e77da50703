/**
 * A customer who hangs up before the contact's create was answered (a slow or retried POST): the
 * simulator's abandon went ahead of the create, found no contact (404) and counted an error, and
 * the run exited 1 on a loaded machine, while the contact it created stayed queued. The abandon is
 * now sent again once the create is answered: the contact is abandoned, and the run has no error.
 * And what the run left is ended by its cleanup, a create still on its way included.
 */
import { SwitchboardClient } from 'switchboard/client';
import { describe, expect, it } from 'vitest';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { sleep } from '../support/wait.ts';
import { interceptRequests, isCreate, logged, simOptions, simSwitchboard } from './sim-support.ts';

const WS = `sim-early-${Date.now()}`;
const sb = simSwitchboard();

/** A simulator of `contacts` contacts and no agents in workspace `ws`, at 10 a second. */
const simulator = (ws: string, o: { contacts: number; patienceS: number; maxSeconds: number }) =>
  new Simulator(simOptions({ url: sb.url, workspace: ws, agents: 0, rate: 10, ...o }));

/** The state Switchboard holds of the simulator's `n`th contact. */
async function contactState(sim: Simulator, ws: string, n: number): Promise<string> {
  const client = new SwitchboardClient({ url: sb.url, workspace: ws, retries: 0 });
  return (await client.getContact(`${(sim as unknown as { tag: string }).tag}.contact-${n}`)).state;
}

describe('simulate: a customer who hangs up before the create is answered', () => {
  /**
   * A simulator whose create is held `createMs` on its way (a slow network, a retried POST) and
   * whose abandons' answers are held `answerMs` on their way back, its patience 0.2 s: the abandon
   * reaches Switchboard before the contact does. The statuses the abandons met, and the summary.
   */
  async function earlyAbandon(ws: string, createMs: number, answerMs: number) {
    const sim = simulator(ws, { contacts: 1, patienceS: 0.2, maxSeconds: 6 });
    const abandons: (number | string)[] = [];
    interceptRequests(sim, async (method, path, send) => {
      if (isCreate(method, path)) await sleep(createMs);
      const r = await send();
      if (/\/abandon$/.test(path)) {
        abandons.push(r.status);
        await sleep(answerMs);
      }
      return r;
    });
    const s = await sim.run();
    await sim.cleanup();
    return { s, abandons, logged: await logged(sb.url, ws, 'ContactAbandoned') };
  }

  it.each([
    ['abandons the contact once it is there, with no error', 'a', 0],
    ["the same when the abandon's 404 comes back after the create's answer", 'b', 1500],
  ])('%s', async (_, suffix, answerMs) => {
    const { s, abandons, logged } = await earlyAbandon(`${WS}-${suffix}`, 1000, answerMs);
    expect(abandons[0], 'the first abandon found no contact').toBe(404);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    expect(s.abandoned).toBe(1);
    expect(s.stillQueued).toBe(0);
    expect(logged).toBe(1);
  });

  it("a create still on its way at the run's end is abandoned by the cleanup, not left queued", async () => {
    const ws = `${WS}-c`;
    // The run's time limit (0.5 s) comes while the contact's create is held (1.5 s).
    const sim = simulator(ws, { contacts: 1, patienceS: 10, maxSeconds: 0.5 });
    let created: Promise<unknown> = Promise.resolve();
    interceptRequests(sim, (method, path, send) => {
      if (!isCreate(method, path)) return send();
      const answer = sleep(1500).then(send);
      created = answer;
      return answer;
    });
    const s = await sim.run();
    expect(s.endedBy).toBe('time-limit');
    await sim.cleanup();
    // The create has landed by now, whether the cleanup waited for it or not.
    await created;
    expect(await contactState(sim, ws, 1)).toBe('abandoned');
  });

  it('the cleanup keeps time of its own when a command of the run is still on its way', async () => {
    const ws = `${WS}-d`;
    // Two contacts; the second's create held 3 s, past the run's time limit (0.6 s) and past the
    // cleanup's whole time (2 s): the first is still abandoned.
    const sim = simulator(ws, { contacts: 2, patienceS: 10, maxSeconds: 0.6 });
    let creates = 0;
    interceptRequests(sim, async (method, path, send) => {
      if (isCreate(method, path) && ++creates === 2) await sleep(3000);
      return send();
    });
    const s = await sim.run();
    expect(s.endedBy).toBe('time-limit');
    await sim.cleanup(2000);
    expect(await contactState(sim, ws, 1)).toBe('abandoned');
  });
});
