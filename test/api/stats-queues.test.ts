/**
 * GET /stats per queue: each queue's longest wait (its oldest waiting contact, found within a
 * bounded read of the workspace's oldest contacts) and the agents who may take its contacts by
 * state (skills at their levels, channels), against the OpenAPI document's Stats schema; and the
 * pages and /docs as the OpenAPI document lists them (media types as served).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { LONGEST_WAIT_READS } from '../../src/adapters/redis/projection-reads.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { sleep } from '../support/wait.ts';

const WS = 'stats-queues';
const BOUND = 'stats-bound';
const api = inProcessApi([WS, BOUND]);

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ components: openapi.components }, 'doc');
const validStats = ajv.compile({ $ref: 'doc#/components/schemas/Stats' });

type Queue = { channel: string; skills: string; queued: number; longestWaitMs: number | null; agents: Json };
const queueOf = (stats: Json, channel: string, skills: string) =>
  (stats.queues as Queue[]).find((q) => q.channel === channel && q.skills === skills);

describe('GET /stats per queue', () => {
  it('the longest wait of each queue, and its agents by state (levels and channels counted)', async () => {
    await api.ok('PUT', WS, '/settings', { channels: ['voice', 'chat'] });
    const agents: [string, unknown[], unknown, string][] = [
      ['lv3', [{ name: 'English', level: 3 }, 'Sales'], 1, 'away'],
      ['lv1', ['English', 'Sales'], 1, 'away'],
      ['chat-only', [{ name: 'English', level: 2 }, 'Sales'], { chat: 2 }, 'away'],
      ['sales', ['Sales'], 1, 'offline'],
    ];
    for (const [id, skills, capacity, state] of agents) {
      await api.ok('POST', WS, '/agents', { id, skills, capacity });
      if (state !== 'offline') await api.ok('POST', WS, `/agents/${id}/state`, { state });
    }
    await api.ok('POST', WS, '/contacts', { id: 'old', skills: [{ name: 'English', minLevel: 2 }, 'Sales'] });
    await sleep(400);
    await api.ok('POST', WS, '/contacts', { id: 'new', skills: [{ name: 'English', minLevel: 2 }, 'Sales'] });
    await api.ok('POST', WS, '/contacts', {
      id: 'chat',
      skills: [{ name: 'English', minLevel: 2 }, 'Sales'],
      channel: 'chat',
    });
    await api.ok('POST', WS, '/contacts', { id: 'sales', skills: ['Sales'] });
    const stats = await api.until(WS, '/stats', (s) => s.queued === 4);
    expect(validStats(stats), JSON.stringify(validStats.errors)).toBe(true);
    const voice = queueOf(stats, 'voice', 'English#2,Sales')!;
    expect(voice.queued).toBe(2);
    // The oldest of its two waits: at least the 400 ms before the second, and what /stats says overall.
    expect(voice.longestWaitMs).toBeGreaterThanOrEqual(400);
    expect(voice.longestWaitMs).toBe(stats.longestWaitMs);
    const chat = queueOf(stats, 'chat', 'English#2,Sales')!;
    expect(chat.longestWaitMs!).toBeLessThan(voice.longestWaitMs!);
    // English ≥2 and Sales: lv3 (any channel) on voice; lv3 and chat-only on chat; lv1's level is too low.
    expect(voice.agents).toEqual({ offline: 0, available: 0, away: 1, busy: 0, wrapup: 0, reserved: 0 });
    expect(chat.agents).toEqual({ offline: 0, available: 0, away: 2, busy: 0, wrapup: 0, reserved: 0 });
    const sales = queueOf(stats, 'voice', 'Sales')!;
    expect(sales.agents).toEqual({ offline: 1, available: 0, away: 2, busy: 0, wrapup: 0, reserved: 0 });
    // A queue with decisions but nobody waiting: no wait.
    await api.ok('POST', WS, '/agents/sales/state', { state: 'available' });
    const after = await api.until(WS, '/stats', (s) => s.queued === 3);
    expect(validStats(after), JSON.stringify(validStats.errors)).toBe(true);
    const served = queueOf(after, 'voice', 'Sales')!;
    expect(served.queued).toBe(0);
    expect(served.longestWaitMs).toBe(0);
    expect(served.agents.busy).toBe(1);
  });

  it(`a queue behind the ${LONGEST_WAIT_READS} oldest contacts of others: its wait is null, not guessed`, async () => {
    const ids = Array.from({ length: LONGEST_WAIT_READS }, (_, i) => `a-${i}`);
    for (let i = 0; i < ids.length; i += 50)
      await Promise.all(
        ids.slice(i, i + 50).map((id) => api.ok('POST', BOUND, '/contacts', { id, skills: ['Deep'] })),
      );
    await api.ok('POST', BOUND, '/contacts', { id: 'late', skills: ['Late'] });
    const stats = await api.until(BOUND, '/stats', (s) => s.queued === LONGEST_WAIT_READS + 1);
    expect(validStats(stats), JSON.stringify(validStats.errors)).toBe(true);
    expect(queueOf(stats, 'voice', 'Deep')!.longestWaitMs).toBe(stats.longestWaitMs);
    expect(queueOf(stats, 'voice', 'Late')!.longestWaitMs).toBeNull();
    // One fewer in front: found.
    await api.ok('POST', BOUND, '/contacts/a-0/abandon');
    const found = await api.until(BOUND, '/stats', (s) => s.queued === LONGEST_WAIT_READS);
    expect(queueOf(found, 'voice', 'Late')!.longestWaitMs).toBeGreaterThanOrEqual(0);
  }, 30_000);
});

describe('the pages and /docs in the OpenAPI document', () => {
  it('each is listed, open, with the media type it is served with', async () => {
    const listed = Object.entries(openapi.paths).filter(
      ([p]) => p === '/' || p === '/agent' || p.startsWith('/ui/') || p.startsWith('/docs'),
    );
    expect(listed.map(([p]) => p)).toEqual(
      expect.arrayContaining(['/', '/agent', '/ui/wallboard.js', '/ui/vendor/uplot.js', '/docs']),
    );
    for (const [path, item] of listed) {
      const op = (item as { get: { security: unknown[]; responses: Record<string, { content?: object }> } })
        .get;
      expect(op.security, path).toEqual([]);
      const media = Object.keys(op.responses['200']!.content!)[0]!;
      const r = await api.running.api!.inject({ method: 'GET', url: path });
      expect(r.statusCode, path).toBe(200);
      expect(String(r.headers['content-type']).split(';')[0], path).toBe(media);
    }
    // And every file pages.ts serves is listed.
    for (const path of ['/ui/common.js', '/ui/agent.js', '/ui/style.css', '/ui/vendor/uplot.css'])
      expect(Object.keys(openapi.paths), path).toContain(path);
  });
});
