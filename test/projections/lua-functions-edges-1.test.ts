/**
 * A Redis that refuses FUNCTION LOAD with an error Switchboard does not recognise (not "unknown
 * command", not NOPERM: a managed Redis such as Redis Enterprise or Redis Cloud answers in its own
 * words, and a library the server will not take answers "already exists" or a compile error). What
 * a user saw: the steps ran as scripts, as they should, but every step sent the ~70 KB library
 * again, so Redis compiled and refused it once per command. Now a refused library is tried again
 * only after a pause, and the steps run as scripts meanwhile. A real Redis and the real steps; the
 * refusal is a library of another name holding the step's function name, which makes the real
 * library's FUNCTION LOAD REPLACE fail with "Function ... already exists".
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { declaredScripts, LIBRARY_RETRY_MS, useLuaFunctions } from '../../src/adapters/redis/scripts.ts';
import { commandCalls, masters } from '../../src/cli/bench/redis-time.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('a Redis that refuses the steps’ library', () => {
  const suite = suiteRedis();
  let impostor: string;

  beforeAll(async () => {
    useLuaFunctions(true);
    const project = declaredScripts.find((s) => s.command.startsWith('sb_project_'))!;
    impostor = `impostor_${Date.now().toString(36)}`;
    for (const m of masters(suite.admin)) {
      await m.call('FUNCTION', 'FLUSH');
      await m.call(
        'FUNCTION',
        'LOAD',
        `#!lua name=${impostor}\nredis.register_function('${project.command}', function() return 0 end)`,
      );
    }
  });

  afterAll(async () => {
    vi.useRealTimers();
    for (const m of masters(suite.admin)) await m.call('FUNCTION', 'FLUSH');
  });

  const step = async (ws: string, n: number) => {
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: `a${n}`, skills: ['X'], capacity: 1 },
    });
    expect(await projectPending(suite.redis, ws)).toBe(1);
    // Lets a refusal come back before the next step, as between a live projector's steps.
    await new Promise((r) => setTimeout(r, 20));
  };
  const failedLoads = async () => {
    let n = 0;
    for (const m of masters(suite.admin))
      n += Number(/cmdstat_function\|load:.*failed_calls=(\d+)/.exec(await m.info('commandstats'))?.[1] ?? 0);
    return n;
  };

  it('sends the library once, not once per step, and every step still applies its command', async () => {
    const ws = `refused-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const before = await commandCalls(suite.admin, 'function\\|load');
    const failedBefore = await failedLoads();
    for (let n = 0; n < 12; n++) await step(ws, n);
    expect(await suite.redis.hlen(workspaceKeys(ws).agents)).toBe(12);
    // The refusal did happen (the test's premise), and the library was sent once per master.
    expect(await failedLoads()).toBeGreaterThan(failedBefore);
    expect((await commandCalls(suite.admin, 'function\\|load')) - before).toBeLessThanOrEqual(
      masters(suite.admin).length,
    );
  });

  it('sends it again after the pause, and once Redis takes it the steps run as functions', async () => {
    const ws = `retaken-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    for (const m of masters(suite.admin)) await m.call('FUNCTION', 'DELETE', impostor);
    await step(ws, 0);
    // Within the pause: still scripts, the library not sent again.
    const fcalls = await commandCalls(suite.admin, 'fcall');
    await step(ws, 1);
    expect(await commandCalls(suite.admin, 'fcall')).toBe(fcalls);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + LIBRARY_RETRY_MS + 1000 });
    await step(ws, 2);
    for (let n = 3; n < 8; n++) await step(ws, n);
    expect(await commandCalls(suite.admin, 'fcall')).toBeGreaterThan(fcalls);
    expect(await suite.redis.hlen(workspaceKeys(ws).agents)).toBe(8);
  });
});
