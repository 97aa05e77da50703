import { fileURLToPath } from 'node:url';

/** clock-shift.mjs, loaded before anything else by the process `NODE_OPTIONS` starts. */
const MODULE = fileURLToPath(new URL('./clock-shift.mjs', import.meta.url));

/**
 * The environment of a process whose host clock is `shiftMs` off (ahead when positive), for
 * startProcess's `env`.
 */
export function clockShiftEnv(shiftMs: number): Record<string, string> {
  return { NODE_OPTIONS: `--import ${MODULE}`, SWITCHBOARD_TEST_CLOCK_SHIFT_MS: String(shiftMs) };
}
