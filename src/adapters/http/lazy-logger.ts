import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const noop = (): void => {};

/**
 * A child of `root` with `bindings` that is only made when it first writes a line: a request's
 * logger (fastify makes one per request, the command path another per command) costs nothing
 * when the level in force writes none of its lines. Its children gather their bindings and are
 * made, when they write, as one child of `root`: the same lines as a chain of children.
 */
export function lazyChild(root: Logger, bindings: Bindings): Logger {
  let real: Logger | undefined;
  const made = (): Logger => {
    real ??= root.child(bindings);
    return real;
  };
  // An enabled level's method makes the child only when it is called: fastify reads every level
  // method of each request's logger (to check it is a logger) without writing a line.
  const writers = new Map<string, (...args: unknown[]) => void>();
  const writer = (level: string) => {
    let w = writers.get(level);
    if (!w) {
      w = (...args: unknown[]) => {
        const l = made();
        (l[level as 'info'] as (...a: unknown[]) => void).apply(l, args);
      };
      writers.set(level, w);
    }
    return w;
  };
  return new Proxy(root, {
    get(_target, prop) {
      if (typeof prop === 'string' && LEVELS.has(prop)) {
        if (real === undefined && !root.isLevelEnabled(prop)) return noop;
        return writer(prop);
      }
      if (prop === 'child')
        return (more: Bindings, options?: ChildLoggerOptions): Logger =>
          options !== undefined && Object.keys(options).length > 0
            ? made().child(more, options)
            : real !== undefined
              ? real.child(more)
              : lazyChild(root, { ...bindings, ...more });
      if (prop === 'isLevelEnabled') return (level: string) => (real ?? root).isLevelEnabled(level);
      if (prop === 'level') return (real ?? root).level;
      const l = made();
      const v = Reflect.get(l, prop, l) as unknown;
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(l) : v;
    },
    set(_target, prop, value) {
      return Reflect.set(made(), prop, value);
    },
  }) as Logger;
}
