/**
 * The live interval projection survives SIGKILL: a Switchboard process with the projector role
 * (src/main.ts, a real child process) follows a workspace's event log of tens of thousands of
 * events over an hour of positions; it is killed in the middle, what it left equals the log's
 * computation up to its checkpoint, and a new process finishes the log with nothing lost and
 * nothing counted twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { INTERVAL_MS, intervalStart } from '../../src/domain/intervals.ts';
import { expectLiveEqualsLog, intervalsCaughtUp, lastEvent } from '../support/intervals.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'intervals-crash';
const THRESHOLD = 20_000;
const CONTACTS = 9000;
const suite = suiteRedis();
const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-intervals-crash-'));
afterAll(async () => {
  await killAllProcesses();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A small deterministic generator (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes a log as the projector writes it (the `type` and `event` fields, the envelope JSON) with
 * chosen positions: contacts of several queues and channels queued, offered (a second offer
 * sometimes), transferred, stepped, abandoned, expired, completed, and forgotten, starting
 * `startMs`, a few tens of ms apart. Returns the number of events.
 */
async function writeLog(redis: RedisClient, startMs: number): Promise<number> {
  const next = random(13);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const skills = [['Sales'], ['Billing'], ['Billing', 'Spanish'], ['Support#3']];
  const events: [string, Record<string, unknown>][] = [];
  const open: { id: string; state: 'queued' | 'assigned'; skills: string[] }[] = [];
  const ended: string[] = [];
  let n = 0;
  while (n < CONTACTS || open.length > 0) {
    const r = next();
    if (n < CONTACTS && (r < 0.3 || open.length === 0)) {
      const c = { id: `c${n++}`, state: 'queued' as const, skills: pick(skills) };
      open.push(c);
      events.push([
        'ContactQueued',
        { id: c.id, skills: c.skills, channel: pick(['voice', 'voice', 'chat']), state: 'queued' },
      ]);
      continue;
    }
    const i = Math.floor(next() * open.length);
    const c = open[i]!;
    const waitedMs = Math.floor(next() * 60_000);
    const leave = () => {
      open.splice(i, 1);
      ended.push(c.id);
    };
    if (c.state === 'queued') {
      if (r < 0.75) {
        const offer = next() < 0.2 ? 2 : 1;
        events.push([
          'AssignmentMade',
          { contactId: c.id, agentId: 'a1', skills: c.skills, waitedMs, offer: { id: offer } },
        ]);
        c.state = 'assigned';
      } else if (r < 0.82) {
        events.push(['ContactStepped', { contactId: c.id, step: 1, skills: ['Anything'] }]);
        c.skills = ['Anything'];
      } else if (r < 0.92) {
        events.push(['ContactAbandoned', { contactId: c.id, waitedMs }]);
        leave();
      } else {
        events.push(['ContactExpired', { contactId: c.id, waitedMs }]);
        leave();
      }
    } else if (r < 0.85) {
      events.push(['ContactCompleted', { contactId: c.id, handledMs: Math.floor(next() * 600_000) }]);
      leave();
    } else {
      const to = pick(skills);
      events.push(['ContactTransferred', { contactId: c.id, fromAgentId: 'a1', skills: to }]);
      c.state = 'queued';
      c.skills = to;
    }
    if (ended.length >= 500)
      events.push(['ContactsForgotten', { contactIds: ended.splice(0, ended.length) }]);
  }
  const k = workspaceKeys(WS);
  let ms = startMs;
  let seq = 0;
  for (let i = 0; i < events.length; i += 5000) {
    const batch = redis.pipeline();
    for (const [type, data] of events.slice(i, i + 5000)) {
      const step = Math.floor(next() * 160);
      ms += step;
      seq = step === 0 ? seq + 1 : 0;
      const at = new Date(ms).toISOString();
      const envelope = JSON.stringify({ type, workspace: WS, at, data, meta: {} });
      batch.xadd(k.events, `${ms}-${seq}`, 'type', type, 'event', envelope);
    }
    await batch.exec();
  }
  return events.length;
}

describe('the live interval projection and SIGKILL', () => {
  it('killed mid-log, it leaves the log computation up to its checkpoint; restarted, it ends equal to the whole log', async () => {
    const redis = suite.redis;
    const k = workspaceKeys(WS);
    const startMs = intervalStart(Date.now() - 3 * 3600_000) + INTERVAL_MS - 7 * 60_000;
    const written = await writeLog(redis, startMs);
    expect(written).toBeGreaterThan(25_000);
    const last = (await lastEvent(redis, WS))!;

    const start = () =>
      startProcess({
        roles: 'projector',
        redis: suite.server,
        env: {
          WORKSPACES: WS,
          DISCOVER_WORKSPACES: 'false',
          DATA_DIR: dataDir,
          LEASE_TTL_MS: '1000',
          LOG_LEVEL: 'info',
        },
      });
    const first = await start();
    // Killed as soon as its checkpoint has moved, well before the end of the log.
    await waitFor(
      'the first process to apply some events',
      async () => (await redis.hget(k.intervals, 'checkpoint')) ?? undefined,
      { timeoutMs: 20_000, everyMs: 2 },
    );
    first.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const { starts, checkpoint } = await expectLiveEqualsLog(redis, WS, THRESHOLD, false);
    expect(checkpoint, 'killed before the end of the log').not.toBe(last);
    expect(starts.length).toBeGreaterThanOrEqual(1);

    const second = await start();
    await intervalsCaughtUp(redis, WS, 25_000);
    await second.stop();
    const whole = await expectLiveEqualsLog(redis, WS, THRESHOLD);
    expect(whole.starts.length).toBeGreaterThanOrEqual(4);
    // The contacts whose queue is kept: none, every one of them ended.
    expect(await redis.hlen(k.intervalContacts)).toBe(0);
  });
});
