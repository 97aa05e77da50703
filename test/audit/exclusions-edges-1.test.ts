/**
 * A contact remembers the last 100 agents who turned it down (MAX_EXCLUDED_AGENTS); a version
 * before the bound kept every one, and its documents and replay snapshots hold the longer lists
 * (a document until its next rejection, a snapshot for good). The dispatcher reads such a list by
 * its last 100. Before, the audit held the document whole against the replay (which keeps 100) and
 * reported it as different; a snapshot taken before the bound restored the whole list, so
 * GET /state?at= answered it and the replayed model held agents out of the contact that the
 * dispatcher offers it to (its offer missing from the answer); GET /contacts/:id and the answer to
 * a command on the contact (the document's view) held the whole list, more than the contract's
 * last 100, and the audit reported that answer as different; and a rebuild reported the document
 * as different. Now each reads the list by its last 100, as the dispatcher does, and a difference
 * among those is still reported.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { snapshotName } from '../../src/archive/snapshots.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { Auditor } from '../../src/audit/auditor.ts';
import { bodyDifference } from '../../src/audit/outcome-body.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import {
  decodeSnapshot,
  encodeSnapshot,
  eventSha256,
  restoreAuditor,
} from '../../src/audit/replay-snapshot.ts';
import { replayLog, stateAt } from '../../src/audit/state-at.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { defaultDispatcherOptions, dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { MAX_EXCLUDED_AGENTS } from '../../src/domain/model.ts';
import { defaultProjectorOptions, ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { inProcessApi } from '../support/api.ts';

const WS = 'exclusions-cap';
/** Two agents more than the bound: the first two are no longer remembered. */
const N = MAX_EXCLUDED_AGENTS + 2;
const agents = Array.from({ length: N }, (_, i) => `e${String(i + 1).padStart(3, '0')}`);

describe('a contact turned down by more agents than it remembers, in data written before the bound', () => {
  // Only the API here: the test applies the commands and dispatches itself, step by step.
  const api = inProcessApi([WS], { env: { ROLES: 'api' } });
  const redis = () => api.running.redis;
  const k = workspaceKeys(WS);
  let dir: string;

  async function apply(commands: readonly Command[]): Promise<void> {
    for (const command of commands) await appendCommand(redis(), { workspace: WS, command });
    await projectPending(redis(), WS, [], defaultProjectorOptions);
  }

  const stored = async (): Promise<Record<string, unknown>> =>
    JSON.parse((await redis().hget(k.contacts, 'r1')) ?? '{}');

  /** The contact's document as a version before the bound would have written it: `excluded` whole. */
  async function writeExcluded(excluded: readonly string[]): Promise<void> {
    const doc = await stored();
    doc.excludedAgents = excluded;
    await redis().hset(k.contacts, 'r1', JSON.stringify(doc));
  }

  const violations = async () =>
    (await auditWorkspace(redis(), WS)).violations.map((v) => `${v.kind}: ${v.message}`);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'exclusions-cap-'));
    await ensureGroup(redis(), WS);
    await apply([
      {
        type: 'ChangeSettings',
        offerTimeoutMs: 600_000,
        wrapUpMs: 0,
        missedOfferPresence: 'available',
        maxWaitMs: null,
        channels: ['voice'],
      },
      ...agents.map((id): Command => ({ type: 'RegisterAgent', agentId: id, skills: ['s'], capacity: 1 })),
    ]);
    // Available one at a time, so e001 has been available longest.
    for (const id of agents) await apply([{ type: 'ChangeAgentState', agentId: id, state: 'available' }]);
    await apply([{ type: 'QueueContact', contactId: 'r1', skills: ['s'], priority: 0 }]);
    // Every agent is offered it in turn and turns it down.
    for (const id of agents) {
      expect(await dispatchPending(redis(), WS, defaultDispatcherOptions)).toBe(1);
      expect((await stored()).agentId).toBe(id);
      await apply([{ type: 'RejectOffer', contactId: 'r1', agentId: id }]);
    }
    expect((await stored()).excludedAgents).toEqual(agents.slice(-MAX_EXCLUDED_AGENTS));
  }, 120_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('audits a document holding every agent that turned it down as the replay: clean', async () => {
    await writeExcluded(agents);
    expect(await violations()).toEqual([]);
  }, 60_000);

  it('still reports a document whose last 100 differ from the replay', async () => {
    // One agent among the last 100 swapped for another, in front of a long list.
    const wrong = [...agents];
    wrong[N - 5] = 'e001';
    await writeExcluded(wrong);
    const found = await violations();
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^state: contact r1 differs: excludedAgents: /);
    // One left out of the last 100: its list is one short there.
    await writeExcluded(agents.slice(0, -1));
    expect(await violations()).toHaveLength(1);
    // Only the last 100, one agent fewer than the replay's: reported.
    await writeExcluded(agents.slice(-MAX_EXCLUDED_AGENTS + 1));
    expect(await violations()).toHaveLength(1);
    await writeExcluded(agents.slice(-MAX_EXCLUDED_AGENTS));
    expect(await violations()).toEqual([]);
  }, 60_000);

  it('answers GET /contacts/:id with the last 100, the agents routing keeps it from', async () => {
    await writeExcluded(agents);
    const c = await api.ok('GET', WS, '/contacts/r1');
    expect(c.excludedAgents).toEqual(agents.slice(-MAX_EXCLUDED_AGENTS));
  });

  it('finds the rebuilt document the live one', async () => {
    await writeExcluded(agents);
    const report = await rebuildWorkspace(redis(), WS);
    expect(report.compared).toBe(true);
    expect(report.differences.map((d) => `${d.kind} ${d.key} ${d.member}`)).toEqual([]);
    // A difference among the last 100 is one.
    await writeExcluded(agents.slice(0, -1));
    const wrong = await rebuildWorkspace(redis(), WS);
    expect(wrong.differences.map((d) => `${d.kind} ${d.key} ${d.member}`)).toEqual(['document contacts r1']);
    await writeExcluded(agents.slice(-MAX_EXCLUDED_AGENTS));
  }, 60_000);

  it('restores a snapshot taken before the bound with the last 100, and replays on as routed', async () => {
    // The replay to the end, frozen as a version before the bound froze it: every agent remembered.
    const a = new Auditor(WS);
    const checkpoint = (await redis().hget(k.meta, 'applied')) ?? '0-0';
    await replayLog(redis(), undefined, a, { commandsUpTo: checkpoint, pageSize: 5000, stop: () => false });
    const c = a.state.contacts.get('r1')!;
    a.state.putContact({ ...c, excluded: agents });
    const last = (await redis().xrevrange(k.events, '+', '-', 'COUNT', 1))[0] as StreamEntry;
    const { header, bytes } = encodeSnapshot(a, eventSha256(last));
    const store = new DiskArchive(dir);
    await store.putSnapshot(WS, snapshotName(header.events, header.position), bytes);

    const restored = restoreAuditor(
      decodeSnapshot(bytes, WS) as Exclude<ReturnType<typeof decodeSnapshot>, string>,
    );
    expect(restored.state.contacts.get('r1')?.excluded).toEqual(agents.slice(-MAX_EXCLUDED_AGENTS));

    // e001 and e002 are no longer remembered: the dispatcher offers it to e001, the longest available.
    expect(await dispatchPending(redis(), WS, defaultDispatcherOptions)).toBe(1);
    expect((await stored()).agentId).toBe('e001');
    const end = (await redis().xrevrange(k.events, '+', '-', 'COUNT', 1))[0]![0];
    const r = await stateAt(redis(), WS, end, { archive: store });
    if (!('state' in r)) throw new Error(`ahead: ${r.ahead}`);
    expect(r.state.snapshot).toBe(header.position);
    const doc = r.state.contacts.find((x) => x.id === 'r1') as Record<string, unknown>;
    expect(doc.agentId).toBe('e001');
    expect(doc.excludedAgents).toEqual(agents.slice(-MAX_EXCLUDED_AGENTS));

    // The replay from the snapshot holds the dispatcher's decision as the model's.
    const on = restoreAuditor(
      decodeSnapshot(bytes, WS) as Exclude<ReturnType<typeof decodeSnapshot>, string>,
    );
    await replayLog(redis(), undefined, on, {
      commandsUpTo: (await redis().hget(k.meta, 'applied')) ?? '0-0',
      pageSize: 5000,
      stop: () => false,
    });
    expect(on.lastEvent).toBe(end);
    expect(on.violations.kept.map((v) => `${v.kind}: ${v.message}`)).toEqual([]);
  }, 60_000);

  it('audits the answer to a command on such a document by its last 100 too', async () => {
    // Offered to e001 (above); its document still as written before the bound when it is accepted:
    // the answer is the document's view, the whole list in it.
    expect((await stored()).agentId).toBe('e001');
    await writeExcluded(agents);
    await apply([{ type: 'AcceptOffer', contactId: 'r1', agentId: 'e001' }]);
    expect((await stored()).state).toBe('assigned');
    expect(await violations()).toEqual([]);
    // The client is answered the view with the last 100 (this instance projects nothing: the test
    // applies the command while the request waits for its outcome).
    await writeExcluded(agents);
    const answer = api.call('POST', `/v1/workspaces/${WS}/contacts/r1/complete`);
    let done = false;
    void answer.finally(() => {
      done = true;
    });
    while (!done) {
      await projectPending(redis(), WS, [], defaultProjectorOptions);
      await new Promise((r) => setTimeout(r, 20));
    }
    const { status, body } = await answer;
    expect(status).toBe(200);
    expect(body.state).toBe('completed');
    expect(body.excludedAgents).toEqual(agents.slice(-MAX_EXCLUDED_AGENTS));
    expect(await violations()).toEqual([]);
    // The audit's hold on an answer: a difference among the last 100 is one.
    const view = { ...body, excludedAgents: agents.slice(-MAX_EXCLUDED_AGENTS) };
    expect(bodyDifference({ ...view, excludedAgents: agents }, { view })).toBeUndefined();
    expect(bodyDifference({ ...view, excludedAgents: agents.slice(0, -1) }, { view })).toMatch(
      /^body differs: excludedAgents: /,
    );
  }, 60_000);
});
