/**
 * The launcher's builds (src/topology/local/main-build.ts): each launcher builds what it runs into
 * `<name>-<its pid>.mjs` and removes it when it stops. One killed outright (kill -9) cannot, so a
 * build removes those of processes that no longer exist, and leaves those of running ones (another
 * launcher's) and other names alone. The same for a build's half-written file
 * (`<name>-<pid>.mjs.<writer's pid>`) left by a writer killed while writing it.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stopChild } from '../../src/topology/child-processes.ts';
import { BUILD_DIR, entryCommand } from '../../src/topology/local/main-build.ts';

const ENTRY = fileURLToPath(new URL('../../src/topology/child-processes.ts', import.meta.url));
const made: string[] = [];
afterAll(async () => {
  for (const f of made) await rm(f, { force: true });
});

async function exitedPid(): Promise<number> {
  const p = spawn('true');
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

describe("a launcher's build", () => {
  it('removes the builds of the name left by processes that are gone, written or half-written, and only those', async () => {
    const running = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const name = `killed-${process.pid}`;
      const file = (n: string, pid: number) => path.join(BUILD_DIR, `${n}-${pid}.mjs`);
      const gone = file(name, await exitedPid());
      const live = file(name, running.pid!);
      const other = file(`other-${process.pid}`, await exitedPid());
      // Half-written: by a writer now gone, and by one still writing.
      const goneAside = `${gone}.${await exitedPid()}`;
      const liveAside = `${file(name, running.pid!)}.${running.pid!}`;
      made.push(gone, live, other, goneAside, liveAside);
      for (const f of made) writeFileSync(f, '// a build\n');

      const built = await entryCommand(ENTRY, name, (err) => {
        throw err;
      });
      made.push(file(name, process.pid));
      try {
        expect(built.args).toEqual([file(name, process.pid)]);
        expect(existsSync(gone)).toBe(false);
        expect(existsSync(live)).toBe(true);
        expect(existsSync(other)).toBe(true);
        expect(existsSync(goneAside)).toBe(false);
        expect(existsSync(liveAside)).toBe(true);
      } finally {
        await built.dispose();
      }
      expect(existsSync(file(name, process.pid))).toBe(false);
    } finally {
      await stopChild(running, { graceMs: 1000, group: false });
    }
  });
});
