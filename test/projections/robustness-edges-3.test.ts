/**
 * Redis refusing writes (maxmemory reached, noeviction) while commands wait for the projector:
 * the projector's loop retries, its warn lines say what to do about a full Redis (not "check that
 * Redis is up": it answers), and once Redis has room again the commands apply, once each.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { appliedPosition } from '../../src/adapters/redis/projection-reads.ts';
import { WorkspaceRunner } from '../../src/app/workspace-runner.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { defaultProjectorOptions, ensureGroup, Projector } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

type Line = Record<string, unknown>;

describe('a projector while Redis is out of memory', () => {
  const suite = suiteRedis();

  it('retries, says to raise maxmemory or free memory, and applies everything once Redis has room', async () => {
    const ws = `oom-${Date.now().toString(36)}`;
    const lines: Line[] = [];
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _enc, done) {
          for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
          done();
        },
      }),
    );
    await ensureGroup(suite.redis, ws);
    await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 },
    });
    const last = await appendCommand(suite.redis, {
      workspace: ws,
      command: { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 },
    });
    await suite.admin.config('SET', 'maxmemory-policy', 'noeviction');
    await suite.admin.config('SET', 'maxmemory', '1');
    const projector = new Projector(suite.redis, log, { ...defaultProjectorOptions, blockMs: 200 });
    const runner = new WorkspaceRunner(suite.redis, projector, log, { workspaces: [ws], discover: false });
    try {
      runner.start();
      await waitFor(
        'three warn lines',
        () => (lines.filter((l) => Number(l.level) >= 40).length >= 3 ? true : undefined),
        {
          timeoutMs: 5000,
        },
      );
      expect(await appliedPosition(suite.redis, ws)).not.toBe(last.position);
      const loud = lines.filter((l) => Number(l.level) >= 40);
      expect(
        loud.filter((l) => !/raise maxmemory or free memory/.test(String(l.msg))).map((l) => l.msg),
        'warn lines of a Redis at its memory limit that do not say to raise maxmemory or free memory',
      ).toEqual([]);
      await suite.admin.config('SET', 'maxmemory', '0');
      await waitFor(
        'the commands applied',
        async () => ((await appliedPosition(suite.redis, ws)) === last.position ? true : undefined),
        {
          timeoutMs: 5000,
        },
      );
      const report = await auditWorkspace(suite.redis, ws, { idle: true });
      expect(report.violations).toEqual([]);
    } finally {
      await suite.admin.config('SET', 'maxmemory', '0');
      await runner.stop();
    }
  });
});
