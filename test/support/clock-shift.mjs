/**
 * A host clock off by `SWITCHBOARD_TEST_CLOCK_SHIFT_MS` (ms, may be negative) for one process:
 * loaded first by `NODE_OPTIONS=--import <this file>` (clockShiftEnv), it moves `Date.now()` and
 * `new Date()` by the offset, as a host whose clock is ahead or behind would. Timers and
 * `performance.now()` are left as they are (they measure durations, not the time of day).
 */
const shift = Number(process.env.SWITCHBOARD_TEST_CLOCK_SHIFT_MS ?? 0);
if (Number.isFinite(shift) && shift !== 0) {
  const RealDate = globalThis.Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(realNow() + shift);
      else super(...args);
    }
    static now() {
      return realNow() + shift;
    }
  }
  globalThis.Date = ShiftedDate;
}
