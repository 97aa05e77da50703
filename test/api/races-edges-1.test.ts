/**
 * Conflicting commands about the same agent or contact sent at once through two API instances,
 * each instance running the projector and the dispatcher too (two projectors in one consumer
 * group, two dispatchers), and a third with the api role only, on one Redis: an agent removed or
 * changed while the dispatcher assigns it, a contact abandoned, accepted, rejected, transferred or
 * completed while its offer, its maximum wait or another command races it, one Idempotency-Key
 * sent twice at once, settings changed under assignments. Each command gets exactly one documented
 * outcome (a 2xx, or the 404/409/422 docs/API.md names for it), the documents end consistent (no
 * contact held by an agent that is not its agent, none both finished and held), and the auditor
 * finds no violation in the log.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { auditWorkspace } from '../../src/audit/read.ts';
import type { Json } from '../support/api.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = [
  'races-max-wait',
  'races-key-pairs',
  'races-chaos',
  'races-remove',
  'races-abandon',
  'races-answer',
  'races-transfer',
  'races-capacity',
  'races-key',
];
const log = pino({ level: 'silent' });
let redis: TestRedis;
const instances: Running[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  // Two with every role; a third with the api role only (its appends take the append step, not
  // the projector's).
  for (let i = 0; i < 3; i++)
    instances.push(
      await startSwitchboard(
        loadConfig({
          AUTH: 'off',
          ...redis.env,
          PORT: '0',
          LOG_LEVEL: 'silent',
          COMMAND_TIMEOUT_MS: '10000',
          LB_DRAIN_MS: '0',
          WORKSPACES: WS.join(','),
          DISCOVER_WORKSPACES: 'false',
          ...(i === 2 ? { ROLES: 'api' } : {}),
        }),
        log,
      ),
    );
  await projectorReady(instances[0]!.redis, WS);
}, 60_000);

afterAll(async () => {
  for (const r of instances) await r.stop();
  await redis?.stop();
});

interface Answer {
  readonly status: number;
  readonly body: Json;
  readonly headers: Record<string, unknown>;
}

/** A request through instance `i` (0 or 1: every role; 2: api only). */
async function call(
  i: number,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  ws: string,
  path: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await instances[i]!.api!.inject({
    method,
    url: `/v1/workspaces/${ws}${path}`,
    headers,
    ...(payload !== undefined ? { payload: payload as Json } : {}),
  });
  return { status: res.statusCode, body: res.json() as Json, headers: res.headers };
}

async function ok(
  i: number,
  method: 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  ws: string,
  path: string,
  payload?: unknown,
) {
  const r = await call(i, method, ws, path, payload);
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  expect(r.status, `${method} ${path}: applied in time`).not.toBe(202);
  return r.body;
}

/** The answer is a 2xx with the document, or one of the problems `allowed` (type names). */
function oneOf(r: Answer, what: string, allowed: readonly string[]): 'ok' | string {
  if (r.status === 200 || r.status === 201) return 'ok';
  const type = String(r.body.type ?? '').replace('/problems/', '');
  expect(allowed, `${what}: ${r.status} ${JSON.stringify(r.body)}`).toContain(type);
  return type;
}

async function doc(ws: string, hash: 'agents' | 'contacts', id: string): Promise<Json | undefined> {
  const raw = await instances[0]!.redis.hget(workspaceKeys(ws)[hash], id);
  return raw ? (JSON.parse(raw) as Json) : undefined;
}

/** Waits until every command is applied, then audits the workspace: no violation. */
async function audited(ws: string): Promise<void> {
  const k = workspaceKeys(ws);
  await waitFor(
    `${ws}: every command applied`,
    async () => {
      const [last] = await instances[0]!.redis.xrevrange(k.commands, '+', '-', 'COUNT', 1);
      const applied = await instances[0]!.redis.hget(k.meta, 'applied');
      return last === undefined || last[0] === applied;
    },
    { timeoutMs: 20_000, everyMs: 20 },
  );
  const audit = await auditWorkspace(instances[0]!.redis, ws, { idle: true });
  expect(audit.violations.map((v) => `${v.position} ${v.kind}: ${v.message}`)).toEqual([]);
  expect(audit.state).toBe('compared');
}

const ROUNDS = 40;

describe('conflicting commands through two instances', () => {
  it('an agent removed while the dispatcher assigns it: removed, or busy with the contact', async () => {
    const ws = 'races-remove';
    let removed = 0;
    let busy = 0;
    for (let n = 0; n < ROUNDS; n++) {
      const agent = `a${n}`;
      const contact = `c${n}`;
      await ok(0, 'POST', ws, '/agents', { id: agent, skills: ['S'] });
      await ok(0, 'POST', ws, '/contacts', { id: contact, skills: ['S'] });
      const [avail, del] = await Promise.all([
        call(0, 'POST', ws, `/agents/${agent}/state`, { state: 'available' }),
        call(1, 'DELETE', ws, `/agents/${agent}`),
      ]);
      oneOf(avail, 'available', ['agent-not-found']);
      const d = oneOf(del, 'delete', ['agent-busy']);
      const c = await doc(ws, 'contacts', contact);
      const a = await doc(ws, 'agents', agent);
      if (d === 'ok') {
        removed++;
        expect(a, `${agent} removed`).toBeUndefined();
        expect(c?.state, `${contact} is not held by a removed agent`).toBe('queued');
        await ok(0, 'POST', ws, `/contacts/${contact}/abandon`);
      } else {
        busy++;
        expect(c).toMatchObject({ state: 'assigned', agentId: agent });
        await ok(0, 'POST', ws, `/contacts/${contact}/complete`);
        await ok(0, 'DELETE', ws, `/agents/${agent}`);
      }
    }
    expect(removed + busy).toBe(ROUNDS);
    await audited(ws);
  }, 60_000);

  it('a contact abandoned while it is offered and assigned: abandoned, or held, never both', async () => {
    const ws = 'races-abandon';
    await ok(0, 'PUT', ws, '/settings', { offerTimeoutMs: 60_000 });
    await ok(0, 'POST', ws, '/agents', { id: 'ana', skills: ['S'] });
    for (let n = 0; n < ROUNDS; n++) {
      const contact = `c${n}`;
      await ok(0, 'POST', ws, '/contacts', { id: contact, skills: ['S'] });
      const [avail, abandon] = await Promise.all([
        call(0, 'POST', ws, '/agents/ana/state', { state: 'available' }),
        call(1, 'POST', ws, `/contacts/${contact}/abandon`),
      ]);
      oneOf(avail, 'available', []);
      // Offered or queued, abandon always applies (an offered contact can be abandoned).
      oneOf(abandon, 'abandon', []);
      const c = await doc(ws, 'contacts', contact);
      expect(c?.state).toBe('abandoned');
      const a = await doc(ws, 'agents', 'ana');
      expect(a?.state, JSON.stringify(a)).toBe('available');
      // A late accept of a withdrawn offer is refused.
      const late = await call(1, 'POST', ws, `/contacts/${contact}/accept`, { agentId: 'ana' });
      expect(oneOf(late, 'late accept', ['contact-not-offered'])).toBe('contact-not-offered');
      await ok(0, 'POST', ws, '/agents/ana/state', { state: 'away' });
    }
    await audited(ws);
  }, 60_000);

  it('accept and reject of one offer at once, with its timer due: one winner', async () => {
    const ws = 'races-answer';
    await ok(0, 'PUT', ws, '/settings', { offerTimeoutMs: 40, missedOfferPresence: 'available' });
    await ok(0, 'POST', ws, '/agents', { id: 'ana', skills: ['S'] });
    await ok(0, 'POST', ws, '/agents/ana/state', { state: 'available' });
    const wins: Record<string, number> = {};
    for (let n = 0; n < ROUNDS; n++) {
      const contact = `c${n}`;
      await ok(0, 'POST', ws, '/contacts', { id: contact, skills: ['S'] });
      await new Promise((r) => setTimeout(r, 30 + (n % 15)));
      const [acc, rej] = await Promise.all([
        call(0, 'POST', ws, `/contacts/${contact}/accept`, { agentId: 'ana' }),
        call(1, 'POST', ws, `/contacts/${contact}/reject`, { agentId: 'ana' }),
      ]);
      const x = oneOf(acc, 'accept', ['contact-not-offered']);
      const y = oneOf(rej, 'reject', ['contact-not-offered']);
      expect(x === 'ok' && y === 'ok', 'not both').toBe(false);
      const c = await doc(ws, 'contacts', contact);
      const key = `${x === 'ok' ? 'accept' : y === 'ok' ? 'reject' : 'timer'}`;
      wins[key] = (wins[key] ?? 0) + 1;
      if (x === 'ok') {
        expect(c?.state).toBe('assigned');
        await ok(0, 'POST', ws, `/contacts/${contact}/complete`);
      } else {
        expect(['queued', 'offered']).toContain(c?.state);
        await ok(0, 'POST', ws, `/contacts/${contact}/abandon`);
      }
      const a = await doc(ws, 'agents', 'ana');
      if (a?.state !== 'available') await ok(0, 'POST', ws, '/agents/ana/state', { state: 'available' });
    }
    expect(Object.values(wins).reduce((s, v) => s + v, 0)).toBe(ROUNDS);
    await audited(ws);
  }, 60_000);

  it('a transfer racing the completion of the same contact: one applies, the other 409', async () => {
    const ws = 'races-transfer';
    await ok(0, 'POST', ws, '/agents', { id: 'ana', skills: ['S', 'T'] });
    await ok(0, 'POST', ws, '/agents/ana/state', { state: 'available' });
    for (let n = 0; n < ROUNDS; n++) {
      const contact = `c${n}`;
      await ok(0, 'POST', ws, '/contacts', { id: contact, skills: ['S'] });
      // Transferring to a skill no one has keeps it queued after; to T it may be assigned again.
      const skills = n % 2 === 0 ? ['X'] : ['T'];
      const [tr, co] = await Promise.all([
        call(0, 'POST', ws, `/contacts/${contact}/transfer`, { skills }),
        call(1, 'POST', ws, `/contacts/${contact}/complete`),
      ]);
      const t = oneOf(tr, 'transfer', ['contact-not-assigned']);
      const k = oneOf(co, 'complete', ['contact-not-assigned']);
      // The transfer may be followed by the completion of its new assignment (to T: ana again).
      if (t === 'ok' && k === 'ok') expect(skills).toEqual(['T']);
      expect(t === 'ok' || k === 'ok', 'one of them applies').toBe(true);
      const c = await doc(ws, 'contacts', contact);
      if (c?.state === 'assigned') await ok(0, 'POST', ws, `/contacts/${contact}/complete`);
      else if (c?.state === 'queued') {
        // Queued with T when read, the dispatcher may give it to ana before the abandon lands.
        const ab = await call(0, 'POST', ws, `/contacts/${contact}/abandon`);
        if (oneOf(ab, 'abandon', ['contact-not-queued']) !== 'ok')
          await ok(0, 'POST', ws, `/contacts/${contact}/complete`);
      }
      const a = await doc(ws, 'agents', 'ana');
      expect(a?.state, JSON.stringify(a)).toBe('available');
    }
    await audited(ws);
  }, 60_000);

  it('capacity lowered and skills changed while the dispatcher assigns: never over capacity in the end', async () => {
    const ws = 'races-capacity';
    for (let n = 0; n < ROUNDS / 2; n++) {
      const agent = `a${n}`;
      await ok(0, 'POST', ws, '/agents', { id: agent, skills: ['S'], capacity: 3 });
      const contacts = [0, 1, 2].map((j) => `c${n}-${j}`);
      await Promise.all(contacts.map((id) => ok(0, 'POST', ws, '/contacts', { id, skills: ['S'] })));
      const [avail, patch] = await Promise.all([
        call(0, 'POST', ws, `/agents/${agent}/state`, { state: 'available' }),
        call(
          1,
          'PATCH',
          ws,
          `/agents/${agent}`,
          n % 2 ? { capacity: 1 } : { capacity: 1, skills: ['S', 'U'] },
        ),
      ]);
      oneOf(avail, 'available', []);
      oneOf(patch, 'patch', []);
      // A contact queued after the change goes to no agent over its capacity.
      await ok(1, 'POST', ws, '/contacts', { id: `c${n}-3`, skills: ['S'] });
      const a = await doc(ws, 'agents', agent);
      const held = (await Promise.all([...contacts, `c${n}-3`].map((id) => doc(ws, 'contacts', id)))).filter(
        (c) => c?.state === 'assigned' && c.agentId === agent,
      );
      // Assignments made before the change stay; none is made after it while the agent is full.
      expect(held.length, JSON.stringify(a)).toBeLessThanOrEqual(3);
      const d4 = await doc(ws, 'contacts', `c${n}-3`);
      if (held.length >= 1) expect(d4?.state, `c${n}-3 waits: ${agent} is full`).toBe('queued');
      for (const c of held) await ok(0, 'POST', ws, `/contacts/${String(c!.id)}/complete`);
      await ok(0, 'POST', ws, `/agents/${agent}/state`, { state: 'offline' });
      for (const id of [...contacts, `c${n}-3`]) {
        const c = await doc(ws, 'contacts', id);
        if (c?.state === 'queued') await ok(0, 'POST', ws, `/contacts/${id}/abandon`);
        else if (c?.state === 'assigned') await ok(0, 'POST', ws, `/contacts/${id}/complete`);
      }
    }
    await audited(ws);
  }, 60_000);

  it('one Idempotency-Key sent to both instances at once with different bodies: one appended', async () => {
    const ws = 'races-key';
    for (let n = 0; n < ROUNDS; n++) {
      const key = `k-${n}`;
      const [a, b] = await Promise.all([
        call(0, 'POST', ws, '/contacts', { id: `c${n}`, skills: ['S'] }, { 'idempotency-key': key }),
        call(
          1,
          'POST',
          ws,
          '/contacts',
          { id: `c${n}`, skills: ['S'], priority: 1 },
          { 'idempotency-key': key },
        ),
      ]);
      const x = oneOf(a, 'first', ['idempotency-key-reused']);
      const y = oneOf(b, 'second', ['idempotency-key-reused']);
      expect([x, y].sort(), 'one applied, the other told the key was reused').toEqual([
        'idempotency-key-reused',
        'ok',
      ]);
      const c = await doc(ws, 'contacts', `c${n}`);
      expect(c?.priority ?? 0).toBe(x === 'ok' ? 0 : 1);
      // The same body at once to both: one appended, the other its replay.
      const same = `s-${n}`;
      const [p, q] = await Promise.all([
        call(0, 'POST', ws, '/agents', { id: `a${n}`, skills: ['S'] }, { 'idempotency-key': same }),
        call(1, 'POST', ws, '/agents', { id: `a${n}`, skills: ['S'] }, { 'idempotency-key': same }),
      ]);
      expect([p.status, q.status], JSON.stringify([p.body, q.body])).toEqual([201, 201]);
      expect(
        [p.headers['idempotent-replayed'], q.headers['idempotent-replayed']].filter(Boolean),
      ).toHaveLength(1);
      expect(p.body.position).toBe(q.body.position);
    }
    await audited(ws);
  }, 60_000);
});

describe('many conflicting commands at once', () => {
  it('agents and contacts changed from both instances at random: documented answers, a clean audit', async () => {
    const ws = 'races-chaos';
    await ok(0, 'PUT', ws, '/settings', {
      offerTimeoutMs: 25,
      wrapUpMs: 15,
      missedOfferPresence: 'available',
      maxWaitMs: 400,
      channels: ['chat', 'voice'],
    });
    const agents = ['a0', 'a1', 'a2', 'a3'];
    for (const [i, id] of agents.entries())
      await ok(0, 'POST', ws, '/agents', {
        id,
        skills: ['S', ...(i % 2 ? ['T'] : [])],
        capacity: (i % 3) + 1,
      });
    // A fixed seed (RACES_SEED tries another): the same commands each run, their timing the machine's.
    let seed = Number(process.env.RACES_SEED ?? 7);
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor(seed / 65536) % n;
    };
    const allowed = [
      'agent-not-found',
      'agent-busy',
      'agent-exists',
      'contact-not-found',
      'contact-not-queued',
      'contact-not-assigned',
      'contact-not-offered',
      'offer-not-yours',
      'contact-exists',
      'settings-conflict',
    ];
    const seen: Record<string, number> = {};
    let contacts = 0;
    for (let round = 0; round < 100; round++) {
      const batch: Promise<void>[] = [];
      for (let j = 0; j < 8; j++) {
        const i = rnd(3);
        const agent = agents[rnd(agents.length)]!;
        // Mostly one of the last contacts queued (those still waiting or held).
        const contact = `c${Math.max(0, contacts - 1 - rnd(6))}`;
        const pick = rnd(17);
        const offeredTo = async () => String((await doc(ws, 'contacts', contact))?.agentId ?? agent);
        // Mostly a contact the agent holds (offered or assigned), else one of the last queued.
        const held = async () => {
          const list = ((await doc(ws, 'agents', agent))?.activeContacts ?? []) as string[];
          return list.length > 0 && rnd(4) > 0 ? list[rnd(list.length)]! : contact;
        };
        type Req = ['POST' | 'PATCH' | 'PUT' | 'DELETE', string, unknown];
        const make: (() => Req | Promise<Req>)[] = [
          () => [
            'POST',
            '/contacts',
            { id: `c${contacts++}`, skills: ['S'], channel: rnd(2) ? 'chat' : 'voice' },
          ],
          () => [
            'POST',
            `/agents/${agent}/state`,
            { state: ['available', 'available', 'available', 'away', 'offline'][rnd(5)] },
          ],
          async () => {
            const id = await held();
            return ['POST', `/contacts/${id}/accept`, { agentId: rnd(5) ? agent : await offeredTo() }];
          },
          async () => {
            const id = await held();
            return ['POST', `/contacts/${id}/reject`, { agentId: rnd(5) ? agent : await offeredTo() }];
          },
          () => ['POST', `/contacts/${contact}/abandon`, undefined],
          async () => ['POST', `/contacts/${await held()}/complete`, undefined],
          async () => ['POST', `/contacts/${await held()}/transfer`, { skills: [rnd(2) ? 'S' : 'T'] }],
          () => [
            'PATCH',
            `/agents/${agent}`,
            { capacity: [rnd(3) + 1, { chat: rnd(3) + 1, voice: 1 }, { chat: 2 }, { voice: 2 }][rnd(4)] },
          ],
          () => ['PATCH', `/agents/${agent}`, { skills: rnd(2) ? ['S'] : ['S', 'T'] }],
          () => ['DELETE', `/agents/${agent}`, undefined],
          () => ['POST', '/agents', { id: agent, skills: ['S'] }],
          () => [
            'PUT',
            '/settings',
            {
              offerTimeoutMs: 25 * rnd(2),
              wrapUpMs: 15,
              missedOfferPresence: 'available',
              maxWaitMs: 400,
              ...(rnd(2) ? { agentSelection: 'least-occupied' } : {}),
            },
          ],
          async () => {
            const id = await held();
            return ['POST', `/contacts/${id}/accept`, { agentId: rnd(5) ? agent : await offeredTo() }];
          },
          () => ['POST', '/contacts', { id: `c${contacts++}`, skills: ['T'], priority: rnd(3) }],
          () => [
            'POST',
            '/contacts',
            {
              id: `c${contacts++}`,
              skills: ['T'],
              priority: rnd(3),
              preferredAgents: [agent],
              preferredForMs: 5 + rnd(30),
              steps: [
                { afterMs: 5 + rnd(20), skills: ['S'] },
                { afterMs: 40, skills: ['S', 'T'], priority: 2 },
              ],
            },
          ],
          () => ['PATCH', `/agents/${agent}`, { skills: [{ name: 'S', level: rnd(3) + 1 }, 'T'] }],
          () => [
            'PUT',
            '/settings',
            {
              offerTimeoutMs: 25 * rnd(2),
              wrapUpMs: 15 * rnd(2),
              missedOfferPresence: 'available',
              maxWaitMs: 400,
              ...(rnd(2) ? { priorityWeightMs: 10 + rnd(20) } : {}),
              ...(rnd(2) ? { agentSelection: 'most-skilled' } : {}),
            },
          ],
        ];
        batch.push(
          (async () => {
            const [method, path, body] = await make[pick]!();
            const r = await call(i, method, ws, path, body);
            const o = oneOf(r, `${method} ${path} ${JSON.stringify(body)}`, allowed);
            seen[`${method} ${path.replace(/[ac]\d+/g, '_')} ${o}`] =
              (seen[`${method} ${path.replace(/[ac]\d+/g, '_')} ${o}`] ?? 0) + 1;
          })(),
        );
      }
      await Promise.all(batch);
    }
    await new Promise((r) => setTimeout(r, 600));
    for (const id of agents) {
      const a = await doc(ws, 'agents', id);
      if (!a) continue;
      for (const id of a.activeContacts as string[]) {
        const c = await doc(ws, 'contacts', id);
        expect(['offered', 'assigned'], `${id} held by ${a.id}: ${JSON.stringify(c)}`).toContain(c?.state);
        expect(c?.agentId).toBe(a.id);
      }
    }
    // Every kind of command applied somewhere in the run, and was refused somewhere too.
    expect(Object.keys(seen).filter((k) => k.endsWith(' ok')).length, JSON.stringify(seen)).toBeGreaterThan(
      8,
    );
    await audited(ws);
  }, 60_000);
});

describe('one Idempotency-Key at once through one instance, two, or an api-only one', () => {
  const pairs: [number, number][] = [
    [0, 0],
    [0, 1],
    [0, 2],
    [2, 2],
    [2, 1],
  ];
  it('the same request: one appended, both the same answer; another request: one 422', async () => {
    const ws = 'races-key-pairs';
    await ok(0, 'POST', ws, '/agents', { id: 'ana', skills: ['S'] });
    for (let n = 0; n < ROUNDS; n++) {
      const [i, j] = pairs[n % pairs.length]!;
      const h = (k: string) => ({ 'idempotency-key': k });
      // Same body: a 201 each, one of them the replay.
      const [p, q] = await Promise.all([
        call(i, 'POST', ws, '/contacts', { id: `c${n}`, skills: ['X'] }, h(`same-${n}`)),
        call(j, 'POST', ws, '/contacts', { skills: ['X'], id: `c${n}` }, h(`same-${n}`)),
      ]);
      expect([p.status, q.status], `${i},${j}: ${JSON.stringify([p.body, q.body])}`).toEqual([201, 201]);
      expect(p.body.position).toBe(q.body.position);
      expect([p.headers['idempotent-replayed'], q.headers['idempotent-replayed']].filter(Boolean)).toEqual([
        'true',
      ]);
      // A refused command: both answer its 409.
      const [r, s] = await Promise.all([
        call(i, 'POST', ws, `/contacts/c${n}/accept`, { agentId: 'ana' }, h(`refused-${n}`)),
        call(j, 'POST', ws, `/contacts/c${n}/accept`, { agentId: 'ana' }, h(`refused-${n}`)),
      ]);
      expect([r.status, s.status], `${i},${j}: ${JSON.stringify([r.body, s.body])}`).toEqual([409, 409]);
      expect([r.body.type, s.body.type]).toEqual([
        '/problems/contact-not-offered',
        '/problems/contact-not-offered',
      ]);
      // Different routes under one key: one applied, the other 422.
      const [t, u] = await Promise.all([
        call(i, 'POST', ws, `/contacts/c${n}/abandon`, undefined, h(`other-${n}`)),
        call(j, 'POST', ws, `/contacts/c${n}/transfer`, { skills: ['S'] }, h(`other-${n}`)),
      ]);
      const x = oneOf(t, 'abandon', ['idempotency-key-reused']);
      const y = oneOf(u, 'transfer', ['idempotency-key-reused', 'contact-not-assigned']);
      expect(
        [x, y].filter((o) => o === 'idempotency-key-reused'),
        `${i},${j}: ${JSON.stringify([t.body, u.body])}`,
      ).toHaveLength(1);
    }
    await audited(ws);
  }, 60_000);
});

describe('commands racing a contact’s maximum wait', () => {
  it('accept, abandon or transfer at the deadline: one fact wins, the agent is free after', async () => {
    const ws = 'races-max-wait';
    await ok(0, 'PUT', ws, '/settings', { offerTimeoutMs: 60_000, missedOfferPresence: 'available' });
    await ok(0, 'POST', ws, '/agents', { id: 'ana', skills: ['S'] });
    await ok(0, 'POST', ws, '/agents/ana/state', { state: 'available' });
    for (let n = 0; n < ROUNDS; n++) {
      const contact = `c${n}`;
      const maxWaitMs = 40;
      await ok(0, 'POST', ws, '/contacts', { id: contact, skills: ['S'], maxWaitMs });
      await new Promise((r) => setTimeout(r, maxWaitMs - 12 + (n % 12)));
      const kind = n % 3;
      const [first, second] = await Promise.all([
        call(0, 'POST', ws, `/contacts/${contact}/accept`, { agentId: 'ana' }),
        kind === 0
          ? call(1, 'POST', ws, `/contacts/${contact}/abandon`)
          : kind === 1
            ? call(2, 'POST', ws, `/contacts/${contact}/transfer`, { skills: ['X'] })
            : call(1, 'GET', ws, `/contacts/${contact}`),
      ]);
      const acc = oneOf(first, 'accept', ['contact-not-offered']);
      const other = oneOf(second, 'other', ['contact-not-queued', 'contact-not-assigned']);
      const c = await doc(ws, 'contacts', contact);
      const state = String(c?.state);
      if (acc === 'ok' && kind === 0) expect(other).toBe('contact-not-queued');
      if (acc !== 'ok') expect(['expired', 'abandoned', 'queued', 'offered']).toContain(state);
      if (state === 'assigned') await ok(0, 'POST', ws, `/contacts/${contact}/complete`);
      else if (state === 'queued' || state === 'offered')
        await ok(0, 'POST', ws, `/contacts/${contact}/abandon`);
      await waitFor(
        'ana free again',
        async () => {
          const a = await doc(ws, 'agents', 'ana');
          return a?.state === 'available' && (a.activeContacts as unknown[]).length === 0;
        },
        { timeoutMs: 5000, everyMs: 10 },
      );
    }
    await audited(ws);
  }, 60_000);
});
