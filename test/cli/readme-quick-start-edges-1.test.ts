/**
 * The README's quick start says what each `npm run bench` line prints: the one whose comment says
 * "one JSON line of figures" must ask for JSON (`--json`), since without it the bench prints a
 * table ("Switchboard bench: seed" and one line per figure). Its arguments are read from the README
 * and parsed as the bench parses them (no bench is run).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/cli/bench/options.ts';
import { formatResult } from '../../src/cli/bench/report.ts';
import { PROJECT_ROOT } from '../support/processes.ts';

describe("the README's quick start bench lines", () => {
  it('a line promising one JSON line asks for --json, and its output is one JSON line', () => {
    const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const lines = readme.split('\n').filter((l) => /^npm run bench -- .*#.*JSON line/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const args = line
        .replace(/^npm run bench -- /, '')
        .replace(/#.*$/, '')
        .trim()
        .split(/\s+/);
      const opts = parseBenchArgs(args);
      expect(opts.json, line).toBe(true);
      const out = formatResult(
        { workload: opts.workload, parameters: {}, machine: {}, figures: {}, at: '' } as never,
        opts.json,
      );
      expect(out.trimEnd().split('\n'), line).toHaveLength(1);
      expect(() => JSON.parse(out), line).not.toThrow();
    }
  });
});
