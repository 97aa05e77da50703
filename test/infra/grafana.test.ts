/**
 * The Grafana dashboard (infra/grafana/switchboard.json) against a running Switchboard: every
 * metric its PromQL names is in the real /metrics text of an instance with some traffic (a contact
 * assigned after a wait, one waiting, one abandoned), and the series it selects for a workspace
 * exist for that workspace (a histogram's _bucket, _sum and _count are its own sample names). Each
 * expression is also valid PromQL to promtool (as a recording rule; promtool missing is a failure:
 * scripts/ensure.sh installs it), and the dashboard has its `workspace` and data-source variables.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { tempDir } from '../topology/helpers.ts';

const DASHBOARD = path.join(PROJECT_ROOT, 'infra', 'grafana', 'switchboard.json');
const WS = 'grafana';
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

interface Target {
  readonly expr: string;
}
interface Panel {
  readonly title: string;
  readonly type: string;
  readonly targets?: Target[];
  readonly panels?: Panel[];
}
interface Dashboard {
  readonly panels: Panel[];
  readonly templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers,
 * ranges and groupings are taken out, that are neither functions (followed by "(") nor keywords.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = bare.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(') || PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

function targets(panels: readonly Panel[]): { panel: string; expr: string }[] {
  return panels.flatMap((p) => [
    ...(p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
    ...targets(p.panels ?? []),
  ]);
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const exprs = targets(dashboard.panels);
const variableQueries = dashboard.templating.list
  .filter((v) => v.type === 'query')
  .map((v) => (typeof v.query === 'string' ? v.query : (v.query?.query ?? '')));

let redis: TestRedis;
let sb: Running;
/** Sample name → the label sets of its series, from the instance's /metrics. */
let samples: Map<string, string[]>;

/** The instance's typed client (no retries: each answer is the first). */
const client = () => new SwitchboardClient({ url: sb.url!, workspace: WS, retries: 0 });

/** A POST under the workspace that must succeed. */
async function post(p: string, body?: unknown): Promise<void> {
  await client().request('POST', `/v1/workspaces/${WS}${p}`, body !== undefined ? { body } : {});
}

beforeAll(async () => {
  redis = await startTestRedis();
  sb = await startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'off',
      PORT: '0',
      LOG_LEVEL: 'silent',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
    }),
    pino({ level: 'silent' }),
  );
  await projectorReady(sb.redis, [WS]);
  // The first scrape starts the wait histogram's count; then a contact waits and is assigned, one
  // waits on, one is abandoned.
  await client().metrics();
  await post('/agents', { id: 'g1', skills: ['Grafana'] });
  await post('/contacts', { id: 'waited', skills: ['Grafana'] });
  await sleep(200);
  await post('/agents/g1/state', { state: 'available' });
  await post('/contacts', { id: 'waiting', skills: ['Nobody'] });
  await post('/contacts', { id: 'gone', skills: ['Nobody'] });
  await post('/contacts/gone/abandon');
  await waitFor('waited assigned', async () => {
    return (await client().getContact('waited')).state === 'assigned';
  });
  const text = await client().metrics();
  samples = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s/.exec(line);
    if (!m) continue;
    samples.set(m[1]!, [...(samples.get(m[1]!) ?? []), m[2] ?? '{}']);
  }
}, 30_000);

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

describe('the Grafana dashboard', () => {
  it('reads metric names out of PromQL as Prometheus would', () => {
    expect(
      metricNames(
        'histogram_quantile(0.9, max by (le) (rate(a_bucket{workspace="$workspace",le!="x{y}"}[5m])))',
      ),
    ).toEqual(['a_bucket']);
    expect(metricNames('sum(rate(b_total[1m])) / sum without (x) (c) or on (d) vector(1)')).toEqual([
      'b_total',
      'c',
    ]);
  });

  it('has the workspace and data-source variables and the panels operators need', () => {
    const names = dashboard.templating.list.map((v) => v.name);
    expect(names).toEqual(expect.arrayContaining(['workspace', 'datasource']));
    expect(variableQueries.join(' ')).toContain('label_values(switchboard_workspace_up, workspace)');
    const all = exprs.map((e) => e.expr).join('\n');
    for (const needed of [
      'switchboard_queue_depth',
      'switchboard_longest_wait_seconds',
      'switchboard_queue_longest_wait_seconds{workspace="$workspace"}',
      'switchboard_queue_service_level_ratio{workspace="$workspace"}',
      'switchboard_queue_recent_mean_wait_seconds{workspace="$workspace"}',
      'switchboard_queue_agents{workspace="$workspace"',
      'switchboard_dispatcher_step_duration_seconds_bucket{workspace="$workspace"}',
      'switchboard_websocket_subscribers{workspace="$workspace"}',
      'switchboard_commands_total{workspace="$workspace",status="202"}',
      'switchboard_service_level_ratio',
      'histogram_quantile(0.99, max by (le) (rate(switchboard_wait_seconds_bucket',
      'switchboard_workspace_assignments_total',
      'switchboard_workspace_contacts_abandoned_total',
      'switchboard_agents',
      'switchboard_projector_lag_seconds',
      'histogram_quantile(0.99, sum by (le) (rate(switchboard_dispatcher_step_duration_seconds_bucket',
      'switchboard_websocket_subscribers',
      'switchboard_commands_total{status="202"}',
      'switchboard_http_request_duration_seconds_count{status=~"5.."}',
      // The archiver: is the log moving out of Redis, and is a stream refused (docs/METRICS.md).
      'switchboard_archiver_entries_archived_total{workspace="$workspace"}',
      'switchboard_archiver_streams_refused{workspace="$workspace"}',
    ])
      expect(all).toContain(needed);
  });

  it('every metric an expression names is in the real /metrics, with series of the workspace where it asks for one', () => {
    expect(exprs.length).toBeGreaterThan(20);
    const checked = new Set<string>();
    for (const { panel, expr } of exprs) {
      const names = metricNames(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        expect(samples.has(name), `${panel}: ${name} is not in /metrics`).toBe(true);
        if (expr.includes('workspace="$workspace"'))
          expect(
            samples.get(name)!.some((labels) => labels.includes(`workspace="${WS}"`)),
            `${panel}: ${name} has no series of workspace ${WS}`,
          ).toBe(true);
        checked.add(name);
      }
    }
    for (const q of variableQueries) {
      const name = /label_values\(([A-Za-z_:][A-Za-z0-9_:]*)/.exec(q)?.[1];
      expect(name && samples.has(name), q).toBe(true);
    }
    // The histograms are read through their own sample names.
    expect(checked).toContain('switchboard_wait_seconds_bucket');
    expect(checked).toContain('switchboard_dispatcher_step_duration_seconds_bucket');
  });

  it('every expression is valid PromQL (promtool check rules)', async () => {
    if (!PROMTOOL)
      throw new Error(
        'promtool is not installed, so the PromQL check cannot run: install it with `bash scripts/ensure.sh` as root (npm test does) or `apt-get install prometheus`.',
      );
    const { dir, remove } = await tempDir('grafana-rules');
    const rules = exprs.map((e, i) => {
      // Grafana's variables, as it would put them.
      const expr = e.expr.replaceAll('$workspace', WS).replaceAll('$__rate_interval', '1m');
      return `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(expr)}`;
    });
    const file = path.join(dir, 'rules.yml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const r = spawnSync(PROMTOOL!, ['check', 'rules', file], { encoding: 'utf8' });
    await remove();
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
  });
});
