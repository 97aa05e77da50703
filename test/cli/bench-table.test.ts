/**
 * The table of `npm run bench -- all` from figures alone: each row's ratio to its anchor, whether
 * its target is met, which run anchors which (the reference loop and the floor step with the same
 * number of agents), and the markdown it prints.
 */
import { describe, expect, it } from 'vitest';
import { ALL_RUNS, allWorkloads, formatNumber, markdownTable, ROW_MAKERS } from '../../src/cli/bench/all.ts';
import { benchRows, row, type WorkloadRun } from '../../src/cli/bench/report.ts';

const run = (workload: string, parameters: Record<string, unknown>, figures: object | null, extra = {}) =>
  ({ workload, parameters, figures, seconds: 1, ...extra }) as WorkloadRun;

describe('row', () => {
  it('divides the figure by its anchor and checks the target on the figure or on the ratio', () => {
    const r = row(
      'routing',
      12_000,
      '/s',
      { name: 'floor', value: 30_000, unit: '/s' },
      {
        on: 'ratio',
        op: '>=',
        value: 0.6,
      },
    );
    expect(r.ratio).toBe(0.4);
    expect(r.met).toBe(false);
    expect(
      row(
        'x',
        20_000,
        '/s',
        { name: 'floor', value: 30_000, unit: '/s' },
        { on: 'ratio', op: '>=', value: 0.6 },
      ).met,
    ).toBe(true);
    expect(row('us', 60, 'µs', undefined, { on: 'figure', op: '<=', value: 60 }).met).toBe(true);
    expect(row('us', 60.1, 'µs', undefined, { on: 'figure', op: '<=', value: 60 }).met).toBe(false);
    expect(
      row('r', 1.5, 'µs', { name: 'a', value: 1, unit: 'µs' }, { on: 'ratio', op: '<', value: 1.5 }).met,
    ).toBe(false);
    expect(
      row('r', 1.49, 'µs', { name: 'a', value: 1, unit: 'µs' }, { on: 'ratio', op: '<', value: 1.5 }).met,
    ).toBe(true);
  });

  it('has no ratio without an anchor value, and no verdict without a target or a figure', () => {
    const noAnchor = row('p99', 4, 'ms', { name: 'none', value: null, unit: 'ms' });
    expect(noAnchor).toMatchObject({ ratio: null, met: null, anchor: 'none', anchorValue: null });
    expect(row('p99', 4, 'ms', { name: 'zero', value: 0, unit: 'ms' }).ratio).toBeNull();
    expect(row('p99', null, 'ms', undefined, { on: 'figure', op: '<=', value: 5 }).met).toBeNull();
    expect(row('p99', 4, 'ms').target).toBeNull();
  });
});

describe('benchRows', () => {
  const runs: WorkloadRun[] = [
    run(
      'seed',
      { agents: 40 },
      {
        routingPerS: 15_000,
        loopPerS: 5_000,
        redisUsPerAssignment: { total: 200 },
        redisCpuUsPerAssignment: 150,
      },
    ),
    run('seed', { agents: 1000 }, { routingPerS: 14_000, loopPerS: 4_500 }),
    run('reference', { agents: 40 }, { assignmentsPerS: 500 }),
    run('reference', { agents: 1000 }, { assignmentsPerS: 400 }),
    run(
      'floor',
      { agents: 40, clients: 50 },
      // Redis's CPU over the floor's steps alone: 30 µs a step.
      { opsPerS: 30_000, ops: 1000, redisCpuUsPerStep: 30 },
    ),
    run('floor', { agents: 1000, clients: 50 }, { opsPerS: 10_000, ops: 1000 }),
    run('ingest', {}, { switchboard: { requestsPerS: 6000 }, bareXadd: { requestsPerS: 12_000 } }),
    run(
      'ingest',
      { via: 'haproxy' },
      { switchboard: { requestsPerS: 2000 }, bareXadd: { requestsPerS: 5000 } },
    ),
    run('decision', { queues: [1000, 100_000] }, { medianUs: { 1000: 150, 100000: 160 } }),
    run(
      'e2e',
      {},
      {
        offeredPerS: 1000,
        achievedPerS: 990,
        p50Ms: 1.5,
        p99Ms: 7,
        answerP50Ms: 1.2,
        bare: { p50Ms: 0.5, p99Ms: 3.5, answerP50Ms: 0.4 },
      },
    ),
    run(
      'large',
      { sizes: [1000, 100_000] },
      {
        runs: {
          1000: { worstRedisStepUs: 900, medianRedisStepUs: 200 },
          100000: { worstRedisStepUs: 3000, medianRedisStepUs: 400 },
        },
        worstRedisStepUs: 6000,
      },
    ),
    run('audit', {}, { events: 100_000, eventsPerS: 60_000, replayEventsPerS: 80_000 }),
    run('wide', { sizes: [10, 20] }, null, { error: 'boom' }),
    run('mystery', {}, { whatever: 1 }),
  ];
  const rows = benchRows(runs, ROW_MAKERS);
  const find = (figure: string, anchor?: string) =>
    rows.find((r) => r.figure === figure && (anchor === undefined || r.anchor?.startsWith(anchor)))!;

  it('anchors each seed run on the reference loop and the floor step with its own number of agents', () => {
    expect(find('seed routing, 40 agents', 'floor')).toMatchObject({
      anchorValue: 30_000,
      ratio: 0.5,
      met: false,
    });
    expect(find('seed routing, 1000 agents', 'floor')).toMatchObject({
      anchorValue: 10_000,
      ratio: 1.4,
      met: true,
    });
    expect(find('seed loop, 40 agents')).toMatchObject({ anchorValue: 500, ratio: 10, met: null });
    expect(find('seed loop, 1000 agents')).toMatchObject({ anchorValue: 400, ratio: 11.25 });
    expect(find('seed loop, 40 agents', 'floor')).toMatchObject({ anchorValue: 30_000, met: null });
    // The reference loop against the figure BENCH.md publishes for it.
    expect(find('reference ACD loop, 40 agents')).toMatchObject({ anchorValue: 480, anchorPublished: true });
  });

  it("holds Redis's CPU per assignment cycle to the targets, against the floor step's CPU measured the same way", () => {
    const [absolute, relative] = rows.filter((r) =>
      r.figure.startsWith('Redis main-thread CPU per assignment cycle'),
    );
    expect(absolute).toMatchObject({ value: 150, anchorValue: 30, ratio: 5, met: false });
    expect(absolute!.target).toEqual({ on: 'figure', op: '<=', value: 60 });
    expect(relative).toMatchObject({ value: 150, anchorValue: 30, ratio: 5, met: false });
    expect(relative!.target).toEqual({ on: 'ratio', op: '<=', value: 2 });
    // Only the seed run that measured it has these rows.
    expect(
      rows.filter((r) => r.figure.startsWith('Redis main-thread CPU per assignment cycle')),
    ).toHaveLength(2);
    // The anchor follows the floor's own CPU per step.
    const own = benchRows(
      runs.map((r) =>
        r.workload === 'floor' && r.parameters.agents === 40
          ? { ...r, figures: { ...r.figures, redisCpuUsPerStep: 25 } }
          : r,
      ),
      ROW_MAKERS,
    ).find((r) => r.figure === 'Redis main-thread CPU per assignment cycle, 40 agents');
    expect(own).toMatchObject({ value: 150, anchorValue: 25, ratio: 6, met: false });
    // SLOWLOG's wall time splits the cycle by step, with no target and no anchor of its own.
    expect(find('Redis µs per assignment cycle (SLOWLOG), 40 agents')).toMatchObject({
      value: 200,
      anchor: null,
      target: null,
      met: null,
    });
  });

  it('takes the 1,000/s run of an e2e with several rates for the targets, and gives the highest rate held with p99 under 10 ms', () => {
    const rate = (offeredPerS: number, p99Ms: number) => ({
      offeredPerS,
      achievedPerS: offeredPerS,
      p50Ms: 1,
      p99Ms,
    });
    const rows = benchRows(
      [
        run(
          'e2e',
          {},
          { runs: [rate(1000, 20), rate(250, 6), rate(500, 9), rate(750, 15)], highestRateP99Under10ms: 500 },
        ),
      ],
      ROW_MAKERS,
    );
    expect(rows.find((r) => r.figure === 'e2e at 1,000/s: p99')).toMatchObject({ value: 20, met: false });
    expect(rows.find((r) => r.figure === 'e2e: the highest rate with p99 under 10 ms')).toMatchObject({
      value: 500,
      anchorValue: 1000,
      ratio: 0.5,
      target: null,
    });
    // One rate: no such row.
    expect(rows.length).toBe(5);
    expect(benchRows([run('e2e', {}, { runs: [rate(1000, 20)] })], ROW_MAKERS)).toHaveLength(4);
  });

  it('gives ingestion, decision, e2e, shapes and audit their targets', () => {
    expect(find('ingestion, Switchboard POST /contacts')).toMatchObject({ ratio: 0.5, met: true });
    expect(find('ingestion through HAProxy, Switchboard POST /contacts')).toMatchObject({
      anchor: 'bare fastify + XADD through HAProxy',
      ratio: 0.4,
      met: false,
    });
    expect(find('decision median, 100,000 queued')).toMatchObject({
      anchorValue: 150,
      ratio: 1.067,
      met: true,
    });
    expect(find('e2e at 1,000/s: p50')).toMatchObject({ value: 1.5, met: true });
    expect(find('e2e at 1,000/s: p99')).toMatchObject({
      value: 7,
      anchor: 'bare feed: XADD, XREAD, WebSocket',
      anchorValue: 3.5,
      ratio: 2,
      met: false,
    });
    expect(find("e2e at 1,000/s: the command's answer, p50")).toMatchObject({
      value: 1.2,
      anchor: 'bare feed: one XADD',
      anchorValue: 0.4,
      ratio: 3,
      met: null,
    });
    expect(find('large: worst step, up to 100,000')).toMatchObject({
      value: 6,
      anchorValue: 0.9,
      met: false,
    });
    expect(find('large: median step, 100,000 queued')).toMatchObject({ ratio: 2, met: false });
    expect(find('audit, 100,000 events')).toMatchObject({ value: 60_000, ratio: 0.75, met: true });
  });

  it('gives a failed run and a workload with no maker no row', () => {
    expect(rows.some((r) => r.figure.startsWith('wide'))).toBe(false);
    expect(rows.some((r) => r.figure.includes('mystery'))).toBe(false);
  });

  it('prints the rows as a markdown table', () => {
    const md = markdownTable(rows);
    const lines = md.trim().split('\n');
    expect(lines[0]).toBe('| Figure | Value | Anchor (same run) | Ratio | Target | Met |');
    expect(lines).toHaveLength(rows.length + 2);
    expect(md).toContain(
      '| seed routing, 40 agents | 15,000 assignments/s | floor step, 40 agents, 50 connections: 30,000 steps/s | 0.5 | ratio ≥ 0.6 | **no** |',
    );
    expect(md).toContain(
      '| e2e at 1,000/s: p50 | 1.5 ms | bare feed: XADD, XREAD, WebSocket: 0.5 ms | 3 | ≤ 2 ms | yes |',
    );
    expect(formatNumber(null)).toBe('–');
    expect(formatNumber(0.0421)).toBe('0.042');
    expect(formatNumber(12.345)).toBe('12.3');
  });
});

describe('the cluster rows', () => {
  const clusterFigures = {
    cores: 2,
    singleUsPerAssignment: { total: 200 },
    masterUsPerAssignment: { 7001: { total: 210 }, 7002: { total: 250 } },
    singleCpuUsPerAssignment: 100,
    masterCpuUsPerAssignment: { 7001: 90, 7002: 110 },
    singleAssignmentsPerS: 5000,
    phases: [
      { masters: 1, assignmentsPerS: 4800 },
      { masters: 2, assignmentsPerS: 8000 },
    ],
    modelAggregatePerS: 14_000,
  };

  it("hold each master's CPU to the single Redis's (within 1.2x), and compare the aggregate with one master's", () => {
    const rows = benchRows([run('cluster', {}, clusterFigures)], ROW_MAKERS);
    expect(rows.map((r) => [r.figure, r.ratio, r.met])).toEqual([
      // Redis's main-thread CPU on each master against the single Redis's: the target.
      ['cluster: Redis main-thread CPU per assignment, master 1 (:7001)', 0.9, true],
      ['cluster: Redis main-thread CPU per assignment, master 2 (:7002)', 1.1, true],
      // SLOWLOG's wall time, the same cycle: no target.
      ['cluster: Redis µs per assignment (SLOWLOG), master 1 (:7001)', 1.05, null],
      ['cluster: Redis µs per assignment (SLOWLOG), master 2 (:7002)', 1.25, null],
      ['cluster: aggregate, 1 master busy (2 cores)', 0.96, null],
      ['cluster: aggregate, 2 masters busy (2 cores)', 1.667, null],
      ['cluster: model, 3 masters with a core each (1e6 / µs × masters)', 1.75, null],
    ]);
    const over = benchRows(
      [run('cluster', {}, { ...clusterFigures, masterCpuUsPerAssignment: { 7001: 90, 7002: 121 } })],
      ROW_MAKERS,
    );
    expect(over.find((r) => r.figure.includes('CPU per assignment, master 2'))).toMatchObject({
      ratio: 1.21,
      met: false,
    });
  });
});

describe('the workloads of all', () => {
  it('runs seed and its anchors first, then every registered workload, each with sizes per preset', () => {
    expect(allWorkloads(['seed', 'floor', 'e2e', 'reference', 'x'])).toEqual([
      'seed',
      'reference',
      'floor',
      'e2e',
      'x',
    ]);
    for (const [w, presets] of Object.entries(ALL_RUNS))
      for (const p of ['tiny', 'quick', 'full'] as const)
        expect(presets[p].length, `${w} ${p}`).toBeGreaterThan(0);
  });
});
