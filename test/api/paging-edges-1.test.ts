/**
 * The paged reads, over real Redis with many entries: `GET /events?after=&limit=&type=` and
 * `GET /agents?state=&skill=&limit=`, each sentence of docs/API.md about them held to the server:
 * `limit` at its bounds and in other spellings, `after` at and between entries, `next` chained to
 * read a whole history exactly once, in order, with a filter matching rarely, across the archive's
 * boundary and while events are appended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { comparePositions } from '../../src/domain/values.ts';
import { inProcessApi, type Json } from '../support/api.ts';
import { type ArchivingSwitchboard, archiveLog, archivingSwitchboard } from '../support/archive-log.ts';

const WS = 'paging-edges';
const api = inProcessApi([WS, `${WS}-agents`]);

type Env = { position: string; type: string };

/** Appends `n` raw events to `ws`'s event stream, one `SettingsChanged` every `every`: their positions. */
async function appendLog(ws: string, n: number, every = 0): Promise<{ all: string[]; rare: string[] }> {
  const redis = api.running.redis;
  const key = workspaceKeys(ws).events;
  const all: string[] = [];
  const rare: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = redis.pipeline();
    const types: string[] = [];
    for (let j = i; j < Math.min(n, i + 500); j++) {
      const type = every > 0 && j % every === every - 1 ? 'SettingsChanged' : 'AgentRemoved';
      types.push(type);
      const event = JSON.stringify({
        type,
        workspace: ws,
        at: new Date().toISOString(),
        data: { j },
        meta: {},
      });
      batch.xadd(key, '*', 'type', type, 'event', event);
    }
    const r = (await batch.exec()) ?? [];
    r.forEach(([, id], k) => {
      all.push(id as string);
      if (types[k] === 'SettingsChanged') rare.push(id as string);
    });
  }
  return { all, rare };
}

/** Every page from `after` with `query`, until `next` is null: the positions, and the pages' sizes. */
async function pageAll(
  get: (path: string) => Promise<Json>,
  query: string,
  after?: string,
): Promise<{ positions: string[]; sizes: number[] }> {
  const positions: string[] = [];
  const sizes: number[] = [];
  let cursor = after;
  for (let i = 0; i < 10_000; i++) {
    const page = await get(`/events?${query}${cursor !== undefined ? `&after=${cursor}` : ''}`);
    const events = page.events as Env[];
    positions.push(...events.map((e) => e.position));
    sizes.push(events.length);
    if (page.next === null) return { positions, sizes };
    expect(page.next).not.toBe(cursor);
    cursor = page.next as string;
  }
  throw new Error('paging did not end');
}

describe('GET /events: limit', () => {
  it('takes 1..1000 by value, default 100; refuses 0, 1001, 1e2, -1 and a repeat, naming limit', async () => {
    const ws = WS;
    const { all } = await appendLog(ws, 1100);
    const get = (q: string) => api.ok('GET', ws, `/events?${q}`);
    expect(((await get('')).events as Env[]).map((e) => e.position)).toEqual(all.slice(0, 100));
    expect(((await get('limit=1')).events as Env[]).map((e) => e.position)).toEqual(all.slice(0, 1));
    expect(((await get('limit=01')).events as Env[]).map((e) => e.position)).toEqual(all.slice(0, 1));
    const max = await get('limit=1000');
    expect((max.events as Env[]).map((e) => e.position)).toEqual(all.slice(0, 1000));
    expect(max.next).toBe(all[999]);
    for (const bad of ['0', '1001', '1e2', '-1', '1.0', ' 1', '', 'limit=1&limit=1']) {
      const q = bad.startsWith('limit=') ? bad : `limit=${encodeURIComponent(bad)}`;
      const p = await api.problem('GET', ws, `/events?${q}`, undefined, 400, 'invalid-request');
      expect(JSON.stringify(p)).toContain('limit');
    }
  });
});

describe('GET /events: after', () => {
  it('reads after any position: 0-0, before the first, between two, a removed entry, the last, past it', async () => {
    const ws = `${WS}-after`;
    const { all } = await appendLog(ws, 20);
    const redis = api.running.redis;
    const get = (q: string) => api.ok('GET', ws, `/events?${q}`);
    const positions = async (q: string) => ((await get(q)).events as Env[]).map((e) => e.position);
    expect(await positions('after=0-0')).toEqual(all);
    expect(await positions('after=0-1')).toEqual(all);
    const [ms, seq] = all[4]!.split('-');
    // A sequence part past the fifth entry's: what follows it, whether an entry has it or not.
    const next = `${ms}-${BigInt(seq!) + 1n}`;
    expect(await positions(`after=${next}`)).toEqual(all.filter((p) => comparePositions(p, next) > 0));
    // A removed entry's position still reads on from it.
    await redis.xdel(workspaceKeys(ws).events, all[7]!);
    expect(await positions(`after=${all[7]}`)).toEqual(all.slice(8));
    expect(await positions(`after=${all[6]}&limit=2`)).toEqual([all[8], all[9]]);
    // The last one: the end, an empty page with next null.
    const end = await get(`after=${all[19]}`);
    expect(end).toEqual({ events: [], next: null });
    // One past it names no event.
    const [lm, ls] = all[19]!.split('-');
    const ahead = await api.problem(
      'GET',
      ws,
      `/events?after=${lm}-${BigInt(ls!) + 1n}`,
      undefined,
      409,
      'position-ahead',
    );
    expect(ahead.lastPosition).toBe(all[19]);
    for (const bad of ['0', '1', '-0', '0-', '0-0-0', 'x-0']) {
      await api.problem('GET', ws, `/events?after=${bad}`, undefined, 400, 'invalid-request');
    }
    await api.problem('GET', ws, `/events?after=0-0&after=0-0`, undefined, 400, 'invalid-request');
  });
});

describe('GET /events: next', () => {
  it('chained, reads the whole history once and in order, with every limit, filtered or not', async () => {
    const ws = `${WS}-next`;
    const { all, rare } = await appendLog(ws, 1100, 97);
    const get = (path: string) => api.ok('GET', ws, path);
    for (const limit of [7, 100, 1000]) {
      const { positions, sizes } = await pageAll(get, `limit=${limit}`);
      expect(positions).toEqual(all);
      // Every page but the last is full.
      expect(sizes.slice(0, -1).every((s) => s === limit)).toBe(true);
    }
    for (const limit of [1, 2, 3]) {
      const { positions } = await pageAll(get, `limit=${limit}&type=SettingsChanged`);
      expect(positions).toEqual(rare);
    }
    const both = await pageAll(get, 'limit=5&type=SettingsChanged,AgentRemoved');
    expect(both.positions).toEqual(all);
    const twice = await pageAll(get, 'limit=5&type=SettingsChanged,SettingsChanged');
    expect(twice.positions).toEqual(rare);
  });

  it('while events are appended: each event once, in order, up to the end so far', async () => {
    const ws = `${WS}-appending`;
    const first = await appendLog(ws, 300, 10);
    const more: string[] = [];
    const writer = (async () => {
      for (let i = 0; i < 40; i++) more.push(...(await appendLog(ws, 7, 3)).all);
    })();
    const get = (path: string) => api.ok('GET', ws, path);
    const read: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await get(`/events?limit=13${after !== undefined ? `&after=${after}` : ''}`);
      read.push(...(page.events as Env[]).map((e) => e.position));
      if (read.length > 0) after = read[read.length - 1];
    }
    await writer;
    const rest = await pageAll(get, 'limit=13', after);
    read.push(...rest.positions);
    expect(read).toEqual([...first.all, ...more]);
  });
});

describe('GET /events across the archive', () => {
  let sb: ArchivingSwitchboard;
  beforeAll(async () => {
    sb = await archivingSwitchboard('sb-paging-edges-1-');
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it('pages over the boundary between the archive and Redis: every event once, in order', async () => {
    const ws = `${WS}-archive`;
    const redis = sb.main.redis;
    const key = workspaceKeys(ws).events;
    const all: string[] = [];
    for (let j = 0; j < 420; j++) {
      const type = j % 37 === 36 ? 'SettingsChanged' : 'AgentRemoved';
      const event = JSON.stringify({
        type,
        workspace: ws,
        at: new Date().toISOString(),
        data: { j },
        meta: {},
      });
      all.push((await redis.xadd(key, '*', 'type', type, 'event', event))!);
    }
    const moved = await archiveLog(redis, new DiskArchive(sb.dir), ws);
    expect(moved).toBeGreaterThan(0);
    expect(await redis.xlen(key)).toBeLessThan(420);
    const get = async (path: string) => {
      const res = await sb.main.api!.inject({ method: 'GET', url: `/v1/workspaces/${ws}${path}` });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as Json;
    };
    for (const limit of [1, 33, 100, 1000])
      expect((await pageAll(get, `limit=${limit}`)).positions).toEqual(all);
    const rare = all.filter((_, j) => j % 37 === 36);
    for (const limit of [1, 4])
      expect((await pageAll(get, `limit=${limit}&type=SettingsChanged`)).positions).toEqual(rare);
    // From a position in the archive, one at its end, and one in Redis.
    for (const i of [0, 99, 100, 349, 350, 369, 418]) {
      expect((await pageAll(get, 'limit=17', all[i])).positions).toEqual(all.slice(i + 1));
    }
    expect(await get(`/events?after=${all[419]}`)).toEqual({ events: [], next: null });
  });
});

describe('GET /agents', () => {
  const ws = `${WS}-agents`;
  const ids = (b: Json) => (b.agents as { id: string }[]).map((a) => a.id);

  it('limit 1..10,000 (default 1,000), state and skill combined, by id; refuses the rest naming the parameter', async () => {
    const made: string[] = [];
    for (let i = 0; i < 12; i++) {
      const id = `ag-${String(12 - i).padStart(2, '0')}`;
      made.push(id);
      const skills = i % 3 === 0 ? [{ name: 'x', level: 3 }, 'y'] : i % 3 === 1 ? ['x'] : ['y'];
      await api.ok('POST', ws, '/agents', { id, skills });
    }
    const sorted = [...made].sort();
    await api.until(ws, '/agents', (b) => ids(b).length === 12);
    expect(ids(await api.ok('GET', ws, '/agents'))).toEqual(sorted);
    expect(ids(await api.ok('GET', ws, '/agents?limit=1'))).toEqual(sorted.slice(0, 1));
    expect(ids(await api.ok('GET', ws, '/agents?limit=10000'))).toEqual(sorted);
    expect(ids(await api.ok('GET', ws, '/agents?limit=0005'))).toEqual(sorted.slice(0, 5));
    const withX = ids(await api.ok('GET', ws, '/agents?skill=x'));
    expect(withX).toEqual(sorted.filter((id) => [0, 1].includes((12 - Number(id.slice(3))) % 3)));
    expect(ids(await api.ok('GET', ws, '/agents?skill=x&state=available'))).toEqual([]);
    expect(ids(await api.ok('GET', ws, '/agents?skill=x&state=offline'))).toEqual(withX);
    expect(ids(await api.ok('GET', ws, '/agents?skill=x&state=offline&limit=2'))).toEqual(withX.slice(0, 2));
    expect(ids(await api.ok('GET', ws, '/agents?skill=nope'))).toEqual([]);
    for (const q of [
      'limit=0',
      'limit=10001',
      'limit=1e2',
      'state=sleeping',
      'state=',
      'skill=',
      'skill=a%20b',
      'state=offline&state=offline',
      'skill=x&skill=y',
      'limit=1&limit=1',
      'other=1',
    ]) {
      const p = await api.problem('GET', ws, `/agents?${q}`, undefined, 400, 'invalid-request');
      expect(JSON.stringify(p)).toContain(q.split('=')[0]!);
    }
  });

  it('state=available&skill= in LAA order, limit of them', async () => {
    const order = ['ag-05', 'ag-01', 'ag-12', 'ag-03'];
    for (const id of order) {
      await api.ok('POST', ws, `/agents/${id}/state`, { state: 'available' });
      await new Promise((r) => setTimeout(r, 5));
    }
    const withX = (await api.until(ws, '/agents?state=available&skill=x', (b) => ids(b).length >= 2)).agents;
    const want = order.filter((id) => (ids({ agents: withX }) as string[]).includes(id));
    expect(ids(await api.ok('GET', ws, '/agents?state=available&skill=x'))).toEqual(want);
    expect(ids(await api.ok('GET', ws, '/agents?state=available&skill=x&limit=1'))).toEqual(want.slice(0, 1));
  });
});
