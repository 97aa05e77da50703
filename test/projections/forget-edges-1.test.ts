/**
 * ForgetContacts against the commands still in the log that name the contacts it removes (docs/API.md,
 * "Finished contacts"; docs/ARCHIVE.md): an accept or reject of an old offer, an agent's complete,
 * a transfer, an abandon, and the old timers of its wait, applied after it is forgotten, are a
 * `404 contact-not-found` or a stale timer, and change nothing (not the contact queued again under
 * its id either); a contact finished exactly at the command's time minus `keepMs` stays (the cut is
 * "before"); the model decides every one of them alike, so the audit and the rebuild are clean; a forgetting
 * the log does not explain is one the audit names.
 */
import { describe, expect, it } from 'vitest';
import { appendCommand, recordedOutcome } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import { rebuildWorkspace } from '../../src/cli/rebuild/rebuild.ts';
import { dispatchPending } from '../../src/dispatcher/dispatcher.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('commands naming a forgotten contact', () => {
  const suite = suiteRedis();
  let n = 0;

  async function send(
    ws: string,
    command: Command,
  ): Promise<{ status: number; type?: unknown; position: string }> {
    const key = `k${++n}`;
    const { position } = await appendCommand(suite.redis, { workspace: ws, command, idempotencyKey: key });
    await projectPending(suite.redis, ws);
    const outcome = await recordedOutcome(suite.redis, ws, key);
    return { status: outcome!.status, type: outcome!.body.type, position };
  }

  async function expectClean(ws: string): Promise<void> {
    const audit = await auditWorkspace(suite.redis, ws);
    expect(audit.violations, JSON.stringify(audit.violations.slice(0, 3))).toEqual([]);
    const rebuilt = await rebuildWorkspace(suite.redis, ws);
    expect(rebuilt.differences, JSON.stringify(rebuilt.differences.slice(0, 3))).toEqual([]);
  }

  it('an old offer, an agent key complete, a transfer and old timers after the forgetting: 404 or stale', async () => {
    const ws = `forget-edges-1-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    await send(ws, {
      type: 'ChangeSettings',
      offerTimeoutMs: 60_000,
      wrapUpMs: 0,
      missedOfferPresence: 'away',
      maxWaitMs: 600_000,
    });
    await send(ws, { type: 'RegisterAgent', agentId: 'ana', skills: ['A'], capacity: 1 });
    await send(ws, { type: 'ChangeAgentState', agentId: 'ana', state: 'available' });
    await send(ws, { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 });
    await dispatchPending(suite.redis, ws);
    const offered = JSON.parse((await suite.redis.hget(k.contacts, 'c1'))!);
    expect(offered.state).toBe('offered');
    // The customer leaves while it is offered, and the contact is forgotten at once.
    expect((await send(ws, { type: 'AbandonContact', contactId: 'c1' })).status).toBe(200);
    expect((await send(ws, { type: 'ForgetContacts', keepMs: 0, max: 500 })).status).toBe(200);
    expect(await suite.redis.hexists(k.contacts, 'c1')).toBe(0);

    // The agent answers the old offer; the old timers of its wait fire late.
    for (const c of [
      { type: 'AcceptOffer', contactId: 'c1', agentId: 'ana' },
      { type: 'RejectOffer', contactId: 'c1', agentId: 'ana' },
      { type: 'CompleteContact', contactId: 'c1', agentId: 'ana' },
      { type: 'TransferContact', contactId: 'c1', skills: ['A'] },
      { type: 'AbandonContact', contactId: 'c1' },
    ] as Command[]) {
      const r = await send(ws, c);
      expect([c.type, r.status, r.type]).toEqual([c.type, 404, '/problems/contact-not-found']);
    }
    for (const c of [
      { type: 'ExpireOffer', contactId: 'c1', offer: offered._offer },
      { type: 'ExpireContact', contactId: 'c1', seq: offered._seq },
    ] as Command[])
      expect((await send(ws, c)).status).toBe(200);
    expect(await suite.redis.hexists(k.contacts, 'c1')).toBe(0);

    // Queued again and offered to the same agent: the old timers stay stale for it.
    await send(ws, { type: 'QueueContact', contactId: 'c1', skills: ['A'], priority: 0 });
    await dispatchPending(suite.redis, ws);
    const again = JSON.parse((await suite.redis.hget(k.contacts, 'c1'))!);
    expect(again.state).toBe('offered');
    await send(ws, { type: 'ExpireContact', contactId: 'c1', seq: offered._seq } as Command);
    await send(ws, { type: 'ExpireOffer', contactId: 'c1', offer: offered._offer } as Command);
    expect(JSON.parse((await suite.redis.hget(k.contacts, 'c1'))!).state).toBe('offered');
    await expectClean(ws);
  });

  it("a contact finished exactly at the cut (the command's time minus keepMs) stays", async () => {
    const ws = `forget-edges-1-cut-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    // A command made for `now` (keepMs = now - the finish time) lands at `now` most times: then the
    // contact is exactly at the cut and stays; a later one forgets it.
    let hits = 0;
    for (let i = 0; i < 50 && hits < 3; i++) {
      const id = `c${i}`;
      await send(ws, { type: 'QueueContact', contactId: id, skills: ['A'], priority: 0 });
      const done = await send(ws, { type: 'AbandonContact', contactId: id });
      const finishedAt = Number(done.position.split('-')[0]);
      expect(Number(await suite.redis.zscore(k.finished, id))).toBe(finishedAt);
      const [s, us] = (await suite.redis.call('TIME')) as [string, string];
      const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
      const r = await send(ws, { type: 'ForgetContacts', keepMs: now - finishedAt, max: 500 });
      const at = Number(r.position.split('-')[0]);
      expect(await suite.redis.hexists(k.contacts, id)).toBe(at === now ? 1 : 0);
      if (at === now) hits++;
      else continue;
      // One millisecond later it goes.
      await send(ws, { type: 'ForgetContacts', keepMs: 0, max: 500 });
      expect(await suite.redis.hexists(k.contacts, id)).toBe(0);
    }
    expect(hits).toBeGreaterThan(0);
    await expectClean(ws);
  });

  it('a forgetting the log does not explain (the finished set changed behind it) is a violation', async () => {
    const ws = `forget-edges-1-drift-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    await ensureGroup(suite.redis, ws);
    for (const id of ['c1', 'c2']) {
      await send(ws, { type: 'QueueContact', contactId: id, skills: ['A'], priority: 0 });
      await send(ws, { type: 'AbandonContact', contactId: id });
    }
    await expectClean(ws);
    // c2's finish time moved back an hour: a ForgetContacts keeping 10 minutes removes it.
    await suite.redis.zadd(k.finished, Date.now() - 3_600_000, 'c2');
    const r = await send(ws, { type: 'ForgetContacts', keepMs: 600_000, max: 500 });
    expect(await suite.redis.hexists(k.contacts, 'c2')).toBe(0);
    const audit = await auditWorkspace(suite.redis, ws);
    // Named by the command (its outcome and facts are where the audit finds them).
    const named = audit.violations.filter(
      (v) => v.message.includes(`ForgetContacts (command `) && v.message.includes(`at ${r.position})`),
    );
    expect(
      named.map((v) => v.kind),
      JSON.stringify(audit.violations),
    ).toContain('outcome');
    // The ContactsForgotten the model does not give is a fact it does not decide, at that event,
    // not a command applied twice.
    const forgotten = audit.violations.filter((v) => v.message.startsWith('ContactsForgotten of '));
    expect(
      forgotten.map((v) => [v.kind, v.stream]),
      JSON.stringify(audit.violations),
    ).toEqual([['fact', 'events']]);
    expect(forgotten[0]!.message).toMatch(/which the model gives no fact for/);
    expect(audit.violations.filter((v) => v.message.includes('applied twice'))).toEqual([]);
  });
});
