/**
 * `bench twin`: this version's dispatch step against another on twin workspaces, as a user runs it
 * (its own redis-server). The same step on both sides makes the same decisions at about the same
 * median cost; a copy made slower (a busy loop in every step) reads well under 1, with the same
 * decisions; bad options are named.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

const STEP = fileURLToPath(new URL('../../src/dispatcher/lua/dispatch-14.lua', import.meta.url));

interface Side {
  steps: number;
  assignments: number;
  medianStepUs: number;
  totalUs: number;
}
interface TwinResult {
  workload: string;
  parameters: Record<string, unknown>;
  figures: { current: Side; against: Side; ratio: number };
}

const twin = async (args: readonly string[]): Promise<TwinResult> => {
  const run = await runCli('bench', [
    'twin',
    '--agents',
    '200',
    '--sizes',
    '300',
    '--decisions',
    '30',
    '--json',
    ...args,
  ]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as TwinResult;
};

describe('bench twin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-twin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the step against itself: the same decisions, a ratio near 1', async () => {
    const r = await twin(['--against', STEP]);
    expect(r.workload).toBe('twin');
    expect(r.parameters).toMatchObject({ against: STEP, queued: 300, agents: 200, decisions: 30 });
    const { current, against, ratio } = r.figures;
    expect(current.steps).toBeGreaterThanOrEqual(30);
    expect(against.steps).toBe(current.steps);
    expect(current.assignments).toBeGreaterThan(0);
    expect(against.assignments).toBe(current.assignments);
    expect(current.medianStepUs).toBeGreaterThan(0);
    // Medians: one step stretched by the machine (SLOWLOG counts time descheduled) moves a total of
    // 30 short steps, not their middle.
    const medians = current.medianStepUs / against.medianStepUs;
    expect(medians, JSON.stringify(r.figures)).toBeGreaterThan(0.5);
    expect(medians, JSON.stringify(r.figures)).toBeLessThan(2);
    expect(ratio).toBeGreaterThan(0);
  });

  it('against a copy that spins in every step: the same decisions, this version far cheaper', async () => {
    const slower = join(dir, 'slower.lua');
    const text = readFileSync(STEP, 'utf8');
    const call = 'local function step(KEYS, ARGV)\n  globals_reset()\n';
    expect(text).toContain(call);
    writeFileSync(
      slower,
      text.replace(call, `${call}  local spin = 0\n  for i = 1, 300000 do spin = spin + i end\n`),
    );
    const r = await twin(['--against', slower]);
    const { current, against, ratio } = r.figures;
    expect(against.assignments).toBe(current.assignments);
    expect(ratio, JSON.stringify(r.figures)).toBeLessThan(0.7);
  });

  it('names what is missing or not allowed, and exits 2', async () => {
    const none = await runCli('bench', ['twin']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--against: twin needs the other version/);
    const missing = await runCli('bench', ['twin', '--against', join(dir, 'nope.lua')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--against: no file .*nope\.lua/);
    const shared = await runCli('bench', [
      'twin',
      '--against',
      STEP,
      '--redis-url',
      'redis://127.0.0.1:6379',
    ]);
    expect(shared.code).toBe(2);
    expect(shared.stderr).toMatch(/--redis-url: twin loads another dispatch library/);
    const elsewhere = await runCli('bench', ['seed', '--against', STEP]);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toMatch(/--against: only for twin/);
  });
});
