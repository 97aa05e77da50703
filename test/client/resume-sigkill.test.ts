/**
 * The typed client's live subscription when its API instance dies for real: the API runs as its own
 * OS process (`node src/main.ts` with ROLES=api, test/support/processes.ts) beside a Switchboard of
 * every role in this process, which a writer keeps posting contacts to (assigned at once, then
 * completed, so AssignmentMade events flow). The API process is SIGKILLed mid-stream (no close
 * frame, no position advertised: the socket just breaks), contacts are assigned while nothing
 * serves the subscriber, and a new API process starts on the same port. The subscription, left to
 * itself, must deliver exactly the history of GET /events: the same positions, in order, no gap,
 * no duplicate, the events of the outage included.
 */
import {
  comparePositions,
  type EventEnvelope,
  SwitchboardClient,
  SwitchboardError,
} from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { inProcessApi } from '../support/api.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'client-kill';
// Every role, in this process, with keys: the writer's and the subscriber's.
const sb = inProcessApi([WS], { env: { AUTH: 'on' } });
let api: SwitchboardProcess | undefined;
let writerKey: string;
let readerKey: string;

beforeAll(async () => {
  writerKey = (await createApiKey(sb.running.redis, { workspace: WS, role: 'admin' })).key;
  readerKey = (await createApiKey(sb.running.redis, { workspace: WS, role: 'supervisor' })).key;
});

afterAll(async () => {
  if (api?.running) {
    api.kill('SIGKILL');
    await api.exited;
  }
});

/** The API alone, as its own process, on `port` (a free one when omitted). */
const startApi = (port?: number) =>
  startProcess({
    roles: ['api'],
    redis: sb.server,
    name: 'api',
    ...(port !== undefined ? { port } : {}),
    env: { AUTH: 'on', WORKSPACES: WS, DISCOVER_WORKSPACES: 'false', LOG_LEVEL: 'warn' },
    // A start takes about a second alone; on a loaded 2-core machine a CI run saw over 20 s.
    readyTimeoutMs: 45_000,
  });

describe('the live subscription when its API process is SIGKILLed', () => {
  it('resumes on the restarted process with exactly the history: same positions, in order, no gap, no duplicate', async () => {
    const writer = new SwitchboardClient({ url: sb.running.url!, workspace: WS, key: writerKey });
    await writer.putSettings({ wrapUpMs: 0, offerTimeoutMs: 0 });
    for (const id of ['k-ann', 'k-bob']) {
      await writer.registerAgent({ id, skills: ['kill'], capacity: 20, wrapUpMs: 0 });
      await writer.setAgentState(id, 'available');
    }

    api = await startApi();
    const port = api.port!;
    const closes: number[] = [];
    const reader = new SwitchboardClient({ url: api.url!, workspace: WS, key: readerKey });
    const got: EventEnvelope[] = [];
    const sub = reader.subscribeLive(
      { after: '0-0', backoffMs: 100, maxBackoffMs: 500, onClose: (c) => closes.push(c.code) },
      (e) => got.push(e),
    );

    // The writer: a contact at a time (assigned at once by the dispatcher in this process), each
    // assigned one completed on a later turn so the agents keep room.
    let stop = false;
    let posted = 0;
    const failures: unknown[] = [];
    const pending: string[] = [];
    const writing = (async () => {
      while (!stop) {
        try {
          const id = `kc-${posted}`;
          await writer.queueContact({ id, skills: ['kill'] });
          posted++;
          pending.push(id);
          const oldest = pending[0]!;
          if ((await writer.getContact(oldest)).state === 'assigned') {
            await writer.completeContact(oldest);
            pending.shift();
          }
        } catch (err) {
          failures.push(err);
          if (!(err instanceof SwitchboardError) || failures.length > 5) return;
        }
        await sleep(10); // a steady trickle rather than a flood on a 2-core machine
      }
    })();

    const count = (type: string, events: readonly EventEnvelope[] = got) =>
      events.filter((e) => e.type === type).length;
    try {
      await sub.ready;
      await waitFor('assignments on the live feed', () => count('AssignmentMade') >= 10, {
        timeoutMs: 15_000,
      });

      // SIGKILL: the process ends with no close frame; the socket breaks.
      api.kill('SIGKILL');
      expect(await api.exited).toBe('SIGKILL');
      await waitFor('the subscription to see its socket break', () => closes.length >= 1, {
        timeoutMs: 5_000,
      });
      // Contacts are posted and assigned while nothing serves the subscriber.
      const postedAtKill = posted;
      await waitFor('contacts posted during the outage', () => posted >= postedAtKill + 10, {
        timeoutMs: 15_000,
      });

      const downAt = sub.position!;
      const restartedAt = Date.now();
      api = await startApi(port);
      const restartMs = Date.now() - restartedAt;
      // What the log gained while the subscriber had no socket (appended before the new process
      // started): it can only reach the subscriber through the resumed socket.
      const outage: EventEnvelope[] = [];
      for await (const e of writer.allEvents({ after: downAt, limit: 1000 }))
        if (Number(e.position.split('-')[0]) < restartedAt) outage.push(e);
      expect(count('AssignmentMade', outage)).toBeGreaterThanOrEqual(5);
      const lastOfOutage = outage.at(-1)!.position;

      await waitFor(
        'the outage and 10 later assignments on the resumed feed',
        () =>
          got.filter((e) => e.type === 'AssignmentMade' && comparePositions(e.position, lastOfOutage) > 0)
            .length >= 10,
        { timeoutMs: 20_000 },
      );
      stop = true;
      await writing;
      expect(failures).toEqual([]);

      // Exactly the history, once the feed has caught up with the log's last event.
      const history = await waitFor(
        'the feed at the end of the log',
        async () => {
          const h: EventEnvelope[] = [];
          for await (const e of writer.allEvents({ limit: 1000 })) h.push(e);
          return got.at(-1)?.position === h.at(-1)?.position && h;
        },
        { timeoutMs: 15_000 },
      );
      expect(got.map((e) => e.position)).toEqual(history.map((e) => e.position));
      expect(got.map((e) => e.type)).toEqual(history.map((e) => e.type));
      expect(got[0]!.type).toBe('SettingsChanged');
      expect(sub.reconnects).toBeGreaterThanOrEqual(1);
      expect(closes[0]).toBe(1006); // broken, not closed
      console.info(
        `resume after SIGKILL: ${history.length} events (${count('AssignmentMade', history)} AssignmentMade, ` +
          `${outage.length} appended while no API served), ${sub.reconnects} reconnects, API restarted in ${restartMs} ms`,
      );
    } finally {
      stop = true;
      await writing;
      sub.close();
      await sub.ended;
    }
  }, 150_000);
});
