/**
 * The limit that bounds a contact's walk: a skill belongs to at most MAX_SKILL_SETS_PER_SKILL
 * distinct agent skill sets. Past it, a new skill set is refused with 422, in Redis as in the model.
 */
import { isRight } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../src/adapters/redis/event-log.ts';
import { sendAll } from '../../src/cli/bench/shapes.ts';
import type { Command } from '../../src/domain/commands.ts';
import {
  decide,
  emptyWorkspace,
  evolve,
  MAX_SKILL_SETS_PER_SKILL,
  type Workspace,
} from '../../src/domain/model.ts';
import { ensureGroup } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';

describe('distinct agent skill sets per skill', () => {
  const suite = suiteRedis();

  it('refuses the set past the limit, admits sets others have, and frees room when a set retires', async () => {
    const ws = `limit-${Date.now().toString(36)}`;
    await ensureGroup(suite.redis, ws);
    const sets: Command[] = Array.from({ length: MAX_SKILL_SETS_PER_SKILL }, (_, i) => ({
      type: 'RegisterAgent',
      agentId: `a${i}`,
      skills: ['X', `s${String(i).padStart(5, '0')}`],
      capacity: 1,
    }));
    const probe: Command[] = [
      { type: 'RegisterAgent', agentId: 'over', skills: ['X', 'new'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'same', skills: ['X', 's00000'], capacity: 1 },
      { type: 'RegisterAgent', agentId: 'other', skills: ['Y', 'new'], capacity: 1 },
      { type: 'UpdateAgent', agentId: 'other', skills: ['X', 'new'] },
      // Refused on two counts (a channel the workspace has not declared too): the skill sets are
      // checked first, in Redis as in the model.
      { type: 'UpdateAgent', agentId: 'other', skills: ['X', 'new'], capacity: { sms: 1 } },
      // a1 is the only agent with its set: moving it to a new set keeps the count.
      { type: 'UpdateAgent', agentId: 'a1', skills: ['X', 'fresh'] },
      { type: 'RemoveAgent', agentId: 'a2' },
      { type: 'RegisterAgent', agentId: 'over', skills: ['X', 'new'], capacity: 1 },
    ];
    await sendAll(suite.redis, ws, [...sets, ...probe]);
    const rejected = (await readEvents(suite.redis, ws, { limit: 100, types: new Set(['CommandRejected']) }))
      .events;
    expect(rejected.map((e) => [e.data.command, e.data.status, e.data.title])).toEqual([
      ['RegisterAgent', 422, 'Too many distinct skill sets'],
      ['UpdateAgent', 422, 'Too many distinct skill sets'],
      ['UpdateAgent', 422, 'Too many distinct skill sets'],
    ]);
    expect(String(rejected[0]?.data.detail)).toContain('Skill "X"');

    let model: Workspace = emptyWorkspace;
    const outcomes: string[] = [];
    for (const c of [...sets, ...probe]) {
      const d = decide(model, c, 1);
      if (isRight(d)) for (const f of d.right) model = evolve(model, f);
      else outcomes.push(`${c.type} ${d.left.status} ${d.left.title}`);
    }
    expect(outcomes).toEqual([
      'RegisterAgent 422 Too many distinct skill sets',
      'UpdateAgent 422 Too many distinct skill sets',
      'UpdateAgent 422 Too many distinct skill sets',
    ]);
  });
});
