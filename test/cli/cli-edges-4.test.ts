/**
 * Bad command lines the tools used to take without a word:
 *
 * - `npm start -- --port 9000` (or `--help`, or any argument) started Switchboard on its defaults,
 *   the argument ignored: the main command is configured by environment variables only. It now
 *   refuses any argument with exit 2, naming it and the variable way (`--help` prints where the
 *   variables are documented), before it makes anything in DATA_DIR.
 * - `npm run simulate -- --url http://user:password@host:port` was taken, then every request
 *   failed ("Request cannot be constructed from a URL that includes credentials"): exit 1, "Is it
 *   running?", and the password printed in clear. It is now a usage error naming --url (exit 2),
 *   the password masked, saying to give the API key with --key.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { MAIN_BUNDLE } from '../support/main-build.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, suiteRedis, type TestRedis } from '../support/redis.ts';
import { tempDir } from '../topology/helpers.ts';
import { type CliRun, runCli } from './run-cli.ts';

const dirs: { remove(): Promise<void> }[] = [];
const made: string[] = [];
/** A DATA_DIR of its own (removed after the file). */
const data = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sb-cli-edges-4-'));
  made.push(dir);
  return dir;
};
afterAll(async () => {
  for (const d of dirs) await d.remove();
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** The main command with `args` (killed after 8 s: a start that went ahead is a failure). */
function runMain(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  const main = existsSync(MAIN_BUNDLE) ? [MAIN_BUNDLE] : ['--import', 'tsx', 'src/main.ts'];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...main, ...args],
      { env, timeout: 8000, killSignal: 'SIGINT' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' && !err.killed ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('the main command given arguments', () => {
  const suite = suiteRedis();

  it('refuses them with exit 2, naming them, and starts nothing', { timeout: 30_000 }, async () => {
    const data = await tempDir('main-args');
    dirs.push(data);
    const env: NodeJS.ProcessEnv = { ...process.env, ...suite.server.env, PORT: '0', DATA_DIR: data.dir };
    delete env.VITEST;
    const [port, help] = await Promise.all([runMain(['--port', '9000'], env), runMain(['--help'], env)]);
    expect(port.code, port.stderr).toBe(2);
    expect(port.stderr).toContain('switchboard: takes no arguments (got "--port 9000")');
    expect(port.stderr).toContain('PORT=9000 npm start');
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Environment variables');
    // Refused before the start made anything in DATA_DIR (its admin key, its private Redis).
    expect(readdirSync(data.dir)).toEqual([]);
  });
});

describe('simulate --url with a login in it', () => {
  it('is a usage error naming --url, the password masked', { timeout: 30_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    const run = await runCli('simulate', ['--url', 'http://someone:s3cret@127.0.0.1:1', '--key', 'x'], env);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(
      'simulate: --url: must not hold a login (user:password@): Switchboard takes an API key, give it with --key or SWITCHBOARD_API_KEY (got "http://someone:***@127.0.0.1:1")',
    );
    expect(run.stderr).not.toContain('s3cret');
  });
});

/**
 * Against a running Switchboard (AUTH on, listening):
 *
 * - `npm run audit -- --after P` with P past the end of the log (a digit too many, a position of
 *   another Redis) reported "0 violations after P" and exited 0, whatever the log held: nothing can
 *   come after it. It is now refused with exit 2, naming --after and the log's last position; P at
 *   the last position (nothing new yet) is still an audit.
 * - `npm run simulate -- --url http://host:port/v1/workspaces/ws` (the workspace's URL, not
 *   Switchboard's) said "is not serving: GET /health answered 404" and exited 1, with nothing to
 *   do about it. It is now a usage error naming --url and the address to give (exit 2).
 * - `npm run simulate` with a key of another workspace stopped at "GET /settings answered 403 (The
 *   API key belongs to another workspace ...)" without saying what to do; it now says to give a key
 *   of the run's workspace, or that workspace with --workspace.
 */
describe('against a running Switchboard', () => {
  const WS = 'cli-edges-4-after';
  let redis: TestRedis;
  let sb: Running;
  let key = '';
  let otherKey = '';

  beforeAll(async () => {
    redis = await startTestRedis();
    sb = await startSwitchboard(
      loadConfig({ ...redis.env, PORT: '0', LOG_LEVEL: 'silent', WORKSPACES: WS, DATA_DIR: data() }),
      pino({ level: 'silent' }),
    );
    await projectorReady(sb.redis, [WS]);
    key = (await createApiKey(sb.redis, { workspace: WS, role: 'admin' })).key;
    otherKey = (await createApiKey(sb.redis, { workspace: `${WS}-other`, role: 'admin' })).key;
    const r = await sb.api!.inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/agents`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      payload: JSON.stringify({ id: 'a1', skills: ['s'] }),
    });
    expect(r.statusCode, r.body).toBeLessThan(300);
  }, 60_000);

  afterAll(async () => {
    await sb?.stop();
    await redis?.stop();
  });

  it('audit --after past the end of the log is refused with exit 2 naming the last position; the last position itself is audited', async () => {
    const k = workspaceKeys(WS);
    // The checkpoint: the projector has applied the command.
    let last = '';
    for (let i = 0; i < 100 && last === ''; i++) {
      const [entry] = (await sb.redis.xrevrange(k.events, '+', '-', 'COUNT', 1)) as [string, string[]][];
      last = entry?.[0] ?? '';
      if (last === '') await new Promise((r) => setTimeout(r, 50));
    }
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    const audit = (after: string) =>
      runCli('audit', ['--workspace', WS, '--redis-url', redis.url, '--no-state', '--after', after], env);
    const [ms] = last.split('-');
    const [past, atLast] = await Promise.all([audit(`${ms}0-0`), audit(last)]);
    expect(past.code, past.stderr + past.stdout).toBe(2);
    expect(past.stderr).toMatch(
      new RegExp(
        `audit: --after: ${ms}0-0 is past the end of the log of workspace "${WS}" \\(its last position is \\d+-\\d+\\)`,
      ),
    );
    expect(atLast.code, atLast.stderr).toBe(0);
  });

  it('simulate given the URL of a workspace, or a key of another workspace, says what to give', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VITEST;
    const base = sb.url!;
    const [pathUrl, otherWs] = await Promise.all([
      runCli('simulate', ['--url', `${base}/v1/workspaces/${WS}`, '--key', key, '--workspace', WS], env),
      runCli('simulate', ['--url', base, '--key', otherKey, '--workspace', WS, '--contacts', '1'], env),
    ]);
    expect(pathUrl.code, pathUrl.stderr).toBe(2);
    expect(pathUrl.stderr).toContain(
      `simulate: --url: ${base}/v1/workspaces/${WS} is not Switchboard's address (GET /health answered 404 there): give the address it listens at, such as ${base}, without the API's path`,
    );
    expect(otherWs.code, otherWs.stderr).toBe(1);
    expect(otherWs.stderr).toContain(
      `simulate: the API key given (--key) is not one of workspace "${WS}": give an API key of workspace "${WS}" with --key or SWITCHBOARD_API_KEY, or the key's own workspace with --workspace`,
    );
  });
});
