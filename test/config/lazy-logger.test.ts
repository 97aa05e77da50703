/**
 * A request's lazy logger (src/app/lazy-logger.ts): it writes the same lines as pino's own chain
 * of children, and makes no child at all while the level in force writes none of its lines.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { lazyChild } from '../../src/adapters/http/lazy-logger.ts';

function capture(level: string) {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const root = pino({ level, base: { pid: 1 }, timestamp: false }, out);
  let children = 0;
  const child = root.child;
  // Children are made from their parent (pino's children inherit from it): counted at any depth.
  root.child = function (this: typeof root, ...args: Parameters<typeof child>) {
    children++;
    return child.apply(this, args);
  } as typeof root.child;
  return { root, lines, children: () => children };
}

describe('the lazy request logger', () => {
  it('writes what a chain of children writes, bindings in the same order', () => {
    const lazy = capture('debug');
    const eager = capture('debug');
    const l = lazyChild(lazy.root, { reqId: 'r1' }).child({ commandId: 'c1' });
    const e = eager.root.child({ reqId: 'r1' }).child({ commandId: 'c1' });
    for (const logger of [l, e]) {
      logger.debug({ type: 'QueueContact' }, 'command appended');
      logger.info({ status: 201 }, 'request');
      logger.warn(new Error('boom'), 'failed');
      logger.trace('not written');
    }
    expect(lazy.lines).toEqual(eager.lines);
    expect(lazy.lines.map((x) => Object.keys(x).slice(0, 4))).toEqual(
      Array(3).fill(['level', 'pid', 'reqId', 'commandId']),
    );
    expect(l.isLevelEnabled('debug')).toBe(true);
    expect(l.isLevelEnabled('trace')).toBe(false);
    expect(l.level).toBe('debug');
  });

  it('makes no child while nothing is written, one when a line is', () => {
    const w = capture('warn');
    const l = lazyChild(w.root, { reqId: 'r2' }).child({ commandId: 'c2' });
    l.debug('no');
    l.info({ status: 201 }, 'request');
    expect(l.isLevelEnabled('info')).toBe(false);
    expect(w.children()).toBe(0);
    l.warn('yes');
    expect(w.children()).toBe(1);
    expect(w.lines).toEqual([{ level: 40, pid: 1, reqId: 'r2', commandId: 'c2', msg: 'yes' }]);
  });
});

describe('the lazy request logger, read as fastify reads it', () => {
  it('makes no child when its enabled level methods are only read, one when one is called', () => {
    const w = capture('info');
    const l = lazyChild(w.root, { reqId: 'r3' });
    // fastify checks each request's logger has these methods before the handler runs.
    for (const m of ['info', 'error', 'debug', 'fatal', 'warn', 'trace', 'child'] as const)
      expect(typeof l[m]).toBe('function');
    const c = l.child({ commandId: 'c3' });
    expect(w.children()).toBe(0);
    c.info({ status: 201 }, 'request');
    expect(w.children()).toBe(1);
    expect(w.lines).toEqual([
      { level: 30, pid: 1, reqId: 'r3', commandId: 'c3', status: 201, msg: 'request' },
    ]);
  });
});
