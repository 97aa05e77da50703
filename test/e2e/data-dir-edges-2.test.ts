/**
 * A start on a DATA_DIR whose file system is full. With room for one page, the private
 * redis-server's passwords (`redis-credentials.json`) were created and left empty: once space was
 * freed, every later start was refused ("cannot be read as the private redis-server's passwords")
 * until the file was removed by hand. With no room at all, the claim's file written aside
 * (`switchboard.pid.<pid>`) stayed behind. Now both are written aside and moved into place whole,
 * the file aside removed on failure, and the start after space is freed just runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';

const ROLES = 'api,projector,dispatcher';
const mounts: string[] = [];
afterAll(async () => {
  await killAllProcesses();
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      /* not mounted */
    }
    await rm(m, { recursive: true, force: true });
  }
});

/** A DATA_DIR on a tmpfs of 64 KiB with `pages` pages (4 KiB) left free; the files filling it. */
async function fullDataDir(pages: number): Promise<{ dataDir: string; filler: string[] }> {
  const mnt = await mkdtemp(path.join(os.tmpdir(), 'sb-data-dir-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  mounts.push(mnt);
  const dataDir = path.join(mnt, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  // Page by page until the file system is full, then give back `pages`.
  const filler: string[] = [];
  for (let i = 0; ; i++) {
    const f = path.join(mnt, `filler.${i}`);
    try {
      writeFileSync(f, Buffer.alloc(4096));
      filler.push(f);
    } catch {
      rmSync(f, { force: true });
      break;
    }
  }
  for (const f of filler.splice(filler.length - pages)) rmSync(f);
  return { dataDir, filler };
}

async function refused(sb: SwitchboardProcess): Promise<string> {
  const code = await Promise.race([
    sb.exited,
    new Promise((r) => setTimeout(() => r('still running'), 20_000)),
  ]);
  await sb.stop();
  expect(code, sb.logText()).toBe(1);
  const err = sb.logText();
  expect(err).toMatch(/could not start: DATA_DIR: .*no space left on device/);
  expect(err).not.toMatch(/^\[.*\]\s+at /m);
  return err;
}

describe('a start on a full DATA_DIR', () => {
  it('leaves nothing behind when nothing fits, and says to free space', async () => {
    const { dataDir } = await fullDataDir(0);
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir },
      waitReady: false,
      name: 'full',
    });
    expect(await refused(sb)).toMatch(/free space/);
    expect(readdirSync(dataDir)).toEqual([]);
  }, 60_000);

  it('runs once space is freed, with no file left damaged by the start that found the disk full', async () => {
    const { dataDir, filler } = await fullDataDir(1);
    const sb = await startProcess({
      roles: ROLES,
      env: { DATA_DIR: dataDir },
      waitReady: false,
      name: 'full',
    });
    await refused(sb);
    for (const f of filler) rmSync(f);
    const next = await startProcess({ roles: ROLES, env: { DATA_DIR: dataDir }, name: 'after' });
    expect((await fetch(`${next.url}/health`)).ok).toBe(true);
    expect(await next.stop(), next.logText()).toBe(0);
  }, 60_000);
});
