/**
 * The main command and the files it keeps in DATA_DIR, found damaged at start (a start killed while
 * writing them, a full disk, a crash of the private redis-server): each one is either made good or
 * named with what to do, and the process never hangs, never runs on without its Redis, and never
 * ends with a stack trace.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ExitResult,
  killAllProcesses,
  type SwitchboardProcess,
  startProcess,
} from '../support/processes.ts';

const ROLES = 'api,projector,dispatcher';
const dirs: string[] = [];

afterAll(async () => {
  await killAllProcesses();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function aDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Its exit code, or 'still running' when it has not exited within `ms`. */
function exitWithin(sb: SwitchboardProcess, ms: number): Promise<ExitResult | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    sb.exited,
    new Promise<'still running'>((resolve) => {
      timer = setTimeout(() => resolve('still running'), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Every line the process wrote, stdout and stderr, without the prefixes. */
const outputOf = (sb: SwitchboardProcess) => sb.logs.map((l) => l.slice(l.indexOf('] ') + 2)).join('\n');

describe('the main command and damaged files in DATA_DIR', () => {
  it('replaces an empty admin-key (a first start killed before writing it), where the start hung making and revoking keys for ever', async () => {
    const dataDir = await aDataDir('sb-start-empty-key-');
    writeFileSync(path.join(dataDir, 'admin-key'), '');
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir, AUTH: 'on' },
      readyTimeoutMs: 15_000,
      name: 'empty-key',
    });
    const file = path.join(dataDir, 'admin-key');
    const key = readFileSync(file, 'utf8').trim();
    expect(key).not.toBe('');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const res = await fetch(`${sb.url}/v1/workspaces/default/stats`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status, await res.text()).toBe(200);
    expect(await sb.stop(), sb.logText()).toBe(0);
  }, 40_000);

  it('makes a stored admin-key readable by others owner-only again, and says so', async () => {
    const dataDir = await aDataDir('sb-start-open-key-');
    const file = path.join(dataDir, 'admin-key');
    const first = await startProcess({ roles: ROLES, env: { DATA_DIR: dataDir, AUTH: 'on' }, name: 'first' });
    expect(await first.stop(), first.logText()).toBe(0);
    chmodSync(file, 0o644);
    const again = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir, AUTH: 'on', LOG_LEVEL: 'info' },
      name: 'again',
    });
    expect(await again.stop(), again.logText()).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(outputOf(again)).toMatch(/"level":40.*admin-key.*was readable by other users/);
  }, 40_000);

  it('names the admin-key file it cannot read (a directory there), and serves on', async () => {
    const dataDir = await aDataDir('sb-start-key-dir-');
    const file = path.join(dataDir, 'admin-key');
    mkdirSync(file);
    const sb = await startProcess({ roles: ROLES, env: { DATA_DIR: dataDir, AUTH: 'on' }, name: 'key-dir' });
    expect(await sb.stop(), sb.logText()).toBe(0);
    const line = outputOf(sb)
      .split('\n')
      .find((l) => l.includes('"level":50') && l.includes('admin key'));
    expect(line, sb.logText()).toBeDefined();
    expect(JSON.parse(line!).file).toBe(file);
    expect(JSON.parse(line!).msg).toMatch(/npm run keys -- create --workspace default --role admin/);
  }, 40_000);

  it('names a damaged redis-credentials.json and what to do: exit 1, no stack trace', async () => {
    const dataDir = await aDataDir('sb-start-bad-credentials-');
    writeFileSync(path.join(dataDir, 'redis-credentials.json'), '{"app": {"user": "switchb');
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir },
      waitReady: false,
      name: 'bad-credentials',
    });
    const code = await exitWithin(sb, 20_000);
    await sb.stop();
    expect(code, sb.logText()).toBe(1);
    expect(outputOf(sb)).toMatch(
      /^switchboard: could not start: DATA_DIR: .*redis-credentials\.json cannot be read .*remove it/m,
    );
    expect(outputOf(sb)).not.toMatch(/^\s+at /m);
  }, 40_000);

  it('names a redis-credentials.json that lacks a password and what to do, and leaves it as it was: exit 1, where it was replaced with new passwords without a word', async () => {
    const dataDir = await aDataDir('sb-start-partial-credentials-');
    const file = path.join(dataDir, 'redis-credentials.json');
    const text = `${JSON.stringify({ app: { user: 'switchboard', password: 'kept-app-password' }, admin: { user: 'default' } })}\n`;
    writeFileSync(file, text, { mode: 0o600 });
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir },
      waitReady: false,
      name: 'partial-credentials',
    });
    const code = await exitWithin(sb, 20_000);
    await sb.stop();
    expect(code, sb.logText()).toBe(1);
    expect(outputOf(sb)).toMatch(
      /^switchboard: could not start: DATA_DIR: .*redis-credentials\.json cannot be read as the private redis-server's passwords \(no password for admin, replica; no user for replica\); .*remove it/m,
    );
    expect(outputOf(sb)).not.toMatch(/^\s+at /m);
    expect(readFileSync(file, 'utf8')).toBe(text);
  }, 40_000);

  it('names DATA_DIR, the output of its private redis-server and redis-check-aof when that server exits during its start (a short damaged AOF): exit 1, where the start ended with a stack trace (or ran on without its Redis)', async () => {
    const dataDir = await aDataDir('sb-start-short-aof-');
    const aof = path.join(dataDir, 'appendonlydir');
    mkdirSync(aof, { mode: 0o700 });
    writeFileSync(path.join(aof, 'appendonly.aof.manifest'), 'file appendonly.aof.1.incr.aof seq 1 type i\n');
    writeFileSync(
      path.join(aof, 'appendonly.aof.1.incr.aof'),
      '*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\ngarbage!\r\n',
    );
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir },
      waitReady: false,
      name: 'short-aof',
    });
    const code = await exitWithin(sb, 20_000);
    await sb.stop();
    expect(code, sb.logText()).toBe(1);
    const output = outputOf(sb);
    // The start waits until the server has loaded its AOF (or exited, as here): the start fails.
    // (A server dying once the process runs: the next test.)
    expect(output, sb.logText()).toMatch(
      /^switchboard: could not start: DATA_DIR: the private redis-server in .* did not start|"level":60.*the private redis-server in DATA_DIR .* exited/m,
    );
    expect(output).toMatch(/Bad file format reading the append only file/);
    expect(output).toMatch(/redis-check-aof --fix .*appendonlydir/);
    expect(output).not.toMatch(/^\s+at /m);
  }, 40_000);

  it('ends, naming its private redis-server and what to do, when that server dies while it runs: exit 1, where it ran on for ever without its Redis', async () => {
    const dataDir = await aDataDir('sb-start-redis-dies-');
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir, LOG_LEVEL: 'info' },
      name: 'redis-dies',
    });
    // The server the process started, killed (the OOM killer, a kill, a crash).
    const pid = Number(
      execFileSync('pgrep', ['-P', String(sb.pid), 'redis-server'], { encoding: 'utf8' }).trim(),
    );
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('redis-server');
    process.kill(pid, 'SIGKILL');
    const code = await exitWithin(sb, 20_000);
    await sb.stop();
    expect(code, sb.logText()).toBe(1);
    const output = outputOf(sb);
    expect(output, sb.logText()).toMatch(
      /"level":60.*the private redis-server in DATA_DIR .* exited \(SIGKILL\)/,
    );
    expect(output).toMatch(/redis-check-aof --fix .*appendonlydir/);
    expect(output).not.toMatch(/^\s+at /m);
  }, 40_000);
});
