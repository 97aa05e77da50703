/**
 * What a workspace keeps in Redis after weeks of traffic: a real process (API, projector,
 * dispatcher, archiver) against a real redis-server takes a few hundred agents through their life
 * (each with a skill set of its own, deleted at the end), their contacts through theirs (each with
 * an Idempotency-Key of its own), a few hundred live-feed tickets never used and upgrades with
 * tickets nobody issued; then, once CONTACT_RETENTION has passed, every key of the workspace is
 * read with SCAN. Nothing per agent, contact, ticket or skill set may be left without an expiry:
 * what is left is the workspace's fixed set of keys, the documents' hashes are empty, and what a
 * client's action made beside them (tickets, rate counters, socket slots, interval tallies)
 * expires.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { globalKeys, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { tryLiveOpen } from '../support/live-open.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'growth-edges-1';
// Each bounded kind a hundred times over: what grows with them shows as a hundred of something.
const N = 100;
const tempDir = suiteTempDirs();

let redis: TestRedis;
let admin: RedisClient;
let sb: SwitchboardProcess;
let key: string;

beforeAll(async () => {
  redis = await startTestRedis();
  admin = redis.adminClient();
  const client = redis.client();
  key = (await createApiKey(client, { workspace: WS, role: 'admin' })).key;
  client.disconnect();
  sb = await startProcess({
    roles: 'api,projector,dispatcher,archiver',
    redis,
    env: {
      AUTH: 'on',
      WORKSPACES: WS,
      CONTACT_RETENTION: '1s',
      ARCHIVE_EVERY_MS: '200',
      ARCHIVE_DIR: await tempDir('growth-archive-'),
      WS_MAX_PER_KEY: '50',
      LOG_LEVEL: 'warn',
    },
  });
}, 60_000);

afterAll(async () => {
  await killAllProcesses();
  admin?.disconnect();
  await redis?.stop();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${sb.url}/v1/workspaces/${WS}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

/** Runs `f` for 0..n-1, `width` at a time. */
async function each(n: number, width: number, f: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

/** Connections Redis holds (each event tail of an API instance is one). */
async function clientCount(): Promise<number> {
  return String(await admin.call('CLIENT', 'LIST'))
    .trim()
    .split('\n').length;
}

interface KeyInfo {
  readonly key: string;
  readonly type: string;
  readonly ttl: number;
  readonly size: number;
}

async function scanAll(match: string): Promise<KeyInfo[]> {
  const out: KeyInfo[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const [type, ttl] = await Promise.all([admin.type(k), admin.pttl(k)]);
      const size =
        type === 'hash'
          ? await admin.hlen(k)
          : type === 'zset'
            ? await admin.zcard(k)
            : type === 'set'
              ? await admin.scard(k)
              : type === 'stream'
                ? await admin.xlen(k)
                : 1;
      out.push({ key: k, type, ttl, size });
    }
  } while (cursor !== '0');
  return out.sort((a, b) => (a.key < b.key ? -1 : 1));
}

describe('a workspace after a few hundred agents, contacts, tickets and refused upgrades', () => {
  it('keeps its fixed keys only, its documents forgotten, everything else expiring', async () => {
    await call('PUT', '/settings', { offerTimeoutMs: 0, wrapUpMs: 0 });
    await each(N, 16, async (i) => {
      await call('POST', '/agents', { id: `a${i}`, skills: [`s${i}`, 'common'] });
      await call('POST', `/agents/a${i}/state`, { state: 'available' });
      await call('POST', '/contacts', { id: `c${i}`, skills: [`s${i}`] }, { 'idempotency-key': `q-${i}` });
    });
    await each(N, 16, async (i) => {
      await waitFor(
        `c${i} assigned`,
        async () => (await call('GET', `/contacts/c${i}`)).state === 'assigned',
        { timeoutMs: 20_000 },
      );
      await call('POST', `/contacts/c${i}/complete`, undefined, { 'idempotency-key': `done-${i}` });
      await call('DELETE', `/agents/a${i}`);
    });
    // Tickets asked for and never used; upgrades with tickets nobody issued.
    await each(N, 16, async () => call('POST', '/ws-tickets'));
    await each(N, 16, async (i) => {
      const r = await tryLiveOpen(
        sb.url!,
        `/v1/workspaces/${WS}/events/live?ticket=wst_${String(i).padStart(43, 'x')}`,
      );
      expect('status' in r && r.status).toBe(401);
    });
    // Requests and upgrades naming workspaces that do not exist, with this workspace's key or a
    // ticket nobody issued: refused, they leave no key, no registry entry and no event tail (a
    // connection each) behind.
    const clientsBefore = await clientCount();
    await each(N, 16, async (i) => {
      const res = await fetch(`${sb.url}/v1/workspaces/nowhere-${i}/agents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'a', skills: ['x'] }),
      });
      await res.arrayBuffer();
      expect(res.status).toBe(403);
      const r = await tryLiveOpen(
        sb.url!,
        `/v1/workspaces/nowhere-${i}/events/live?ticket=wst_${String(i).padStart(43, 'y')}`,
      );
      expect('status' in r && r.status).toBe(401);
    });
    const clientsAfter = await clientCount();
    expect(clientsAfter - clientsBefore).toBeLessThan(5);
    expect(await scanAll('sb:{nowhere-*')).toEqual([]);
    expect((await admin.smembers(globalKeys.workspaces)).sort()).toEqual([WS]);
    // A contact's document goes once CONTACT_RETENTION (1 s) has passed and the archiver asked.
    const k = workspaceKeys(WS);
    await waitFor('finished contacts forgotten', async () => (await admin.hlen(k.contacts)) === 0, {
      timeoutMs: 20_000,
    });

    const keys = await scanAll(`sb:{${WS}}:*`);
    const fixed = new Set<string>(
      Object.values(k).filter(
        (v): v is string => typeof v === 'string' && v !== k.workspace && v !== k.prefix,
      ),
    );
    const kept = keys.filter((x) => x.ttl < 0);
    const summary = keys.map((x) => `${x.key} ${x.type} ttl=${x.ttl} n=${x.size}`).join('\n');
    // Nothing without an expiry beyond the workspace's fixed set of keys.
    expect(
      kept.filter((x) => !fixed.has(x.key)).map((x) => x.key),
      summary,
    ).toEqual([]);
    // The documents and the routing index hold nothing of the agents and contacts that are gone.
    const sizeOf = (name: string) => keys.find((x) => x.key === name)?.size ?? 0;
    for (const name of [
      k.agents,
      k.agentIds,
      k.contacts,
      k.pools,
      k.poolHeads,
      k.agentSkillSets,
      k.skillSetQueues,
      k.queueHeads,
      k.queue,
      k.skillSets,
      k.timers,
      k.finished,
      k.intervalContacts,
    ])
      expect(sizeOf(name), `${name}\n${summary}`).toBe(0);
    // The dispatcher's candidates: no queue or pool of a skill set nobody has any more.
    expect(sizeOf(k.candidates), summary).toBeLessThan(3);
    // Global keys: the registries hold this process's entries only.
    const global = await scanAll('sb:*');
    const outside = global.filter((x) => !x.key.startsWith('sb:{'));
    const fixedGlobal = new Set<string>([...Object.values(globalKeys), 'sb:api-keys']);
    expect(
      outside.filter((x) => x.ttl < 0 && !fixedGlobal.has(x.key)).map((x) => x.key),
      outside.map((x) => `${x.key} ${x.type} ttl=${x.ttl} n=${x.size}`).join('\n'),
    ).toEqual([]);
  }, 120_000);
});
