/**
 * The AOF of the private redis-server in a DATA_DIR that already existed, readable by others (made
 * by hand, a bind mount: 0755). DATA_DIR is made owner-only only when the start makes it, and the
 * redis-server made its appendonlydir 0755 and the AOF files 0644 (the umask's): every document in
 * clear, readable by every local user, where docs/SECURITY.md promises owner-only files. Now the
 * private redis-server makes its files owner-only, and an appendonlydir left readable by others
 * (an earlier start) is made owner-only again.
 */
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { killAllProcesses, startProcess } from '../support/processes.ts';

const dirs: string[] = [];
afterAll(async () => {
  await killAllProcesses();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);

describe('the AOF in a DATA_DIR readable by others', () => {
  it('is owner-only: its folder 0700, its files 0600; one left readable by others is made owner-only again', async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'sb-data-dir-modes-'));
    dirs.push(parent);
    const dataDir = path.join(parent, 'data');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    const aof = path.join(dataDir, 'appendonlydir');
    // A user's usual umask (022), whatever the runner's: the starts inherit it.
    const umask = process.umask(0o022);
    onTestFinished(() => {
      process.umask(umask);
    });
    const first = await startProcess({
      roles: 'api,projector,dispatcher',
      env: { DATA_DIR: dataDir },
      name: 'first',
    });
    expect(modeOf(aof)).toBe('700');
    for (const f of readdirSync(aof)) expect(`${f} ${modeOf(path.join(aof, f))}`).toBe(`${f} 600`);
    expect(await first.stop(), first.logText()).toBe(0);

    chmodSync(aof, 0o755);
    const second = await startProcess({
      roles: 'api,projector,dispatcher',
      env: { DATA_DIR: dataDir },
      name: 'second',
    });
    expect(modeOf(aof)).toBe('700');
    expect(await second.stop(), second.logText()).toBe(0);
  }, 60_000);
});
