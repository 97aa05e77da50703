/**
 * /metrics held to docs/METRICS.md, and infra/grafana/switchboard.json held to /metrics, on one real
 * Switchboard (every role, METRICS_PORT set) that has done a little work: an agent, a contact that
 * waited, was assigned and completed, one waiting, a live-feed subscriber. Every family the tables of
 * docs/METRICS.md list is exposed with the documented type and label names, every family exposed is
 * in those tables (prom-client's default `switchboard_process_*` and `switchboard_nodejs_*` ones by
 * their documented wildcard), the METRICS_PORT text has the same families, the `_seconds` figures
 * are seconds (checked against waits measured here), the label values the docs enumerate are the
 * ones exposed, every label a dashboard expression matches, groups by or writes in its legend is one
 * its metrics have (or one Prometheus adds to every target: `instance`, `job`), and promtool check
 * metrics finds nothing in either text. test/infra/grafana.test.ts checks the dashboard's metric
 * names and PromQL syntax; test/api/metrics.test.ts the figures themselves.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { inProcessApi } from '../support/api.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'metrics-docs';
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
const DOC = readFileSync(path.join(PROJECT_ROOT, 'docs', 'METRICS.md'), 'utf8');
const DASHBOARD = JSON.parse(
  readFileSync(path.join(PROJECT_ROOT, 'infra', 'grafana', 'switchboard.json'), 'utf8'),
) as {
  panels: Panel[];
};
interface Panel {
  readonly title: string;
  readonly targets?: { expr: string; legendFormat?: string }[];
  readonly panels?: Panel[];
}
/** Labels Prometheus puts on every series it scrapes (the target's), not in any exposition. */
const TARGET_LABELS = new Set(['instance', 'job']);
/** prom-client's default metrics, documented as one wildcard row. */
const DEFAULT_PREFIXES = ['switchboard_process_', 'switchboard_nodejs_'];

interface Documented {
  readonly name: string;
  readonly type: string;
  readonly labels: string[];
  readonly what: string;
}

/** The rows of the metric tables of docs/METRICS.md (`| metric | type | labels | what |`). */
function documented(): Documented[] {
  const rows: Documented[] = [];
  for (const line of DOC.split('\n')) {
    const m = /^\| `([a-z_:*]+)`(?:, `[a-z_:*]+`)* \|\s*([a-z]*)\s*\|([^|]*)\|\s*(.*?)\s*\|$/.exec(line);
    if (!m || m[1]!.includes('*')) continue;
    rows.push({
      name: m[1]!,
      type: m[2]!,
      labels: [...m[3]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!),
      what: m[4]!,
    });
  }
  return rows;
}

interface Family {
  readonly type: string;
  /** Each series' labels, name → value (a histogram's `le` left out). */
  readonly series: { labels: Map<string, string>; sample: string; value: number }[];
}

/** The families of an exposition, by the name of their `# TYPE` line. */
function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      out.set(t[1]!, { type: t[2]!, series: [] });
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const sample = m![1]!;
    const family =
      out.get(sample) ??
      out.get(sample.replace(/_(bucket|sum|count)$/, '')) ??
      out.get(sample.replace(/_total$/, ''));
    expect(family, `${sample}: a sample with no # TYPE line`).toBeDefined();
    const labels = new Map(
      [...(m![2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]),
    );
    if (family!.type === 'histogram') labels.delete('le');
    family!.series.push({ labels, sample, value: Number(m![3]) });
  }
  return out;
}

const api = inProcessApi([WS], { env: { METRICS_PORT: '0' } });
let text: string;
let portText: string;
let exposed: Map<string, Family>;
/** When the waiting contact arrived and when the scrape was made (ms). */
let waitingSince: number;
let scrapedAt: number;
/** The assigned contact's wait, bounded from below and above by what this test saw. */
let waitedAtLeastMs: number;
let waitedAtMostMs: number;

async function metrics(): Promise<string> {
  const r = await api.running.api!.inject({ method: 'GET', url: '/metrics' });
  expect(r.statusCode).toBe(200);
  return r.body;
}

beforeAll(async () => {
  // The first scrape starts the wait histogram's count (docs/METRICS.md).
  await metrics();
  await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['Docs'] });
  const queued = Date.now();
  await api.ok('POST', WS, '/contacts', { id: 'served', skills: ['Docs'] });
  // Its arrival is stamped by now; it is assigned only once the agent is available.
  const arrived = Date.now();
  await sleep(300);
  const offered = Date.now();
  await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
  await api.until(WS, '/contacts/served', (c) => c.state === 'assigned');
  waitedAtLeastMs = offered - arrived;
  waitedAtMostMs = Date.now() - queued + 50;
  await api.ok('POST', WS, '/contacts/served/complete');
  waitingSince = Date.now();
  await api.ok('POST', WS, '/contacts', { id: 'waiting', skills: ['Nobody'] });
  const socket = new WebSocket(`${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live`);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  try {
    await waitFor('the work and the subscriber in /metrics', async () => {
      const t = await metrics();
      return (
        t.includes(`switchboard_websocket_subscribers{workspace="${WS}"} 1`) &&
        t.includes(`switchboard_workspace_contacts_completed_total{workspace="${WS}"} 1`) &&
        t.includes(`switchboard_workspace_queued_contacts{workspace="${WS}"} 1`)
      );
    });
    await sleep(200);
    text = await metrics();
    scrapedAt = Date.now();
  } finally {
    socket.close();
  }
  const res = await fetch(`${api.running.metricsUrl!}/metrics`);
  expect(res.status).toBe(200);
  portText = await res.text();
  exposed = families(text);
}, 30_000);

describe('/metrics and docs/METRICS.md', () => {
  it('every documented family is exposed with its documented type and labels', () => {
    const docs = documented();
    expect(docs.length).toBeGreaterThan(30);
    for (const d of docs) {
      const f = exposed.get(d.name);
      expect(f, `${d.name} is documented and not exposed`).toBeDefined();
      expect(f!.type, `${d.name}'s type`).toBe(d.type);
      // A histogram's buckets carry `le`: the docs name it for every histogram, and for nothing else.
      expect(d.labels.includes('le'), `${d.name}: \`le\` listed in the docs`).toBe(d.type === 'histogram');
      const want = d.labels.filter((l) => l !== 'le').sort();
      expect(f!.series.length, `${d.name} has no series after the work done here`).toBeGreaterThan(0);
      for (const s of f!.series) expect([...s.labels.keys()].sort(), `${d.name}: ${s.sample}`).toEqual(want);
    }
  });

  it('every exposed family is documented (the default process ones by their wildcard)', () => {
    const names = new Set(documented().map((d) => d.name));
    expect(DOC).toContain('`switchboard_process_*`, `switchboard_nodejs_*`');
    const undocumented = [...exposed.keys()].filter(
      (n) => !names.has(n) && !DEFAULT_PREFIXES.some((p) => n.startsWith(p)),
    );
    expect(undocumented).toEqual([]);
  });

  it('every metric the docs name anywhere (tables, questions, alerts) is exposed', () => {
    const named = new Set([...DOC.matchAll(/\bswitchboard_[a-z0-9_]*[a-z0-9]\b/g)].map((m) => m[0]));
    // "sum the per-type `switchboard_nodejs_active_handles`, `_requests` and `_resources`".
    for (const t of ['requests', 'resources']) named.add(`switchboard_nodejs_active_${t}`);
    expect(named.size).toBeGreaterThan(35);
    const missing = [...named].filter(
      (n) => !exposed.has(n) && !exposed.has(n.replace(/_(bucket|sum|count)$/, '')),
    );
    expect(missing).toEqual([]);
  });

  it('METRICS_PORT serves the same families, with the same types', () => {
    const port = families(portText);
    expect([...port.entries()].map(([n, f]) => `${n} ${f.type}`).sort()).toEqual(
      [...exposed.entries()].map(([n, f]) => `${n} ${f.type}`).sort(),
    );
  });

  it('only counters end in _total, time is in seconds, and the values are seconds', () => {
    for (const [name, f] of exposed) {
      expect(name.endsWith('_total'), `${name} (${f.type})`).toBe(f.type === 'counter');
      expect(name, 'a time unit other than seconds').not.toMatch(
        /_(ms|millis|milliseconds|micros|minutes|hours)(_|$)/,
      );
    }
    const one = (name: string, labels = `workspace="${WS}"`) => {
      const series = labels === '' ? name : `${name}{${labels}}`;
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      expect(line, series).toBeDefined();
      return Number(line!.slice(line!.lastIndexOf(' ') + 1));
    };
    // The one decision's wait, from its arrival to its assignment.
    expect(one('switchboard_wait_seconds_count')).toBe(1);
    const sum = one('switchboard_wait_seconds_sum');
    expect(sum).toBeGreaterThanOrEqual(waitedAtLeastMs / 1000);
    expect(sum).toBeLessThanOrEqual(waitedAtMostMs / 1000);
    const mean = one('switchboard_recent_mean_wait_seconds');
    expect(mean).toBeGreaterThanOrEqual(waitedAtLeastMs / 1000);
    expect(mean).toBeLessThanOrEqual(waitedAtMostMs / 1000);
    expect(
      one('switchboard_queue_recent_mean_wait_seconds', `workspace="${WS}",channel="voice",skills="Docs"`),
    ).toBe(mean);
    // The waiting contact's wait so far.
    const longest = one('switchboard_longest_wait_seconds');
    expect(longest).toBeGreaterThan(0);
    expect(longest).toBeLessThanOrEqual((scrapedAt - waitingSince + 50) / 1000);
    expect(
      one('switchboard_queue_longest_wait_seconds', `workspace="${WS}",channel="voice",skills="Nobody"`),
    ).toBe(longest);
    // Reads and requests of a test on loopback take well under a second each.
    expect(one('switchboard_workspace_metrics_read_seconds', '')).toBeLessThan(1);
    for (const s of exposed
      .get('switchboard_http_request_duration_seconds')!
      .series.filter((x) => x.sample.endsWith('_sum')))
      expect(s.value, JSON.stringify([...s.labels])).toBeLessThan(5);
    expect(exposed.get('switchboard_projector_lag_seconds')!.series[0]!.value).toBeLessThan(5);
  });

  it('the histograms have the buckets the docs give', () => {
    const les = (name: string) =>
      [
        ...new Set(
          text
            .split('\n')
            .filter((l) => l.startsWith(`${name}_bucket{`))
            .map((l) => /le="([^"]*)"/.exec(l)![1]!),
        ),
      ].map((le) => (le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le)));
    const wait = documented().find((d) => d.name === 'switchboard_wait_seconds')!;
    const listed = /buckets ([0-9, ]+) s and `\+Inf`/.exec(wait.what)![1]!.split(', ').map(Number);
    expect(les('switchboard_wait_seconds')).toEqual([...listed, Number.POSITIVE_INFINITY]);
    const step = documented().find((d) => d.name === 'switchboard_dispatcher_step_duration_seconds')!;
    expect(step.what).toContain('Buckets 0.1 ms to 1 s');
    const bounds = les('switchboard_dispatcher_step_duration_seconds');
    expect(bounds[0]).toBe(0.0001);
    expect(bounds.at(-2)).toBe(1);
    expect(bounds.at(-1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('the label values the docs enumerate are the ones exposed', () => {
    const values = (name: string, label: string) =>
      new Set(exposed.get(name)!.series.map((s) => s.labels.get(label)));
    const states = ['offline', 'available', 'away', 'busy', 'wrapup', 'reserved'];
    expect([...values('switchboard_agents', 'state')].sort()).toEqual([...states].sort());
    for (const v of values('switchboard_queue_agents', 'state')) expect(states).toContain(v);
    expect([...values('switchboard_recent_contacts_ended', 'how')].sort()).toEqual(['abandoned', 'expired']);
    for (const v of values('switchboard_queue_recent_contacts', 'what'))
      expect(['assigned', 'abandoned', 'expired']).toContain(v);
    expect(values('switchboard_queue_recent_contacts', 'what')).toContain('assigned');
  });

  it('promtool check metrics finds nothing in /metrics nor on METRICS_PORT', () => {
    if (!PROMTOOL)
      throw new Error(
        'promtool is not installed, so the metrics lint cannot run: install it with `bash scripts/ensure.sh` as root (npm test does) or `apt-get install prometheus`.',
      );
    for (const t of [text, portText]) {
      const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: t, encoding: 'utf8' });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    }
  });
});

describe('the Grafana dashboard and /metrics', () => {
  const targets = (panels: readonly Panel[]): { panel: string; expr: string; legend: string }[] =>
    panels.flatMap((p) => [
      ...(p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, legend: t.legendFormat ?? '' })),
      ...targets(p.panels ?? []),
    ]);
  /** The family a sample name belongs to (a histogram's _bucket, _sum and _count are its own). */
  const familyOf = (sample: string) =>
    exposed.has(sample) ? sample : sample.replace(/_(bucket|sum|count)$/, '');
  const labelsOf = (sample: string): Set<string> => {
    const f = exposed.get(familyOf(sample));
    expect(f, `${sample} is not in /metrics`).toBeDefined();
    const out = new Set<string>(TARGET_LABELS);
    for (const s of f!.series) for (const l of s.labels.keys()) out.add(l);
    if (f!.type === 'histogram' && sample.endsWith('_bucket')) out.add('le');
    return out;
  };

  it('every label an expression matches, groups by or shows in its legend is one its metrics have', () => {
    const all = targets(DASHBOARD.panels);
    expect(all.length).toBeGreaterThan(20);
    let checked = 0;
    for (const { panel, expr, legend } of all) {
      const where = `${panel}: ${expr}`;
      const selectors = [...expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)];
      const bare = [...expr.replace(/\{[^}]*\}/g, '').matchAll(/\b(switchboard_[A-Za-z0-9_:]*)\b(?!\s*\()/g)];
      const names = new Set([...selectors.map((s) => s[1]!), ...bare.map((b) => b[1]!)]);
      expect(names.size, where).toBeGreaterThan(0);
      const available = new Set<string>();
      for (const n of names) for (const l of labelsOf(n)) available.add(l);
      for (const [, name, matchers] of selectors) {
        const own = labelsOf(name!);
        for (const m of matchers!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)/g)) {
          expect(own.has(m[1]!), `${where}: ${name} has no label ${m[1]}`).toBe(true);
          checked++;
        }
      }
      for (const g of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g))
        for (const l of g[1]!
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)) {
          expect(available.has(l), `${where}: no metric of it has a label ${l}`).toBe(true);
          checked++;
        }
      for (const l of legend.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
        expect(
          available.has(l[1]!),
          `${panel}: the legend ${legend} names ${l[1]}, which no series has`,
        ).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('names each metric with a label set the docs give (the dashboard reads documented metrics only)', () => {
    const docs = new Set(documented().map((d) => d.name));
    for (const { panel, expr } of targets(DASHBOARD.panels))
      for (const m of expr.matchAll(/\b(switchboard_[A-Za-z0-9_:]*)\b(?!\s*\()/g)) {
        const f = familyOf(m[1]!);
        if (DEFAULT_PREFIXES.some((p) => f.startsWith(p))) continue;
        expect(docs.has(f), `${panel}: ${f} is not in docs/METRICS.md`).toBe(true);
      }
  });
});
