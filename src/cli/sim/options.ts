/**
 * The command line shared by the CLIs: parsing, `--json` and `--help`, checking (every bad value
 * is named with what it should be, and the CLI exits 2 after printing all of them) and the exit.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { mask } from '../../adapters/redis/client.ts';
import { decimalInteger, decimalNumber } from '../../domain/decimal.ts';
import { plainFailure } from '../plain-failure.ts';

export class UsageError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

/**
 * `args` with a negative number given as the next argument of an option that takes a value
 * (`--agents -1`) joined to it (`--agents=-1`): strict parseArgs calls such a value "ambiguous"
 * and asks for that spelling, after which the option's own check refuses it, two tries for one
 * mistake. Joined, the value meets that check at once. Nothing after `--` is touched.
 */
function negativeValuesJoined(args: readonly string[], options: ParseArgsConfig['options']): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return [...out, ...args.slice(i)];
    const next = args[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      next !== undefined &&
      /^-\.?\d/.test(next) &&
      Object.hasOwn(options ?? {}, name) &&
      options?.[name]?.type === 'string'
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/**
 * node:util parseArgs, with its own errors turned into a UsageError (one line: its messages span
 * several). An option that takes a value given more than once (`--workspace a --workspace b`) is
 * refused, naming it, where parseArgs keeps the last one silently; an option declared `multiple`
 * stays repeatable. A negative number after an option is its value (negativeValuesJoined).
 */
export function parseOrUsage<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    // parseArgs's own default for `args` is process.argv.slice(2) too.
    const args = negativeValuesJoined(config.args ?? process.argv.slice(2), config.options);
    parsed = parseArgs({ ...config, args, tokens: true }) as ReturnType<typeof parseArgs<T>>;
  } catch (err) {
    throw new UsageError([(err as Error).message.replace(/\s*\n\s*/g, ' ')]);
  }
  const given = new Map<string, string[]>();
  for (const t of (parsed as { tokens?: ReturnType<typeof parseArgs>['tokens'] }).tokens ?? []) {
    if (t.kind !== 'option' || t.value === undefined) continue;
    if (config.options?.[t.name]?.multiple) continue;
    given.set(t.name, [...(given.get(t.name) ?? []), t.value]);
  }
  const repeated = [...given].filter(([, values]) => values.length > 1);
  if (repeated.length > 0)
    throw new UsageError(
      repeated.map(
        ([name, values]) =>
          `--${name}: given ${values.length} times (${values.map((v) => `"${v}"`).join(', ')}); give it once`,
      ),
    );
  if (!config.tokens) delete (parsed as { tokens?: unknown }).tokens;
  return parsed;
}

/** Collects the problems of every option before failing once, naming them all. */
export class OptionChecker {
  readonly problems: string[] = [];

  /**
   * A number option in decimal digits (src/domain/decimal.ts): `integer`, digits only; else an
   * optional fraction after a point too. Hex, exponents, a sign, spaces, Infinity and an empty value
   * are refused as a value out of range is, naming the option and what it takes.
   */
  number(
    name: string,
    raw: string | undefined,
    def: number,
    opts: { min?: number; minExclusive?: number; max?: number; integer?: boolean } = {},
  ): number {
    if (raw === undefined) return def;
    const n = (opts.integer ? decimalInteger(raw) : decimalNumber(raw)) ?? Number.NaN;
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
      !Number.isFinite(n) ||
      (opts.min !== undefined && n < opts.min) ||
      (opts.minExclusive !== undefined && n <= opts.minExclusive) ||
      (opts.max !== undefined && n > opts.max);
    if (bad) {
      this.problems.push(`--${name}: must be ${kind}${range}${upper}, in decimal digits (got "${raw}")`);
      return def;
    }
    return n;
  }

  /** A share from 0 to 1 (a rate of some behaviour: 0.03 is 3 %). */
  fraction(name: string, raw: string | undefined, def: number): number {
    return this.number(name, raw, def, { min: 0, max: 1 });
  }

  /** A comma-separated list of integers in decimal digits from `min` to `max` (at most `most` of them). */
  integers(
    name: string,
    raw: string | undefined,
    def: readonly number[],
    what: string,
    opts: { min: number; max: number; most?: number },
  ): readonly number[] {
    if (raw === undefined) return def;
    const list = raw.split(',').map((s) => decimalInteger(s) ?? Number.NaN);
    const ok =
      list.length <= (opts.most ?? Number.POSITIVE_INFINITY) &&
      list.every((n) => n >= opts.min && n <= opts.max);
    const most = opts.most !== undefined ? `up to ${opts.most} ` : '';
    this.check(
      ok,
      `--${name}: must be a comma-separated list of ${most}${what} from ${opts.min} to ${opts.max}, in decimal digits with no spaces (got "${raw}")`,
    );
    return ok ? list : def;
  }

  /**
   * An absolute URL with one of `protocols` (with `bare`, no query and no fragment either);
   * `expected` says what it should be, `from` where a value not given as an option came from. A
   * value refused is shown with its password masked.
   */
  url(
    name: string,
    raw: string | undefined,
    opts: { protocols: readonly string[]; expected: string; bare?: boolean; from?: string },
  ): void {
    if (raw === undefined) return;
    let ok = false;
    try {
      const u = new URL(raw);
      ok = opts.protocols.includes(u.protocol) && (!opts.bare || (u.search === '' && u.hash === ''));
    } catch {
      ok = false;
    }
    this.check(
      ok,
      `--${name}${opts.from ? ` (from ${opts.from})` : ''}: must be ${opts.expected} (got "${mask(raw)}")`,
    );
  }

  check(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }

  done(): void {
    if (this.problems.length > 0) throw new UsageError(this.problems);
  }
}

const COMMON_OPTIONS = {
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/**
 * The start every command shares: `argv` parsed strictly with positionals allowed and `--json`
 * and `--help` added to `options`; `--help` prints `usage` and exits 0. Returns the values, the
 * positionals and a checker for them.
 */
export function parseCommandLine<O extends OptionsConfig>(
  argv: readonly string[],
  usage: string,
  options: O,
) {
  const parsed = parseOrUsage({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: { ...options, ...COMMON_OPTIONS },
  });
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return { ...parsed, check: new OptionChecker() };
}

/**
 * Runs a command's `main` and exits with the code it returns once stdout is written (keep-alive
 * sockets would hold the process open for seconds). A UsageError exits 2 naming every problem;
 * anything else thrown exits `crashCode` saying what failed in plain lines, never a stack
 * (plainFailure). Messages start with `name:`.
 */
export function runCommand(name: string, main: () => Promise<number>, crashCode = 1): void {
  main()
    .catch((err: unknown) => {
      if (!(err instanceof UsageError)) throw err;
      process.stderr.write(
        `${name}: ${err.problems.join(`\n${name}: `)}\nRun with --help for the options.\n`,
      );
      return 2;
    })
    .then(
      (code) => process.stdout.write('', () => process.exit(code)),
      (err: unknown) => {
        process.stderr.write(`${name}: could not run: ${plainFailure(err)}\n`);
        process.exit(crashCode);
      },
    );
}
