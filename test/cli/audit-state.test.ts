/**
 * `npm run audit` is asked, by default, to compare the documents, the routing index and the
 * timers with the replay. When it could not (the workspace kept changing while they were read, 3
 * times), finding no violation is not a workspace found sound: it says so and exits 3, not 0.
 * With --no-state (the comparison not asked for), the same audit exits 0; on a quiet workspace it
 * compares and exits 0.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

const WS = 'audit-state-cli';
const AGENTS = 40;
/** Contacts with large attributes (no agent has their skill: they stay queued), so reading the documents takes a while. */
const CONTACTS = 400;

let redis: TestRedis;
let sb: Running;

const command = async (url: string, payload?: unknown) => {
  const r = await sb.api!.inject({
    method: 'POST',
    url: `/v1/workspaces/${WS}${url}`,
    ...(payload === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) }),
  });
  if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
};

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({ ...redis.env, AUTH: 'off', PORT: '0', LOG_LEVEL: 'silent', WORKSPACES: WS }),
    pino({ level: 'silent' }),
  );
  await projectorReady(sb.redis, [WS]);
  for (let i = 0; i < AGENTS; i++) await command('/agents', { id: `a${i}`, skills: ['s'] });
  const note = 'x'.repeat(15_000);
  const ids = Array.from({ length: CONTACTS }, (_, i) => i);
  for (let i = 0; i < ids.length; i += 20)
    await Promise.all(
      ids
        .slice(i, i + 20)
        .map((n) => command('/contacts', { id: `c${n}`, skills: ['nobody'], attributes: { note } })),
    );
}, 120_000);

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

const audit = (...args: string[]) => runCli('audit', ['--workspace', WS, '--redis-url', redis.url, ...args]);

/**
 * `run` while agents go available and away without a pause: the projector's checkpoint moves while
 * a tool reads the documents, every time it tries.
 */
async function whileChanging<T>(run: () => Promise<T>): Promise<T> {
  let writing = true;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let n = 0; writing; n++)
      for (let i = w; i < AGENTS && writing; i += 8)
        await command(`/agents/a${i}/state`, { state: n % 2 === 0 ? 'available' : 'away' });
  });
  try {
    return await run();
  } finally {
    writing = false;
    await Promise.all(writers);
  }
}

describe('npm run audit when the documents could not be compared', () => {
  it('exits 3, saying so, while the workspace keeps changing; 0 with --no-state, and 0 once it is quiet', async () => {
    const [busy, logOnly] = await whileChanging(async () => [
      await audit('--json'),
      await audit('--json', '--no-state'),
    ]);
    const summary = JSON.parse(busy.stdout) as { state: string; violationCount: number };
    expect(summary, busy.stderr).toMatchObject({
      violationCount: 0,
      state: 'not compared: the workspace kept changing while its documents were read',
    });
    expect(busy.code, busy.stderr).toBe(3);
    expect(busy.stderr).toContain('kept changing');
    expect(busy.stderr).toContain('--no-state');
    expect(logOnly.code, logOnly.stderr).toBe(0);
    expect(JSON.parse(logOnly.stdout)).toMatchObject({
      state: 'not compared (not asked)',
      violationCount: 0,
    });

    const quiet = await audit('--json');
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(JSON.parse(quiet.stdout)).toMatchObject({ state: 'compared', violationCount: 0 });
  }, 120_000);

  it('npm run rebuild --json says so too, on stderr, besides its exit 3', async () => {
    // The writers run in this process, beside the instance's projector: on a loaded machine both
    // can stall long enough for each of the rebuild's tries to read a still workspace (a CI run
    // read `compared: true`). Such a run compared, rightly, and says so with exit 0; the rebuild
    // is run again (3 times at most) until one meets the changes.
    let busy = await whileChanging(() =>
      runCli('rebuild', ['--workspace', WS, '--redis-url', redis.url, '--json']),
    );
    for (let i = 1; i < 3 && (JSON.parse(busy.stdout) as { compared?: boolean }).compared === true; i++) {
      expect(busy.code, busy.stderr).toBe(0);
      busy = await whileChanging(() =>
        runCli('rebuild', ['--workspace', WS, '--redis-url', redis.url, '--json']),
      );
    }
    expect(JSON.parse(busy.stdout), busy.stderr).toMatchObject({ compared: false });
    expect(busy.code, busy.stderr).toBe(3);
    expect(busy.stderr).toMatch(/^rebuild: .*kept changing.*run the rebuild again/m);
  }, 120_000);
});
