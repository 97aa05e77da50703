/**
 * The projector's own state in the meta hash, changed without any event: the workspace's settings
 * (what GET /settings answers, and what decides every later offer, wrap-up, wait limit and choice
 * of agent) and its arrival counter and tick (`seq`, `tick`: the next contact's place in its queue).
 * The log says what they are; the auditor reports a hash that says otherwise, naming the field.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { writeLog } from '../../src/cli/bench/audit-log.ts';
import { projectPending } from '../../src/projections/projector.ts';
import { plainSettings } from '../support/positions.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the meta hash changed without an event', () => {
  const suite = suiteRedis();
  const run = Date.now().toString(36);
  let n = 0;

  /** A real log (about 300 events) whose last command sets the settings: offers of 30 s. */
  async function log(): Promise<string> {
    const ws = `tamper-meta-${run}-${++n}`;
    await writeLog(suite.redis, ws, { events: 300, agents: 8, seed: n });
    await appendCommand(suite.redis, {
      workspace: ws,
      command: plainSettings({ offerTimeoutMs: 30_000, channels: ['chat', 'voice'] }),
    });
    await projectPending(suite.redis, ws);
    expect((await auditWorkspace(suite.redis, ws, { idle: true })).violations).toEqual([]);
    return ws;
  }

  const stateViolations = async (ws: string) =>
    (await auditWorkspace(suite.redis, ws)).violations.map((v) => `${v.kind}: ${v.message}`);

  it('reports settings no SettingsChanged gave', async () => {
    const ws = await log();
    const k = workspaceKeys(ws);
    const stored = JSON.parse((await suite.redis.hget(k.meta, 'settings'))!) as Record<string, unknown>;
    // Offers off and another way of choosing agents: every later decision changes.
    await suite.redis.hset(
      k.meta,
      'settings',
      JSON.stringify({ ...stored, offerTimeoutMs: 0, agentSelection: 'most-skilled' }),
    );
    expect(await stateViolations(ws)).toEqual([
      expect.stringMatching(
        /^state: settings differ: offerTimeoutMs: log 0, model 30000; agentSelection: log "most-skilled", model "longest-available"/,
      ),
    ]);

    // Gone altogether: the defaults (no offers, the voice channel only) are not what the log set.
    await suite.redis.hdel(k.meta, 'settings');
    expect(await stateViolations(ws)).toEqual([
      expect.stringMatching(/^state: settings differ: .*offerTimeoutMs: log 0, model 30000/),
    ]);
  });

  it("reports an arrival counter or tick that is not the log's last arrival", async () => {
    const ws = await log();
    const k = workspaceKeys(ws);
    const [seq, tick] = (await suite.redis.hmget(k.meta, 'seq', 'tick')) as [string, string];
    expect(Number(seq)).toBeGreaterThan(10);
    // Set back: the next contact would take the arrival number of one queued before it.
    await suite.redis.hset(k.meta, 'seq', '3');
    expect(await stateViolations(ws)).toEqual([
      `state: the arrival counter (meta seq) is 3, the log's ${seq}`,
    ]);
    await suite.redis.hset(k.meta, 'seq', seq, 'tick', String(Number(tick) - 1_000_000));
    expect(await stateViolations(ws)).toEqual([
      `state: the arrival tick (meta tick) is ${Number(tick) - 1_000_000}, the log's ${tick}`,
    ]);
  });
});
