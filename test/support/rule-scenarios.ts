/**
 * Small steps the routing-rule and settings suites share, bound to one `inProcessApi`:
 * `const { agent, decided, audited } = ruleScenarios(api);` at the top of a file.
 */
import { expect } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import type { InProcessApi, Json } from './api.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `settleMs`: how long `audited` waits before auditing (0 unless given; the settings and lifecycle
 * suites give 200 ms so that timers started by a test's last step have fired).
 */
export function ruleScenarios(api: InProcessApi, opts: { readonly settleMs?: number } = {}) {
  const { ok, until } = api;
  const settleMs = opts.settleMs ?? 0;

  /** Registers an agent (not yet available). */
  const agent = (ws: string, id: string, skills: unknown[], extra: Json = {}) =>
    ok('POST', ws, '/agents', { id, skills, ...extra });

  /** Registers an agent with skill `s` (and `body` on top), then makes it available. */
  async function agentWith(ws: string, id: string, body: Json = {}): Promise<void> {
    await ok('POST', ws, '/agents', { id, skills: ['s'], ...body });
    await ok('POST', ws, `/agents/${id}/state`, { state: 'available' });
  }

  /** Agents made available one after another, each a few ms after the one before (LAA order). */
  async function availableInOrder(ws: string, ids: string[]): Promise<void> {
    for (const id of ids) {
      await ok('POST', ws, `/agents/${id}/state`, { state: 'available' });
      await sleep(3);
    }
    const since = await Promise.all(
      ids.map(async (id) => Date.parse(String((await ok('GET', ws, `/agents/${id}`)).availableSince))),
    );
    expect(new Set(since).size).toBe(ids.length);
    expect(since).toEqual([...since].sort((a, b) => a - b));
  }

  /** The agent a contact was assigned or offered to, once it was. */
  const decided = async (ws: string, id: string) =>
    (await until(ws, `/contacts/${id}`, (c) => c.state === 'assigned' || c.state === 'offered')).agentId;

  /** The auditor, the workspace idle (after `settleMs`), finds no violation. */
  async function audited(ws: string): Promise<void> {
    if (settleMs > 0) await sleep(settleMs);
    const report = await auditWorkspace(api.running.redis, ws, { idle: true });
    expect(report.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  }

  /** Every decision so far, in order: [contactId, agentId]. */
  async function decisions(ws: string): Promise<[string, string][]> {
    const { events } = await ok('GET', ws, '/events?limit=1000&type=AssignmentMade');
    return (events as { data: { contactId: string; agentId: string } }[]).map((e) => [
      e.data.contactId,
      e.data.agentId,
    ]);
  }

  /** The workspace's events (the first 1000). */
  const events = async (ws: string) =>
    (await ok('GET', ws, '/events?limit=1000')).events as { position: string; type: string; data: Json }[];

  /** The data of the events of one type. */
  const ofType = async (ws: string, type: string) =>
    (await events(ws)).filter((e) => e.type === type).map((e) => e.data);

  return { sleep, agent, agentWith, availableInOrder, decided, audited, decisions, events, ofType };
}
