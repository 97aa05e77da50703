/**
 * GET /state?at= against the live state once the log has moved into the archive: a run with the
 * archiver role trimming the streams into small segments, taking state snapshots and forgetting
 * finished contacts, while the live documents are sampled (one MULTI with the last event). At
 * rest, each sampled position (then in the archive, some at or past a snapshot) answers the
 * documents Redis held then; the archive's last event and the stream's first after it answer the
 * state of a replay from the beginning; and the rebuild and the audit, run as a user runs them
 * over archive and streams, find the workspace clean.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { publicDocument } from '../../src/adapters/redis/projection-reads.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { DiskArchive } from '../../src/archive/store.ts';
import { stateAt } from '../../src/audit/state-at.ts';
import { seededRandom } from '../../src/cli/sim/random.ts';
import type { Command } from '../../src/domain/commands.ts';
import { runCli } from '../cli/run-cli.ts';
import { type ArchivingSwitchboard, archivingSwitchboard } from '../support/archive-log.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'replay-edges-4';
const SKILLS = ['A', 'B', 'C'];
let sb: ArchivingSwitchboard | undefined;

type Doc = Record<string, unknown> & { id: string };
interface Sample {
  readonly position: string;
  readonly agents: Doc[];
  readonly contacts: Doc[];
}
const byId = (a: Doc, b: Doc) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

async function sample(r: RedisClient): Promise<Sample> {
  const k = workspaceKeys(WS);
  const res = await r
    .multi()
    .hgetall(k.agents)
    .hgetall(k.contacts)
    .xrevrange(k.events, '+', '-', 'COUNT', 1)
    .exec();
  if (!res) throw new Error('aborted');
  const docs = (h: unknown) =>
    Object.values(h as Record<string, string>)
      .map((t) => publicDocument<Doc>(t)!)
      .sort(byId);
  return {
    position: (res[2]![1] as StreamEntry[])[0]![0],
    agents: docs(res[0]![1]),
    contacts: docs(res[1]![1]),
  };
}

beforeAll(async () => {
  sb = await archivingSwitchboard('sb-replay-edges-4-', {
    ROLES: 'api,projector,dispatcher,archiver',
    WORKSPACES: WS,
    LOG_RETENTION: '20',
    CONTACT_RETENTION: '300ms',
    ARCHIVE_EVERY_MS: '50',
    ARCHIVE_SEGMENT_ENTRIES: '15',
    SNAPSHOT_EVERY_EVENTS: '40',
  });
}, 30_000);

afterAll(async () => sb?.stop());

describe('GET /state?at= over a log the archiver moved, snapshot and forgot', () => {
  it('answers the sampled live states, and the rebuild and the audit find it clean', {
    timeout: 90_000,
  }, async () => {
    const main = sb!.main;
    const r = main.redis;
    const k = workspaceKeys(WS);
    const get = (at: string) =>
      main.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/state?at=${at}` });
    const rng = seededRandom(41);
    const skills = () => {
      const s = SKILLS.filter(() => rng() < 0.5).slice(0, 2);
      return s.length > 0 ? s : ['A'];
    };
    const send = (commands: Command[]) =>
      Promise.all(commands.map((command) => appendCommand(r, { workspace: WS, command })));
    await send(
      Array.from({ length: 6 }, (_, i) => ({
        type: 'RegisterAgent' as const,
        agentId: `agent-${i}`,
        skills: skills(),
        capacity: 1 + (i % 2),
      })),
    );
    const samples: Sample[] = [];
    let contact = 0;
    for (let round = 0; round < 30; round++) {
      const live = await sample(r).catch(() => undefined);
      const commands: Command[] = [];
      for (let i = 0; i < 6; i++)
        if (rng() < 0.3)
          commands.push({
            type: 'ChangeAgentState',
            agentId: `agent-${i}`,
            state: rng() < 0.8 ? 'available' : 'away',
          });
      for (let i = 0; i < 3; i++)
        commands.push({
          type: 'QueueContact',
          contactId: `c${contact++}`,
          skills: skills(),
          priority: Math.floor(rng() * 3),
        });
      for (const c of live?.contacts ?? [])
        if (c.state === 'assigned' && rng() < 0.6)
          commands.push({ type: 'CompleteContact', contactId: c.id });
        else if (c.state === 'queued' && rng() < 0.1)
          commands.push({ type: 'AbandonContact', contactId: c.id });
      await send(commands);
      if (round % 3 === 1) samples.push(await sample(r));
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(rng() * 30)));
    }

    // At rest: applied, archived but the newest 20, contacts forgotten, snapshots taken.
    await waitFor(
      'the log archived and at rest',
      async () => {
        const [applied, last, len, mark] = (await r
          .multi()
          .hget(k.meta, 'applied')
          .xrevrange(k.commands, '+', '-', 'COUNT', 1)
          .xlen(k.events)
          .hget(k.archive, 'events')
          .exec())!.map(([, v]) => v) as [string, StreamEntry[], number, string | null];
        return applied === last[0]?.[0] && len <= 20 && mark !== null;
      },
      { timeoutMs: 30_000, everyMs: 200 },
    );
    const mark = parseAnchor(await r.hget(k.archive, 'events'))!;
    const firstInStream = (
      (await r.xrange(k.events, `(${mark.last}`, '+', 'COUNT', 1)) as StreamEntry[]
    )[0]![0];
    const events = await main.api!.inject({
      method: 'GET',
      url: `/v1/workspaces/${WS}/events?limit=1000&type=ContactsForgotten`,
    });
    expect(events.json().events.length).toBeGreaterThan(0);

    let fromSnapshot = 0;
    for (const s of samples) {
      const res = await get(s.position);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body.position).toBe(s.position);
      expect(body.agents, s.position).toEqual(s.agents);
      expect(body.contacts, s.position).toEqual(s.contacts);
      if (body.snapshot !== null) fromSnapshot++;
    }
    expect(fromSnapshot).toBeGreaterThan(0);

    const store = new DiskArchive(sb!.dir);
    const strip = (b: Record<string, unknown>) => ({ ...b, snapshot: undefined, replayed: undefined });
    for (const at of [mark.last, firstInStream]) {
      const res = await get(at);
      expect(res.statusCode, res.body).toBe(200);
      const ref = await stateAt(r, WS, at, { archive: store, snapshots: false });
      expect('state' in ref && strip(res.json())).toEqual('state' in ref && strip(ref.state as never));
    }
    const rest = await sample(r);
    const last = (await get(rest.position)).json();
    expect(last.agents).toEqual(rest.agents);
    expect(last.contacts).toEqual(rest.contacts);

    const args = ['--workspace', WS, '--redis-url', sb!.redis.url, '--archive-dir', sb!.dir];
    const rebuild = await runCli('rebuild', args);
    expect(rebuild.stdout + rebuild.stderr).toContain('differences  0');
    expect(rebuild.code).toBe(0);
    const audit = await runCli('audit', args);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  });
});
