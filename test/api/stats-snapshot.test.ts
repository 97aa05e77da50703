/**
 * GET /stats is one snapshot: read while contacts are queued and assigned at once, each answer's
 * parts agree with each other. The queue's depth is the sum of its queues' depths, every contact
 * queued so far is either still queued or assigned (the load neither completes, abandons nor
 * transfers any), the workspace's longest wait is the longest of its queues', the oldest contact
 * is named exactly when one waits, and, the agents being fewer than a page (docs/API.md), every
 * assignment is an agent busy (capacity 1, none completed).
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi, type Json } from '../support/api.ts';
import { sleep } from '../support/wait.ts';

const WS = 'stats-snapshot';
const api = inProcessApi([WS]);

type Queue = { channel: string; skills: string; queued: number; longestWaitMs: number | null };

const AGENTS = 24;
const CONTACTS = 72;
const SKILLS = [['A'], ['B'], ['A', 'B']];

/** What one answer breaks of what holds within a snapshot (empty: nothing). */
function broken(s: Json): string[] {
  const out: string[] = [];
  const queued = s.queued as number;
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  const bySkills = sum(s.queueBySkills as Record<string, number>);
  if (bySkills !== queued) out.push(`queued ${queued}, queueBySkills adds up to ${bySkills}`);
  const byChannel = Object.values(s.queueByChannel as Record<string, Record<string, number>>)
    .map(sum)
    .reduce((a, b) => a + b, 0);
  if (byChannel !== queued) out.push(`queued ${queued}, queueByChannel adds up to ${byChannel}`);
  const queues = s.queues as Queue[];
  const perQueue = queues.reduce((a, q) => a + q.queued, 0);
  if (perQueue !== queued) out.push(`queued ${queued}, queues[].queued adds up to ${perQueue}`);
  if ((queued === 0) !== (s.oldestContactId === null))
    out.push(`queued ${queued} with oldestContactId ${JSON.stringify(s.oldestContactId)}`);
  const soFar = s.contactsQueuedSoFar as number;
  const assignments = s.assignments as number;
  if (soFar !== queued + assignments)
    out.push(`contactsQueuedSoFar ${soFar}, queued ${queued} + assignments ${assignments}`);
  if (queued > 0) {
    const longest = Math.max(...queues.map((q) => q.longestWaitMs ?? 0));
    if (longest !== s.longestWaitMs)
      out.push(`longestWaitMs ${s.longestWaitMs}, its queues' longest ${longest}`);
  }
  // None waits: no wait; some wait (fewer than the 500 read to find them): found, at least 0 ms.
  for (const q of queues)
    if (q.queued === 0 ? q.longestWaitMs !== 0 : q.longestWaitMs === null)
      out.push(`queue ${q.channel} ${q.skills}: queued ${q.queued}, longestWaitMs ${q.longestWaitMs}`);
  const agents = s.agentsByState as Record<string, number>;
  if (sum(agents) !== AGENTS) out.push(`agentsByState adds up to ${sum(agents)}`);
  if (agents.busy !== assignments - (s.completed as number))
    out.push(`busy ${agents.busy}, assignments ${assignments}, completed ${s.completed}`);
  return out;
}

describe('GET /stats while contacts are queued and assigned', () => {
  it('each answer is one snapshot: its parts agree', async () => {
    await api.ok('PUT', WS, '/settings', { channels: ['voice', 'chat'] });
    for (let i = 0; i < AGENTS; i++)
      await api.ok('POST', WS, '/agents', { id: `ag-${i}`, skills: SKILLS[i % 3], capacity: 1 });
    let done = false;
    const seen: string[] = [];
    let reads = 0;
    const reader = (async () => {
      while (!done) {
        const r = await api.call('GET', `/v1/workspaces/${WS}/stats`);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        reads++;
        for (const b of broken(r.body)) if (seen.length < 10) seen.push(b);
      }
    })();
    const contacts = (async () => {
      for (let i = 0; i < CONTACTS; i += 4) {
        await Promise.all(
          [0, 1, 2, 3].map((j) =>
            api.ok('POST', WS, '/contacts', {
              id: `c-${i + j}`,
              skills: SKILLS[(i + j) % 3],
              channel: (i + j) % 2 === 0 ? 'voice' : 'chat',
            }),
          ),
        );
        await sleep(5);
      }
    })();
    const agents = (async () => {
      for (let i = 0; i < AGENTS; i++) {
        await api.ok('POST', WS, `/agents/ag-${i}/state`, { state: 'available' });
        await sleep(15);
      }
    })();
    await Promise.all([contacts, agents]);
    // Every agent busy: the rest stay queued.
    await api.until(WS, '/stats', (s) => s.contactsQueuedSoFar === CONTACTS && s.assignments === AGENTS);
    done = true;
    await reader;
    const last = await api.ok('GET', WS, '/stats');
    expect(broken(last)).toEqual([]);
    expect(last.queued).toBe(CONTACTS - AGENTS);
    expect(reads).toBeGreaterThan(20);
    expect(seen).toEqual([]);
  });
});
