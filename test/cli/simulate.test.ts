/**
 * The simulator against a Switchboard started in this process: it runs as a child process, as a
 * user runs it, and its JSON summary must agree with the workspace's event log.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

const WS = `sim-test-${Date.now()}`;

const simulate = (args: readonly string[], env?: NodeJS.ProcessEnv) => runCli('simulate', args, env);

interface Summary {
  workspace: string;
  assigned: number;
  abandoned: number;
  completed: number;
  stillQueued: number;
  inService: number;
  unservable: number;
  errors: number;
  errorsByStatus: Record<string, number>;
  meanWaitMs: number | null;
  p90WaitMs: number | null;
  durationS: number;
  endedBy: string;
}

let redis: TestRedis;
let sb: Running;
let url: string;

beforeAll(async () => {
  redis = await startTestRedis();
  const config = loadConfig({ REDIS_URL: redis.url, PORT: '0', LOG_LEVEL: 'silent', WORKSPACES: WS });
  sb = await startSwitchboard(config, pino({ level: 'silent' }));
  url = sb.url!;
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

async function countEvents(type: string): Promise<number> {
  let n = 0;
  let after: string | null = null;
  for (;;) {
    const q: string = after === null ? '' : `&after=${after}`;
    const res = await fetch(`${url}/v1/workspaces/${WS}/events?type=${type}&limit=1000${q}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { events: { type: string }[]; next: string | null };
    n += page.events.filter((e) => e.type === type).length;
    if (page.next === null) return n;
    after = page.next;
  }
}

describe('simulate', () => {
  it('runs a small contact center through the API and reports what the event log says', async () => {
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      WS,
      '--agents',
      '10',
      '--contacts',
      '30',
      '--rate',
      '30',
      '--handle-min',
      '0.05',
      '--handle-max',
      '0.2',
      // Seed 11 gives 5 contacts a skill pair none of the 10 agents holds: they abandon after
      // their patience, so the abandon path is exercised too.
      '--seed',
      '11',
      '--patience',
      '4',
      '--json',
    ]);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Summary;
    expect(s.workspace).toBe(WS);
    expect(s.assigned + s.abandoned).toBe(30);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    expect(s.endedBy).toBe('done');
    expect(s.stillQueued).toBe(0);
    expect(s.inService).toBe(0);
    expect(s.completed).toBe(s.assigned);
    expect(s.unservable).toBe(5);
    expect(s.abandoned).toBeGreaterThanOrEqual(s.unservable);
    if (s.assigned > 0) expect(s.meanWaitMs).not.toBeNull();

    expect(await countEvents('AssignmentMade')).toBe(s.assigned);
    expect(await countEvents('ContactAbandoned')).toBe(s.abandoned);
    expect(await countEvents('ContactCompleted')).toBe(s.completed);
  });

  it('says clearly when Switchboard cannot be reached, and exits 1', async () => {
    const port = await freePort();
    const run = await simulate(['--url', `http://127.0.0.1:${port}`, '--json']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `cannot reach Switchboard at http://127.0.0.1:${port} (connect ECONNREFUSED`,
    );
    expect(run.stdout).toBe('');
  });

  it('names every bad option and exits 2', async () => {
    const run = await simulate(['--agents', 'many', '--rate', '0', '--handle-min', '5', '--handle-max', '1']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--agents: must be an integer/);
    expect(run.stderr).toMatch(/--rate: must be a number greater than 0/);
    expect(run.stderr).toMatch(/--handle-max: must be at least --handle-min/);
  });
});
