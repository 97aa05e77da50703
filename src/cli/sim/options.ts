/**
 * Command-line checking shared by the CLIs: every bad value is named with what it should be,
 * and the CLI exits 2 after printing all of them.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

/** node:util parseArgs, with its own errors turned into a UsageError. */
export function parseOrUsage<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError([(err as Error).message]);
  }
}

/** Collects the problems of every option before failing once, naming them all. */
export class OptionChecker {
  readonly problems: string[] = [];

  number(
    name: string,
    raw: string | undefined,
    def: number,
    opts: { min?: number; minExclusive?: number; max?: number; integer?: boolean } = {},
  ): number {
    if (raw === undefined) return def;
    const text = raw.trim();
    const n = Number(text);
    const kind = opts.integer ? 'an integer' : 'a number';
    const range =
      opts.minExclusive !== undefined
        ? ` greater than ${opts.minExclusive}`
        : opts.min !== undefined
          ? opts.max !== undefined
            ? ` from ${opts.min} to ${opts.max}`
            : ` of at least ${opts.min}`
          : '';
    const upper = opts.minExclusive !== undefined && opts.max !== undefined ? ` and at most ${opts.max}` : '';
    const bad =
      text === '' ||
      !Number.isFinite(n) ||
      (opts.integer && !Number.isInteger(n)) ||
      (opts.min !== undefined && n < opts.min) ||
      (opts.minExclusive !== undefined && n <= opts.minExclusive) ||
      (opts.max !== undefined && n > opts.max);
    if (bad) {
      this.problems.push(`--${name}: must be ${kind}${range}${upper} (got "${raw}")`);
      return def;
    }
    return n;
  }

  check(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }

  done(): void {
    if (this.problems.length > 0) throw new UsageError(this.problems);
  }
}
