/**
 * Dead projectors leave no consumers behind: a projector's consumer in the command stream's group
 * is removed once it has been idle for DEAD_CONSUMER_IDLE_MS and holds no pending entries (a
 * consumer still holding entries stays until they are reclaimed), while live ones stay.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { PROJECTOR_GROUP, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import type { Command } from '../../src/domain/commands.ts';
import { defaultProjectorOptions, ensureGroup, Projector } from '../../src/projections/projector.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';

const log = pino({ level: 'silent' });

let server: TestRedis;
let redis: RedisClient;
const started: Running[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});

afterAll(async () => {
  await killAllProcesses();
  for (const r of started) await r.stop();
  redis?.disconnect();
  await server?.stop();
});

interface ConsumerInfo {
  name: string;
  pending: number;
  idle: number;
}

async function consumers(ws: string): Promise<ConsumerInfo[]> {
  const reply = (await redis.xinfo('CONSUMERS', workspaceKeys(ws).commands, PROJECTOR_GROUP)) as unknown[][];
  return reply.map((fields) => {
    const f = new Map<string, unknown>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(String(fields[i]), fields[i + 1]);
    return { name: String(f.get('name')), pending: Number(f.get('pending')), idle: Number(f.get('idle')) };
  });
}

const register = (id: string): Command => ({
  type: 'RegisterAgent',
  agentId: id,
  skills: ['x'],
  capacity: 1,
});

describe('dead projector consumers', () => {
  it('the consumer of a SIGKILLed projector disappears after DEAD_CONSUMER_IDLE_MS; the live one stays', async () => {
    const ws = 'dead-consumer-killed';
    const env = { WORKSPACES: ws, DISCOVER_WORKSPACES: 'false' };
    const killed = await startProcess({ roles: 'projector', redis: server, env, name: 'killed projector' });
    // A consumer shows up with its first delivery; a command applied by the projector's catch-up
    // step is never delivered (the group delivers from the checkpoint on), so send until one is.
    let n = 0;
    const dead = await waitFor('the projector process to read as a consumer of the group', async () => {
      await appendCommand(redis, { workspace: ws, command: register(`a${++n}`) });
      return (await consumers(ws).catch(() => [])).find((c) => c.name.includes(`-${killed.pid}-`));
    });
    killed.kill('SIGKILL');
    await killed.exited;
    const killedAt = Date.now();

    const live = await startSwitchboard(
      loadConfig({
        ...server.env,
        ...env,
        ROLES: 'projector',
        DEAD_CONSUMER_IDLE_MS: '3000',
        LOG_LEVEL: 'silent',
      }),
      log,
    );
    started.push(live);
    const others = await waitFor(
      "the killed projector's consumer to be removed",
      async () => {
        await appendCommand(redis, { workspace: ws, command: register(`a${++n}`) });
        const all = await consumers(ws);
        return all.some((c) => c.name === dead.name) || all.length === 0 ? undefined : all;
      },
      { timeoutMs: 30_000, everyMs: 200 },
    );
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(3000);
    // The live projector's consumer is there (it read a command) and was not taken for a dead one.
    expect(others).toHaveLength(1);
    expect(others[0]!.name).not.toBe(dead.name);
    await sleep(500);
    expect((await consumers(ws)).map((c) => c.name)).toEqual([others[0]!.name]);
  });

  it('a consumer holding pending entries stays until they are reclaimed; a recent one stays', async () => {
    const ws = 'dead-consumer-pending';
    const k = workspaceKeys(ws);
    await ensureGroup(redis, ws);
    await appendCommand(redis, { workspace: ws, command: register('b1') });
    // A projector that took a command and died before applying it.
    await redis.xreadgroup('GROUP', PROJECTOR_GROUP, 'ghost', 'COUNT', 1, 'STREAMS', k.commands, '>');
    const projector = new Projector(redis, log, {
      ...defaultProjectorOptions,
      reclaimIdleMs: 1000,
      deadConsumerIdleMs: 1000,
    });
    await sleep(1200);
    await redis.xgroup('CREATECONSUMER', k.commands, PROJECTOR_GROUP, 'recent');
    expect(await projector.removeDeadConsumers(ws)).toEqual([]);
    expect((await consumers(ws)).find((c) => c.name === 'ghost')?.pending).toBe(1);

    expect(await projector.reclaim(ws)).toBe(1);
    expect(await projector.removeDeadConsumers(ws)).toEqual(['ghost']);
    const left = (await consumers(ws)).map((c) => c.name).sort();
    expect(left).toEqual([projector.consumer, 'recent'].sort());
    // The reclaimed command was applied and acknowledged.
    expect(await redis.hget(k.meta, 'applied')).toBe((await redis.xrevrange(k.commands, '+', '-'))[0]![0]);
    expect((await redis.xpending(k.commands, PROJECTOR_GROUP))[0]).toBe(0);
  });
});
