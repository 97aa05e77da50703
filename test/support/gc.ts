/**
 * V8's collector on demand, for the suites that check what a collection frees: `gc()` a full
 * collection, `gc({ type: 'minor', execution: 'sync' })` a young-generation one. The flag is set
 * at run time (vitest's workers start without it).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');

export const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void;
