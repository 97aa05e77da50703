import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const noop = (): void => {};

/** What a lazy logger holds: its parent, its bindings, and the child once made. */
interface Lazy {
  readonly root: Logger;
  readonly bindings: Bindings;
  real: Logger | undefined;
}

const STATE = Symbol('lazy logger');
type LazyLogger = Logger & { readonly [STATE]: Lazy };

const made = (s: Lazy): Logger => {
  s.real ??= s.root.child(s.bindings);
  return s.real;
};

// The methods are shared by every lazy logger and called on it, as pino's own are: a request
// allocates its state and its proxy, nothing per method read (fastify reads every level method of
// each request's logger, to check it is a logger, without writing a line).
const writers = new Map<string, (this: LazyLogger, ...args: unknown[]) => void>(
  [...LEVELS].map((level) => [
    level,
    function (this: LazyLogger, ...args: unknown[]): void {
      const l = made(this[STATE]);
      (l[level as 'info'] as (...a: unknown[]) => void).apply(l, args);
    },
  ]),
);

function child(this: LazyLogger, more: Bindings, options?: ChildLoggerOptions): Logger {
  const s = this[STATE];
  if (options !== undefined && Object.keys(options).length > 0) return made(s).child(more, options);
  return s.real !== undefined ? s.real.child(more) : lazyChild(s.root, { ...s.bindings, ...more });
}

function isLevelEnabled(this: LazyLogger, level: string): boolean {
  const s = this[STATE];
  return (s.real ?? s.root).isLevelEnabled(level);
}

const handler: ProxyHandler<Lazy> = {
  get(s, prop) {
    if (prop === STATE) return s;
    if (typeof prop === 'string' && LEVELS.has(prop)) {
      // An enabled level's method makes the child when it is called, not when it is read.
      if (s.real === undefined && !s.root.isLevelEnabled(prop)) return noop;
      return writers.get(prop);
    }
    if (prop === 'child') return child;
    if (prop === 'isLevelEnabled') return isLevelEnabled;
    if (prop === 'level') return (s.real ?? s.root).level;
    const l = made(s);
    const v = Reflect.get(l, prop, l) as unknown;
    return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(l) : v;
  },
  set(s, prop, value) {
    return Reflect.set(made(s), prop, value);
  },
};

/**
 * A child of `root` with `bindings` that is only made when it first writes a line: a request's
 * logger (fastify makes one per request, the command path another per command) costs nothing
 * when the level in force writes none of its lines. Its children gather their bindings and are
 * made, when they write, as one child of `root`: the same lines as a chain of children.
 */
export function lazyChild(root: Logger, bindings: Bindings): Logger {
  return new Proxy<Lazy>({ root, bindings, real: undefined }, handler) as unknown as Logger;
}
