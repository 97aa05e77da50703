/**
 * What a waiting contact and a registered agent cost in Redis: the state keys only (documents and
 * sorted sets; the streams are the log, bounded by retention). Measured with MEMORY USAGE on every
 * state key of a workspace before and after, so a change of layout that makes the state grow
 * shows here.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

const LANGUAGES = ['English', 'Spanish'];
const TOPICS = ['Support', 'Disputes', 'Billing'];

async function stateBytes(redis: RedisClient, workspace: string): Promise<number> {
  const k = workspaceKeys(workspace);
  const logs = new Set([k.commands, k.events, k.outcomes]);
  const keys = (await (redis as import('ioredis').Redis).keys(`${k.prefix}*`)).filter(
    (key) => !logs.has(key),
  );
  let total = 0;
  for (const key of keys)
    total += Number(await (redis as import('ioredis').Redis).memory('USAGE', key, 'SAMPLES', 0));
  return total;
}

async function apply(redis: RedisClient, workspace: string, commands: Command[]): Promise<void> {
  for (let i = 0; i < commands.length; i += 1000)
    await Promise.all(
      commands.slice(i, i + 1000).map((command) => appendCommand(redis, { workspace, command })),
    );
  await projectPending(redis, workspace);
}

describe('state size', () => {
  const suite = suiteRedis();

  it('a queued contact costs under 600 bytes of state, a registered agent under 400', async () => {
    const ws = `size-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const agents = 1000;
    const contacts = 10_000;
    const empty = await stateBytes(suite.admin, ws);
    await apply(
      suite.redis,
      ws,
      Array.from({ length: agents }, (_, i) => ({
        type: 'RegisterAgent' as const,
        agentId: `agent-${i + 1}`,
        skills: [LANGUAGES[i % 2]!, TOPICS[i % 3]!].sort(),
        capacity: 1,
      })),
    );
    const withAgents = await stateBytes(suite.admin, ws);
    await apply(
      suite.redis,
      ws,
      Array.from({ length: contacts }, (_, i) => ({
        type: 'QueueContact' as const,
        contactId: `contact-${i + 1}`,
        skills: [LANGUAGES[i % 2]!, TOPICS[(i >> 1) % 3]!].sort(),
        priority: i % 3,
      })),
    );
    const withContacts = await stateBytes(suite.admin, ws);
    const perAgent = (withAgents - empty) / agents;
    const perContact = (withContacts - withAgents) / contacts;
    console.log(`state: ${perContact.toFixed(0)} B per queued contact, ${perAgent.toFixed(0)} B per agent`);
    expect(perContact).toBeLessThan(600);
    expect(perAgent).toBeLessThan(400);
  });
});
