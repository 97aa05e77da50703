import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * `mkdirSync(dir, { recursive: true, mode })`, one folder at a time from the first missing one.
 * Node's own loops for ever, at 100 % CPU, where mkdir answers ENOENT although the parent exists
 * (a path under /proc): the start hung there. Here a folder that cannot be made once its parent
 * is there throws mkdir's error.
 */
export function makeDirs(dir: string, mode: number): void {
  try {
    mkdirSync(dir, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && statSync(dir).isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    makeDirs(parent, mode);
  }
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    // Made meanwhile by another process.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
  }
}
