/**
 * The live interval projection reads a workspace's log across the archive (a workspace's first step
 * reads it from its start). A segment it cannot read (here emptied: its entries are gone) is a hole
 * in the log: the projection must stop before it and say so, not count the log without it (GET
 * /stats/intervals would then answer tallies short of what happened, with no sign). A real process
 * with the projector role (src/main.ts) runs it as deployed.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { before } from '../../src/archive/segment.ts';
import { INTERVAL_MS, intervalStart } from '../../src/domain/intervals.ts';
import { archivedLog } from '../support/archive-log.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { suiteRedis } from '../support/redis.ts';
import { suiteTempDirs } from '../support/temp-dirs.ts';
import { waitFor } from '../support/wait.ts';

describe('the live interval projection over an archive with a hole', () => {
  const suite = suiteRedis();
  const tempDir = suiteTempDirs();
  afterAll(killAllProcesses);

  it('stops before a segment it cannot read and says so, rather than count the log without it', async () => {
    const ws = `intervals-break-${Date.now().toString(36)}`;
    const { events, store, dir, names } = await archivedLog(
      suite.redis,
      ws,
      await tempDir('sb-intervals-break-'),
      11,
    );
    const k = workspaceKeys(ws);
    expect(names.length).toBeGreaterThanOrEqual(3);
    // Segment 2 (events 200..299) emptied: its entries cannot be read from anywhere.
    await writeFile(path.join(dir, names[2]!), '');

    const proc = await startProcess({
      roles: 'api,projector',
      redis: suite.server,
      env: {
        WORKSPACES: ws,
        DISCOVER_WORKSPACES: 'false',
        ARCHIVE_DIR: store.root,
        LEASE_TTL_MS: '1000',
        LOG_LEVEL: 'info',
      },
    });
    const last = events.at(-1)!;
    await waitFor(
      () => `the projection to reach the end of the log or to report the break\n${proc.logText()}`,
      async () =>
        (await suite.redis.hget(k.intervals, 'checkpoint')) === last || proc.logText().includes(names[2]!),
      { timeoutMs: 15_000 },
    );
    const checkpoint = await suite.redis.hget(k.intervals, 'checkpoint');
    expect(
      checkpoint === null || before(checkpoint, events[200]!),
      `the projection's checkpoint ${checkpoint} is past the unreadable segment (events from ${events[200]}): it counted the log without it`,
    ).toBe(true);
    // The projection says where and what: the segment, and that the history cannot be read whole.
    const said = proc.logs.find((l) => l.includes(names[2]!));
    expect(said).toContain('"role":"intervals"');
    expect(said).toContain('cannot be read whole from the archive');
    // GET /stats/intervals over the log's range: not the projection's short tallies, but the
    // problem every reader of a history with a hole in it answers.
    const from = intervalStart(Number(events[0]!.split('-')[0]));
    const res = await fetch(
      `${proc.url}/v1/workspaces/${ws}/stats/intervals?from=${new Date(from).toISOString()}&to=${new Date(from + 2 * INTERVAL_MS).toISOString()}`,
    );
    const body = (await res.json()) as { type?: string };
    expect(res.status, JSON.stringify(body)).toBe(503);
    expect(body.type).toMatch(/\/problems\/archive-unreadable$/);
    await proc.stop();
  }, 30_000);
});
