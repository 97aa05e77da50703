/**
 * A customer who hangs up before the contact's create was answered (a slow or retried POST): the
 * simulator's abandon went ahead of the create, found no contact (404) and counted an error, and
 * the run exited 1 on a loaded machine, while the contact it created stayed queued. The abandon is
 * now sent again once the create is answered: the contact is abandoned, and the run has no error.
 */
import { pino } from 'pino';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';
import { simOptions } from './sim-support.ts';

const WS = `sim-early-${Date.now()}`;
let redis: TestRedis;
let sb: Running;

beforeAll(async () => {
  redis = await startTestRedis();
  const config = loadConfig({
    AUTH: 'off',
    REDIS_URL: redis.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    WORKSPACES: WS,
  });
  sb = await startSwitchboard(config, pino({ level: 'silent' }));
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe('simulate: a customer who hangs up before the create is answered', () => {
  /**
   * A simulator whose create is held `createMs` on its way (a slow network, a retried POST) and
   * whose abandons' answers are held `answerMs` on their way back, its patience 0.2 s: the abandon
   * reaches Switchboard before the contact does. The statuses the abandons met, and the summary.
   */
  async function earlyAbandon(ws: string, createMs: number, answerMs: number) {
    const sim = new Simulator(
      simOptions({
        url: sb.url!,
        workspace: ws,
        agents: 0,
        contacts: 1,
        rate: 10,
        patienceS: 0.2,
        maxSeconds: 6,
      }),
    );
    const http = (sim as unknown as { http: { request: (...a: unknown[]) => Promise<unknown> } }).http;
    const send = http.request.bind(http);
    const abandons: number[] = [];
    http.request = async (...a: unknown[]) => {
      const [method, path] = a as [string, string];
      if (method === 'POST' && /\/contacts$/.test(path)) await sleep(createMs);
      const r = await send(...a);
      if (/\/abandon$/.test(path)) {
        abandons.push((r as { status: number }).status);
        await sleep(answerMs);
      }
      return r;
    };
    const s = await sim.run();
    await sim.cleanup();
    let logged = 0;
    const client = new SwitchboardClient({ url: sb.url!, workspace: ws, retries: 0 });
    for await (const e of client.allEvents({ types: ['ContactAbandoned'] }))
      if (e.type === 'ContactAbandoned') logged++;
    return { s, abandons, logged };
  }

  it('abandons the contact once it is there, with no error', async () => {
    const { s, abandons, logged } = await earlyAbandon(`${WS}-a`, 1000, 0);
    expect(abandons[0], 'the first abandon found no contact').toBe(404);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    expect(s.abandoned).toBe(1);
    expect(s.stillQueued).toBe(0);
    expect(logged).toBe(1);
  });

  it("the same when the abandon's 404 comes back after the create's answer", async () => {
    const { s, abandons, logged } = await earlyAbandon(`${WS}-b`, 1000, 1500);
    expect(abandons[0], 'the first abandon found no contact').toBe(404);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    expect(s.abandoned).toBe(1);
    expect(s.stillQueued).toBe(0);
    expect(logged).toBe(1);
  });
  it("a create still on its way at the run's end is abandoned by the cleanup, not left queued", async () => {
    const ws = `${WS}-c`;
    // The run's time limit (0.5 s) comes while the contact's create is held (1.5 s).
    const sim = new Simulator(
      simOptions({
        url: sb.url!,
        workspace: ws,
        agents: 0,
        contacts: 1,
        rate: 10,
        patienceS: 10,
        maxSeconds: 0.5,
      }),
    );
    const http = (sim as unknown as { http: { request: (...a: unknown[]) => Promise<unknown> } }).http;
    const send = http.request.bind(http);
    let created: Promise<unknown> = Promise.resolve();
    http.request = async (...a: unknown[]) => {
      const [method, path] = a as [string, string];
      if (!(method === 'POST' && /\/contacts$/.test(path))) return send(...a);
      created = sleep(1500).then(() => send(...a));
      return created;
    };
    const s = await sim.run();
    expect(s.endedBy).toBe('time-limit');
    await sim.cleanup();
    // The create has landed by now, whether the cleanup waited for it or not.
    await created;
    const client = new SwitchboardClient({ url: sb.url!, workspace: ws, retries: 0 });
    const contacts: { id: string; state: string }[] = [];
    for await (const e of client.allEvents({ types: ['ContactQueued'] }))
      contacts.push(
        await client.getContact(
          String((e.data as { contactId?: string }).contactId ?? (e.data as { id?: string }).id),
        ),
      );
    expect(contacts.map((c) => c.state)).toEqual(['abandoned']);
  });
  it('the cleanup keeps time of its own when a command of the run is still on its way', async () => {
    const ws = `${WS}-d`;
    // Two contacts; the second's create held 3 s, past the run's time limit (0.6 s) and past the
    // cleanup's whole time (2 s): the first is still abandoned.
    const sim = new Simulator(
      simOptions({
        url: sb.url!,
        workspace: ws,
        agents: 0,
        contacts: 2,
        rate: 10,
        patienceS: 10,
        maxSeconds: 0.6,
      }),
    );
    const http = (sim as unknown as { http: { request: (...a: unknown[]) => Promise<unknown> } }).http;
    const send = http.request.bind(http);
    let creates = 0;
    http.request = async (...a: unknown[]) => {
      const [method, path] = a as [string, string];
      if (method === 'POST' && /\/contacts$/.test(path) && ++creates === 2) await sleep(3000);
      return send(...a);
    };
    const s = await sim.run();
    expect(s.endedBy).toBe('time-limit');
    await sim.cleanup(2000);
    const client = new SwitchboardClient({ url: sb.url!, workspace: ws, retries: 0 });
    const first = (await client.getContact(`${(sim as unknown as { tag: string }).tag}.contact-1`)).state;
    expect(first).toBe('abandoned');
  });
});
