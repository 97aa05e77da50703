/**
 * The README's quick start holds for a user who is not root: "On a fresh Debian machine with Node
 * 20 (as root, or with `redis-server` already installed)", `npm start` runs. `scripts/ensure.sh`
 * (what `npm start` runs first) is run as a user who is not root (nobody, when the suite runs as
 * root) in a copy of the project with a PATH of its own: a `redis-server` there, and none of the
 * topology's tools (haproxy, keepalived, openssl), which `npm start` never uses. It must carry on
 * (a note on stderr naming them), while `npm run topology` (SWITCHBOARD_TOPOLOGY_TOOLS=1) and
 * `npm test` (SWITCHBOARD_BROWSER=1), which use them, still stop and say what to install, and a
 * missing `redis-server` still stops `npm start`.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../support/processes.ts';

let root = '';

/** A copy of the project holding ensure.sh and a lock already installed (no npm ci), and a PATH. */
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'sb-ensure-'));
  chmodSync(root, 0o755);
  const project = path.join(root, 'project');
  mkdirSync(path.join(project, 'scripts'), { recursive: true });
  mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  copyFileSync(path.join(PROJECT_ROOT, 'scripts/ensure.sh'), path.join(project, 'scripts/ensure.sh'));
  writeFileSync(path.join(project, 'package-lock.json'), '{"lockfileVersion":3}\n');
  writeFileSync(path.join(project, 'node_modules/.switchboard-lock'), '{"lockfileVersion":3}\n');
  for (const set of ['with-redis', 'bare']) {
    const bin = path.join(root, set);
    mkdirSync(bin);
    for (const tool of ['bash', 'dirname', 'cmp', 'id', 'cp']) symlinkSync(which(tool), path.join(bin, tool));
    if (set === 'with-redis')
      writeFileSync(path.join(bin, 'redis-server'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function which(tool: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const p = path.join(dir, tool);
    if (existsSync(p)) return p;
  }
  throw new Error(`${tool} not found`);
}

/** ensure.sh as a user who is not root, with PATH set to one of the bin folders above. */
function ensure(bin: 'with-redis' | 'bare', env: Record<string, string> = {}) {
  const vars = Object.entries({ PATH: path.join(root, bin), ...env }).map(([k, v]) => `${k}=${v}`);
  const script = path.join(root, 'project/scripts/ensure.sh');
  const [cmd, args] =
    process.getuid?.() === 0
      ? [
          'setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-i', ...vars, '/bin/bash', script],
        ]
      : ['env', ['-i', ...vars, '/bin/bash', script]];
  return new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(cmd, args, { timeout: 10_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
    ),
  );
}

describe('scripts/ensure.sh for a user who is not root', () => {
  it("npm start's setup: redis-server installed is enough; the topology's missing tools are a note", async () => {
    const { code, stderr } = await ensure('with-redis');
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/haproxy/);
    expect(stderr).toMatch(/npm run topology/);
  });

  it("npm start's setup without redis-server stops, saying what to install", async () => {
    const { code, stderr } = await ensure('bare');
    expect(code).toBe(1);
    expect(stderr).toMatch(/missing redis-server.*apt-get install redis-server/);
  });

  it('npm run topology and npm test still stop without the tools they use', async () => {
    const topology = await ensure('with-redis', { SWITCHBOARD_TOPOLOGY_TOOLS: '1' });
    expect(topology.code).toBe(1);
    expect(topology.stderr).toMatch(/missing openssl haproxy keepalived; install them/);
    const tests = await ensure('with-redis', { SWITCHBOARD_BROWSER: '1' });
    expect(tests.code).toBe(1);
    expect(tests.stderr).toMatch(/missing openssl haproxy keepalived chromium prometheus/);
  });

  it('package.json: npm run topology asks for its tools; npm start does not', () => {
    const scripts = (
      JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    expect(scripts.topology).toMatch(/^SWITCHBOARD_TOPOLOGY_TOOLS=1 bash scripts\/ensure\.sh && /);
    expect(scripts.start).toMatch(/^bash scripts\/ensure\.sh && /);
  });
});
