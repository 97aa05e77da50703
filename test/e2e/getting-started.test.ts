/**
 * docs/GETTING-STARTED.md works as written: Switchboard started as `npm start` starts it (no Redis
 * configured: a private redis-server under a fresh data directory, an admin key made there), then
 * every `sh` block of the guide after the first (`npm start` itself) run in order by bash with
 * `set -euo pipefail`, in a user's environment pointed at that instance and data directory. Each
 * block checks its own outcome (a `grep` that must match), the auditor included (`npm run audit`
 * finding the private Redis with nothing configured).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/topology/redis-server.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

let server: ChildProcess | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  if (server?.pid !== undefined && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server?.once('exit', r));
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The guide's `sh` blocks, in order. */
function guideBlocks(): string[] {
  const text = readFileSync(path.join(PROJECT_ROOT, 'docs/GETTING-STARTED.md'), 'utf8');
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** A user's shell environment: nothing of the test runner's own Redis or Switchboard configuration. */
function userEnv(more: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env))
    if (/^(REDIS_|SWITCHBOARD_|AUTH$|PORT$|ROLES$|WORKSPACES$|DATA_DIR$|VITEST)/.test(k)) delete env[k];
  return { ...env, ...more };
}

describe('the getting-started guide', () => {
  it('runs as written against a fresh Switchboard: first agent, first contact, offers, pages, the log, the auditor', async () => {
    const blocks = guideBlocks();
    expect(blocks[0]?.trim()).toBe('npm start');
    expect(blocks.length).toBeGreaterThan(6);

    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-guide-'));
    const port = await freePort();
    let log = '';
    server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: PROJECT_ROOT,
      env: userEnv({ DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.on('data', (b: Buffer) => {
      log += b.toString();
    });
    server.stderr?.on('data', (b: Buffer) => {
      log += b.toString();
    });
    const sb = `http://127.0.0.1:${port}`;
    await waitFor(
      'Switchboard serving',
      async () => {
        if (server?.exitCode !== null) throw new Error(`exited: ${log}`);
        return (await fetch(`${sb}/health`).catch(() => undefined))?.status === 200;
      },
      { timeoutMs: 30_000 },
    );

    const script = blocks.slice(1).join('\n');
    const shell = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: PROJECT_ROOT,
      env: userEnv({ SB: sb, DATA_DIR: dataDir }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    shell.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    shell.stderr?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const code = await new Promise<number | null>((r) => shell.once('exit', r));
    expect(code, `the guide's commands failed:\n${out}\n--- switchboard ---\n${log}`).toBe(0);
    for (const seen of [
      '"status":"ok"',
      '"state":"assigned"',
      '"queuePosition":0',
      '"state":"offered"',
      '"state":"wrapup"',
      '<title>',
      '"key":"',
      '"type":"AssignmentMade"',
    ])
      expect(out, seen).toContain(seen);
    expect(out).toMatch(/violations +0/);
  }, 120_000);
});
