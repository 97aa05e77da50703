/**
 * docs/METRICS.md's figures after an offer expires and after a refused command: the wait histogram
 * counts each decision once (an offer expired and made again counts twice, as the assignments
 * counter does), and a command the projector refuses is counted by its answer's status.
 */
import { describe, expect, it } from 'vitest';
import { inProcessApi } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'metrics-edges-offers';
const api = inProcessApi([WS]);

const scrape = async (): Promise<string> => (await api.running.api!.inject({ url: '/metrics' })).body;

/** The value of a sample (0 when absent). */
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

describe('an offer that expires, and a refused command, in /metrics', () => {
  it('counts each offer in the assignments and the wait histogram, and the refusal by status', async () => {
    const w = `workspace="${WS}"`;
    await api.ok('PUT', WS, '/settings', { offerTimeoutMs: 300 });
    await api.ok('POST', WS, '/agents', { id: 'a1', skills: ['English'] });
    await api.ok('POST', WS, '/agents', { id: 'a2', skills: ['English'] });
    // The histogram counts from the first scrape that reports the workspace.
    const first = await scrape();
    const assigned0 = sample(first, `switchboard_workspace_assignments_total{${w}}`);
    const counted0 = sample(first, `switchboard_wait_seconds_count{${w}}`);
    await api.ok('POST', WS, '/agents/a1/state', { state: 'available' });
    await api.ok('POST', WS, '/contacts', { id: 'c1', skills: ['English'] });
    await api.until(WS, '/contacts/c1', (c) => c.state === 'offered');
    // a1 does not answer: the offer expires, a1 goes away; a2 gets the next offer.
    await api.until(WS, '/agents/a1', (a) => a.state === 'away');
    await api.ok('POST', WS, '/agents/a2/state', { state: 'available' });
    await api.until(WS, '/contacts/c1', (c) => c.state === 'offered');
    // Another agent's accept is refused (409 offer-not-yours): counted under its status.
    const refused = await api.call('POST', `/v1/workspaces/${WS}/contacts/c1/accept`, { agentId: 'a1' });
    expect(refused.status).toBe(409);
    const text = await waitFor('both offers counted', async () => {
      const t = await scrape();
      return sample(t, `switchboard_workspace_assignments_total{${w}}`) >= assigned0 + 2 ? t : undefined;
    });
    expect(sample(text, `switchboard_workspace_assignments_total{${w}}`)).toBe(assigned0 + 2);
    expect(sample(text, `switchboard_wait_seconds_count{${w}}`)).toBe(counted0 + 2);
    // The second offer's wait is from the contact's arrival: past the first offer's 300 ms.
    expect(sample(text, `switchboard_wait_seconds_sum{${w}}`)).toBeGreaterThanOrEqual(0.3);
    expect(sample(text, `switchboard_commands_total{${w},type="AcceptOffer",status="409"}`)).toBe(1);
    expect(sample(text, 'switchboard_dispatcher_assignments_total')).toBe(2);
    expect(sample(text, `switchboard_agents{${w},state="away"}`)).toBe(1);
    expect(sample(text, `switchboard_agents{${w},state="reserved"}`)).toBe(1);
  });

  it('a request that is not a command is counted by route template only, never by its URL', async () => {
    const bad = await api.call('POST', `/v1/workspaces/${WS}/contacts`, { id: 'c9', skills: 'English' });
    expect(bad.status).toBe(400);
    const lost = await api.call('GET', `/no/such/place-${Math.random()}`);
    expect(lost.status).toBe(404);
    const text = await scrape();
    const series = text.split('\n').filter((l) => !l.startsWith('#'));
    expect(
      series.filter((l) => l.startsWith('switchboard_commands_total{') && l.includes('status="400"')),
    ).toEqual([]);
    expect(series.some((l) => l.includes('place-'))).toBe(false);
    expect(
      sample(
        text,
        'switchboard_http_request_duration_seconds_count{method="GET",route="unknown",status="404"}',
      ),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(
        text,
        'switchboard_http_request_duration_seconds_count{method="POST",route="/v1/workspaces/:ws/contacts",status="400"}',
      ),
    ).toBe(1);
  });
});
