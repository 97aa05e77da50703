/**
 * With the projector role in the API's process, the commands a tick appends are applied by a
 * projector step sent right behind them: outcomes as before, applied once, counted by the
 * projector; and only for the workspaces this process's projector serves, so another workspace's
 * commands stay unapplied until a projector serves it. A real Switchboard on a real Redis.
 */
import { describe, expect, it } from 'vitest';
import { PROJECTOR_GROUP, workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { appliedPosition } from '../../src/adapters/redis/projection-reads.ts';
import { commandCalls, scriptCalls, startScriptTiming } from '../../src/cli/bench/redis-time.ts';
import { comparePositions } from '../../src/domain/values.ts';
import { inProcessApi } from '../support/api.ts';
import { sleep, waitFor } from '../support/wait.ts';

const SERVED = 'api-soon-served';
const OTHER = 'api-soon-other';
// The api and projector roles only: the projector serves SERVED, nothing serves OTHER.
// A command not applied within 1.5 s is answered 202 (two tests below wait for that): long enough
// that a loaded machine does not turn the others' 201s into 202s.
const api = inProcessApi([SERVED], { env: { ROLES: 'api,projector', COMMAND_TIMEOUT_MS: '1500' } });

const post = (ws: string, id: string) =>
  api.running.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${ws}/contacts`,
    payload: { id, skills: ['k'] },
  });

describe('the projector step behind the appends', () => {
  it('applies the commands of a served workspace, each once, with their outcomes', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post(SERVED, `c${i}`)));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(30).fill(201));
    expect(new Set(answers.map((a) => (a.json() as { position: string }).position)).size).toBe(30);
    const again = await post(SERVED, 'c0');
    expect(again.statusCode).toBe(409);
    const status = (await api.running.api!.inject({ method: 'GET', url: '/status' })).json() as {
      projectorApplied: number;
    };
    expect(status.projectorApplied).toBe(31);
  });

  it("one step per command at a slow pace: the loop's wake-up for an entry already applied sends nothing", async () => {
    const admin = api.server.adminClient();
    // XACKs Redis ran, the steps' own included.
    const xacks = () => commandCalls(admin, 'xack');
    try {
      await admin.ping(); // a cluster client knows its masters once connected
      // The loop also sends a step when its read has waited blockMs (2 s) with nothing delivered.
      // A command just before the window restarts that wait, so none falls inside the window
      // (each command below restarts it again).
      expect((await post(SERVED, 'slow-warm-up')).statusCode).toBe(201);
      const started = performance.now();
      await startScriptTiming(admin);
      const xacksBefore = await xacks();
      const readsBefore = await commandCalls(admin, 'xreadgroup');
      for (let i = 0; i < 10; i++) {
        expect((await post(SERVED, `slow-${i}`)).statusCode).toBe(201);
        await sleep(30); // the loop's read wakes for the entry meanwhile
      }
      await sleep(200);
      // The window takes about 0.6 s; on a loaded machine it may outlast the loop's 2 s wait, and
      // each wait that runs out adds a step of the loop's own and a read: those are allowed.
      const waitsOut = Math.floor((performance.now() - started) / 2000);
      const steps = (await scriptCalls(admin)).filter((c) => c.name === 'project');
      // Each command's own step; the loop's wake-ups added none (they doubled the steps before).
      expect(steps.length).toBeGreaterThanOrEqual(10);
      expect(steps.length).toBeLessThanOrEqual(10 + waitsOut);
      // Each step's time holds the commands it ran (XADD, XRANGE, HSET, ...) and its Lua around them.
      for (const s of steps) {
        expect(s.commandsUs).toBeGreaterThan(0);
        expect(s.commandsUs).toBeLessThanOrEqual(s.us);
      }
      const [pending] = (await api.running.redis.xpending(
        workspaceKeys(SERVED).commands,
        PROJECTOR_GROUP,
      )) as [number];
      expect(pending).toBe(0);
      // Each step acknowledged its command; the loop acknowledged nothing again (it sent 10 more before).
      expect((await xacks()) - xacksBefore).toBe(10);
      // Each command was appended by the step that applied it, which moved the group's delivery
      // point past it: the loop's blocked read never woke for one (it woke 10 times before).
      expect((await commandCalls(admin, 'xreadgroup')) - readsBefore).toBeLessThanOrEqual(waitsOut);
    } finally {
      admin.disconnect();
    }
  });

  it("appends a tick's commands in one step, Idempotency-Keys looked up there, and applies them", async () => {
    const admin = api.server.adminClient();
    try {
      await admin.ping();
      await startScriptTiming(admin);
      const app = api.running.api!;
      const send = (i: number, key?: string) =>
        app.inject({
          method: 'POST',
          url: `/v1/workspaces/${SERVED}/contacts`,
          payload: { id: `tick-${i}`, skills: ['k'] },
          ...(key ? { headers: { 'idempotency-key': key } } : {}),
        });
      // Sent in one tick: one step takes them all (the step that applies them appends them); half
      // carry an Idempotency-Key, and the last repeats the first key.
      const answers = await Promise.all([
        ...Array.from({ length: 12 }, (_, i) => send(i, i % 2 === 0 ? `tick-key-${i}` : undefined)),
        send(0, 'tick-key-0'),
      ]);
      expect(answers.map((a) => a.statusCode)).toEqual(Array(13).fill(201));
      const calls = await scriptCalls(admin);
      expect(calls.filter((c) => c.name === 'project').length).toBeLessThan(12);
      // No append of its own for any of them, keyed or not.
      expect(calls.filter((c) => c.name === 'append')).toEqual([]);
      // Each at its own position, its entry as an append writes it; the repeat at the first's.
      const entries = (await api.running.redis.xrange(workspaceKeys(SERVED).commands, '-', '+')) as [
        string,
        string[],
      ][];
      const positions = answers.map((a) => (a.json() as { position: string }).position);
      expect(positions[12]).toBe(positions[0]);
      expect(new Set(positions).size).toBe(12);
      for (const [i, position] of positions.slice(0, 12).entries()) {
        const [, fields] = entries.find(([id]) => id === position)!;
        expect(fields.slice(0, 2)).toEqual(['type', 'QueueContact']);
        expect(JSON.parse(fields[fields.indexOf('command') + 1]!)).toMatchObject({ contactId: `tick-${i}` });
        const key = fields.indexOf('idempotencyKey');
        expect(key < 0 ? undefined : fields[key + 1]).toBe(i % 2 === 0 ? `tick-key-${i}` : undefined);
      }
      // The key's record names the first command, as an append's does.
      const record = JSON.parse(
        (await api.running.redis.hget(workspaceKeys(SERVED).idempotency, 'tick-key-0'))!,
      );
      expect(record.position).toBe(positions[0]);
      expect(
        await api.running.redis.zscore(workspaceKeys(SERVED).idempotencyExpiry, 'tick-key-0'),
      ).not.toBeNull();
    } finally {
      admin.disconnect();
    }
  });

  it('answers a command whose step failed after appending it with its position, and applies it once the fault is gone', async () => {
    const ws = SERVED;
    const k = workspaceKeys(ws);
    const redis = api.running.redis;
    // The meta key (the checkpoint's hash) holds a string: every step fails on it (WRONGTYPE) after
    // the append, outside any command's handler.
    const admin = api.server.adminClient();
    const aside = `${k.meta}:aside`;
    let answer: Awaited<ReturnType<typeof post>>;
    try {
      await admin.rename(k.meta, aside);
      await admin.set(k.meta, 'not a hash');
      answer = await post(ws, 'after-fault');
      // Appended (so not 503, and with its position) but not applied in time: 202.
      expect(answer.statusCode).toBe(202);
    } finally {
      await admin.del(k.meta);
      await admin.rename(aside, k.meta);
      admin.disconnect();
    }
    const position = (answer.json() as { position: string }).position;
    expect(position).toMatch(/^\d+-\d+$/);
    // The loop's read woke for it (the failed step did not move the delivery point) and a later step applies it.
    await waitFor(
      'the command applied',
      async () => comparePositions(await appliedPosition(redis, ws), position) >= 0,
      {
        timeoutMs: 15_000,
      },
    );
    const outcomes = (await redis.xrange(k.outcomes, '-', '+')) as [string, string[]][];
    expect(outcomes.filter(([, f]) => f[f.indexOf('position') + 1] === position)).toHaveLength(1);
    expect(await redis.hexists(k.contacts, 'after-fault')).toBe(1);
  });

  it('leaves the commands of a workspace no projector here serves to the one that serves it', async () => {
    const answer = await post(OTHER, 'x1');
    expect(answer.statusCode).toBe(202);
    expect(await appliedPosition(api.running.redis, OTHER)).toBe('0-0');
  });
});
