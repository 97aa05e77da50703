/**
 * The label values a client can choose are bounded (docs/METRICS.md, "Bounded labels"): commands
 * to 200 workspaces of a client's choosing, 200 requests to paths that are no route and 200 live
 * feed handshakes refused on 200 workspaces leave at most 100 workspaces (+ `~other`) in any
 * family, one `route` for all the paths that match none, and no URL in any label.
 */
import { expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'observe-labels';
// No projector: each command is appended and answered 202 after COMMAND_TIMEOUT_MS.
const api = inProcessApi([WS], { env: { ROLES: 'api', COMMAND_TIMEOUT_MS: '100' } });

/** Each family's label values by label name, from the /metrics text. */
function labelValues(text: string): Map<string, Map<string, Set<string>>> {
  const out = new Map<string, Map<string, Set<string>>>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{(.*)\} /.exec(line);
    if (!m) continue;
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    const labels = out.get(family) ?? new Map<string, Set<string>>();
    out.set(family, labels);
    for (const [, name, value] of m[2]!.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) {
      const values = labels.get(name!) ?? new Set<string>();
      values.add(value!);
      labels.set(name!, values);
    }
  }
  return out;
}

it('200 client-chosen workspaces and paths make at most 101 workspace values and one unknown route', async () => {
  const statuses = new Set<number>();
  // In rounds of 20, so a loaded machine's Redis answers each in time.
  for (let round = 0; round < 10; round++) {
    const sends: Promise<unknown>[] = [];
    for (let i = round * 20; i < (round + 1) * 20; i++) {
      sends.push(
        api
          .call('POST', `/v1/workspaces/${WS}-${i}/agents`, { id: `a${i}`, skills: ['s'] })
          .then((r) => statuses.add(r.status)),
      );
      sends.push(api.call('GET', `/no-such-route-${i}/${'x'.repeat(i)}`));
      sends.push(api.call('GET', `/v1/workspaces/${WS}-${i}/events/live?after=nope-${i}`));
    }
    await Promise.all(sends);
  }
  expect(statuses).toEqual(new Set([202]));
  // A scrape whose registry read misses its 1 s budget (a loaded machine) reports the last one's
  // workspaces: scraped until the workspaces past 100 are counted as left out.
  const text = await waitFor('a scrape that counts the workspaces past 100 as left out', async () => {
    const body = (await api.running.api!.inject({ method: 'GET', url: '/metrics' })).body;
    return /^switchboard_workspace_metrics_left_out [1-9]\d*$/m.test(body) ? body : undefined;
  });
  const families = labelValues(text);
  for (const [family, labels] of families) {
    const workspaces = labels.get('workspace');
    if (workspaces) expect(workspaces.size, family).toBeLessThanOrEqual(101);
    for (const [name, values] of labels)
      for (const v of values) expect(v, `${family} ${name}`).not.toMatch(/no-such-route|nope-|xxxx/);
  }
  const routes = [...(families.get('switchboard_http_request_duration_seconds')?.get('route') ?? [])];
  expect(routes.filter((r) => !r.startsWith('/'))).toEqual(['unknown']);
  expect(routes.every((r) => r === 'unknown' || !/-\d+/.test(r))).toBe(true);
  expect(families.get('switchboard_commands_total')?.get('workspace')?.has('~other')).toBe(true);
  expect(families.get('switchboard_workspace_up')?.get('workspace')?.size ?? 0).toBeLessThanOrEqual(100);
});
