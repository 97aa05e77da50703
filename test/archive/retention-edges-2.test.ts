/**
 * One contact id used three times, each life finished and forgotten (CONTACT_RETENTION) before the
 * next, while the log is trimmed into the archive (LOG_RETENTION) with state snapshots among the
 * archived events (docs/API.md, "Finished contacts"; docs/ARCHIVE.md). Before it is forgotten the
 * id is refused (`contact-exists`); after, it is a new contact. `GET /events` reads every life across
 * the trim, `GET /state?at=` shows each life until its ContactsForgotten, the intervals count every
 * life (the live projection and the log's reading alike), and the audit, from the start or after
 * any event, finds nothing wrong.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskArchive } from '../../src/archive/store.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';
import { sleep, waitFor } from '../support/wait.ts';

const ws = 'retention-edges-2';

describe('a contact id used again after each life is forgotten', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sb-retention-edges-2-'));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const api = inProcessApi([ws], {
    env: {
      CONTACT_RETENTION: '600ms',
      LOG_RETENTION: '10',
      ARCHIVE_DIR: dir,
      ARCHIVE_EVERY_MS: '50',
      ARCHIVE_SEGMENT_ENTRIES: '5',
      SNAPSHOT_EVERY_EVENTS: '7',
    },
  });

  it('refuses the id while its contact is held, takes it once forgotten, and every reading agrees', async () => {
    const post = (p: string, body?: unknown) => api.call('POST', `/v1/workspaces/${ws}${p}`, body);
    const from = new Date(Math.floor(Date.now() / 900_000) * 900_000).toISOString();
    await api.ok('PUT', ws, '/settings', { channels: ['voice', 'chat'] });
    await api.ok('POST', ws, '/agents', { id: 'ana', skills: ['A', 'B'], capacity: 1 });
    await api.ok('POST', ws, '/agents/ana/state', { state: 'available' });
    for (let life = 0; life < 3; life++) {
      const queued = await post('/contacts', {
        id: 'c1',
        skills: life === 1 ? ['B'] : ['A'],
        channel: life === 1 ? 'chat' : 'voice',
      });
      expect(queued.status, JSON.stringify(queued.body)).toBe(201);
      await api.until(ws, '/contacts/c1', (c) => c.state === 'assigned');
      if (life === 1) {
        expect((await post('/contacts/c1/transfer', { skills: ['A'] })).status).toBe(200);
        await api.until(ws, '/contacts/c1', (c) => c.state === 'assigned');
      }
      expect((await post('/contacts/c1/complete')).status).toBe(200);
      // Finished, not forgotten yet: the id is still taken.
      await api.problem('POST', ws, '/contacts', { id: 'c1', skills: ['A'] }, 409, 'contact-exists');
      const t0 = Date.now();
      while ((await api.call('GET', `/v1/workspaces/${ws}/contacts/c1`)).status !== 404) {
        expect(Date.now() - t0, 'c1 forgotten').toBeLessThan(5000);
        await sleep(20);
      }
    }

    // The trim has moved the first lives into the archive.
    const { value: events } = await waitFor(
      () => 'the events archived but the newest 10',
      async () => {
        const all = (await api.ok('GET', ws, '/events?limit=1000')).events as {
          position: string;
          type: string;
          data: Record<string, unknown>;
        }[];
        const inRedis = await api.running.redis.xlen(`sb:{${ws}}:events`);
        return all.filter((e) => e.type === 'ContactsForgotten').length === 3 && inRedis <= 10
          ? { value: all }
          : undefined;
      },
      { timeoutMs: 5000, everyMs: 50 },
    );
    const forgotten = events.filter((e) => e.type === 'ContactsForgotten');
    expect(forgotten.map((e) => e.data.contactIds)).toEqual([['c1'], ['c1'], ['c1']]);
    expect(events.filter((e) => e.type === 'ContactQueued')).toHaveLength(3);

    // state?at: c1 in each life's state up to its ContactsForgotten, gone at it.
    const lives: string[] = [];
    let snapshots = 0;
    for (const e of events) {
      const s = await api.ok('GET', ws, `/state?at=${e.position}`);
      if (s.snapshot !== null) snapshots++;
      const c1 = (s.contacts as { id: string; state: string }[]).find((c) => c.id === 'c1');
      lives.push(`${e.type}:${c1 ? c1.state : '-'}`);
    }
    expect(snapshots).toBeGreaterThan(0);
    const life = (...facts: string[]) => facts.join(' ');
    expect(lives.join(' ')).toBe(
      [
        life('SettingsChanged:-', 'AgentRegistered:-', 'AgentStateChanged:-'),
        life('ContactQueued:queued', 'AssignmentMade:assigned', 'ContactCompleted:completed'),
        life('CommandRejected:completed', 'ContactsForgotten:-'),
        life('ContactQueued:queued', 'AssignmentMade:assigned', 'ContactTransferred:queued'),
        life('AssignmentMade:assigned', 'ContactCompleted:completed'),
        life('CommandRejected:completed', 'ContactsForgotten:-'),
        life('ContactQueued:queued', 'AssignmentMade:assigned', 'ContactCompleted:completed'),
        life('CommandRejected:completed', 'ContactsForgotten:-'),
      ].join(' '),
    );

    // The intervals count every life, the live projection as the log's reading does.
    const to = new Date(Date.now() + 60_000).toISOString();
    const strip = (v: Record<string, unknown>) => v.intervals;
    const log = await api.ok('GET', ws, `/stats/intervals?from=${from}&to=${to}&source=log`);
    const live = await api.until(ws, `/stats/intervals?from=${from}&to=${to}`, (v) => v.source === 'live');
    expect(strip(live)).toEqual(strip(log));
    const total = (log.intervals as Record<string, number>[]).reduce(
      (t, i) => ({
        queued: t.queued! + i.queued!,
        assigned: t.assigned! + i.assigned!,
        completed: t.completed! + i.completed!,
        transferred: t.transferred! + i.transferred!,
      }),
      { queued: 0, assigned: 0, completed: 0, transferred: 0 },
    );
    expect(total).toEqual({ queued: 3, assigned: 3, completed: 3, transferred: 1 });
    const stats = await api.ok('GET', ws, '/stats');
    expect(stats).toMatchObject({ completed: 3, contactsQueuedSoFar: 3, transferred: 1 });

    // The audit over archive and streams, from the start and after each event.
    const archive = new DiskArchive(dir);
    const whole = await auditWorkspace(api.running.redis, ws, { archive });
    expect(whole.violations).toEqual([]);
    for (const e of events) {
      const after = await auditWorkspace(api.running.redis, ws, { archive, after: e.position });
      expect(after.violations, `after ${e.position} ${e.type}`).toEqual([]);
    }
  });
});
