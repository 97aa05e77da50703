import type { FastifyInstance } from 'fastify';
import * as t from 'io-ts';
import { EVENT_TYPES } from '../../domain/events.ts';
import { DEFAULT_SETTINGS, type Settings, settingsWithDefaults } from '../../domain/model.ts';
import { strict } from '../../domain/strict.ts';
import {
  AfterPosition,
  comparePositions,
  ID_PATTERN,
  Position,
  Skill,
  withMessage,
} from '../../domain/values.ts';
import { AgentStateName, type ContactDocument } from '../../domain/views.ts';
import { FOREIGN_EVENT } from '../redis/advice.ts';
import { lastEventPosition, readEvents, streamHistory } from '../redis/event-log.ts';
import { workspaceKeys } from '../redis/keys.ts';
import { listAgents, publicDocument, readAgent, readStats } from '../redis/projection-reads.ts';
import { redisClockNow } from '../redis/redis-clock.ts';
import { contactWithPlace } from '../redis/routing-index.ts';
import type { RedisClient } from '../redis/scripts.ts';
import { notItsContact } from './auth.ts';
import { positionWaiter } from './min-position.ts';
import { idParams, isIntegerIn, MinPositionQuery, workspaceOf } from './params.ts';
import { decodeOr400, ProblemError, positionAhead, problem } from './problem.ts';

const IntString = (name: string, min: number, max: number) =>
  withMessage(
    t.refinement(t.string, (s) => isIntegerIn(s, min, max), name),
    `an integer from ${min} to ${max}`,
  );

/**
 * `type=A,B`: each item must be a known event type. An empty item (`A,,B`, `,A`, `A,`) is refused,
 * not passed over (a stray comma, or an item a client lost); `type=` (or `type=,`) names no type, so
 * it would filter everything out: refused too (leave `type` out for every type).
 */
export const TypeList = new t.Type<Set<string>, string, unknown>(
  'TypeList',
  (u): u is Set<string> => u instanceof Set,
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'must be a comma-separated list of event types');
    const among = `event types among ${EVENT_TYPES.join(', ')}`;
    const names = u.split(',');
    if (names.every((s) => s === ''))
      return t.failure(u, c, `names no event type: leave \`type\` out for every type, or name ${among}`);
    if (names.includes(''))
      return t.failure(
        u,
        c,
        'holds an empty item (a comma at its start or end, or two in a row): each item must be one of ' +
          `the ${among}`,
      );
    const bad = names.filter((n) => !(EVENT_TYPES as readonly string[]).includes(n));
    if (bad.length > 0) return t.failure(u, c, `must name ${among} (unknown: ${bad.join(', ')})`);
    return t.success(new Set(names));
  },
  (s) => [...s].join(','),
);

/**
 * `after` of GET /agents: any id's characters (an agent registered before ids refused "." and ".."
 * may have one, and its page's `next` names it), any string of them up to an id's length.
 */
const AgentIdBound = withMessage(
  t.refinement(t.string, (s) => s.length <= 128 && ID_PATTERN.test(s), 'AgentIdBound'),
  '1..128 characters of [A-Za-z0-9._:-]',
);
const AgentListQuery = strict(
  {},
  {
    state: AgentStateName,
    skill: Skill,
    limit: IntString('limit', 1, 10_000),
    after: AgentIdBound,
    minPosition: Position,
  },
  'AgentListQuery',
);
/** `serviceLevelMs`: the service level's threshold (default 20 s), 1 ms .. 1 day. */
const StatsQuery = strict(
  {},
  { serviceLevelMs: IntString('serviceLevelMs', 1, 86_400_000), minPosition: Position },
  'StatsQuery',
);
const EventsQuery = strict(
  {},
  { after: AfterPosition, limit: IntString('limit', 1, 1000), type: TypeList, minPosition: Position },
  'EventsQuery',
);

/**
 * The workspace's settings as the projector keeps them: field `settings` of the meta hash, JSON of
 * its fields (written by ChangeSettings); absent, or a field missing, takes its default.
 */
export async function readSettings(redis: RedisClient, ws: string): Promise<Settings> {
  const text = await redis.hget(workspaceKeys(ws).meta, 'settings');
  if (text === null) return DEFAULT_SETTINGS;
  return settingsWithDefaults(JSON.parse(text) as Partial<Settings>);
}

/** Queries read the projections; `minPosition` makes them wait (bounded) for a client's own writes. */
export async function queryRoutes(app: FastifyInstance): Promise<void> {
  const { redis } = app.deps;
  const history = app.deps.history ?? streamHistory(redis);

  const awaitPosition = positionWaiter(app);

  app.get('/agents/:id', async (req) => {
    const { ws, id } = idParams(req.params);
    const q = decodeOr400(MinPositionQuery, req.query, 'query');
    await awaitPosition(ws, q.minPosition);
    const a = await readAgent(redis, ws, id);
    if (!a)
      throw new ProblemError(
        problem(404, 'agent-not-found', 'Agent not found', `No agent "${id}" in workspace "${ws}".`),
      );
    return a;
  });

  app.get('/agents', async (req) => {
    const ws = workspaceOf(req.params);
    const q = decodeOr400(AgentListQuery, req.query, 'query');
    const byAvailability = q.state === 'available' && q.skill !== undefined;
    if (byAvailability && q.after !== undefined)
      throw new ProblemError(
        problem(
          400,
          'invalid-request',
          'Invalid request',
          'The query has a bad field: after is not taken with state=available and skill (that listing is in longest-available order, one page, not by id): leave it out, or list by id without them. Nothing was changed.',
          { errors: [{ path: 'after', message: 'is not taken with state=available and skill' }] },
        ),
      );
    await awaitPosition(ws, q.minPosition);
    const page = await listAgents(redis, ws, {
      ...(q.state !== undefined ? { state: q.state } : {}),
      ...(q.skill !== undefined ? { skill: q.skill } : {}),
      ...(q.after !== undefined ? { after: q.after } : {}),
      limit: q.limit ? Number(q.limit) : 1000,
      ...(byAvailability ? { channels: (await readSettings(redis, ws)).channels } : {}),
    });
    // The longest-available listing is one page: no `next` (docs/API.md).
    return byAvailability ? { agents: page.agents } : page;
  });

  app.get('/contacts/:id', async (req) => {
    const { ws, id } = idParams(req.params);
    const q = decodeOr400(MinPositionQuery, req.query, 'query');
    await awaitPosition(ws, q.minPosition);
    // The document and, while it is queued, where it stands in its queue and the wait its queue's
    // service rate gives it: read as one snapshot, so the place always goes with the state answered.
    // Waits are measured by Redis's clock, which timed the arrivals and decisions, not this host's.
    const read = await contactWithPlace(
      redis,
      ws,
      id,
      await redisClockNow(redis, workspaceKeys(ws).contacts),
    );
    const c = read && publicDocument<ContactDocument>(read.text);
    if (!read || !c)
      throw new ProblemError(
        problem(
          404,
          'contact-not-found',
          'Contact not found',
          // A finished contact's document is forgotten after CONTACT_RETENTION (docs/API.md,
          // "Finished contacts"): a client that read it before learns why it is gone.
          `No contact "${id}" in workspace "${ws}": never queued, or finished and forgotten since (CONTACT_RETENTION after it finished); a forgotten contact's history stays in GET /events.`,
        ),
      );
    // An agent key was let in for a document naming its agent (auth.ts); the one answered is read
    // after the wait for minPosition, and may have left that agent meanwhile (an offer rejected).
    const p = req.principal;
    if (p?.role === 'agent' && c.agentId !== p.agentId)
      throw new ProblemError(notItsContact(id, p.agentId ?? ''));
    return read.place ? { ...c, ...read.place } : c;
  });

  app.get('/settings', async (req) => {
    const ws = workspaceOf(req.params);
    const q = decodeOr400(MinPositionQuery, req.query, 'query');
    await awaitPosition(ws, q.minPosition);
    return readSettings(redis, ws);
  });

  app.get('/stats', async (req) => {
    const ws = workspaceOf(req.params);
    const q = decodeOr400(StatsQuery, req.query, 'query');
    await awaitPosition(ws, q.minPosition);
    return readStats(
      redis,
      ws,
      await redisClockNow(redis, workspaceKeys(ws).contacts),
      q.serviceLevelMs !== undefined ? Number(q.serviceLevelMs) : undefined,
    );
  });

  app.get('/events', async (req) => {
    const ws = workspaceOf(req.params);
    const q = decodeOr400(EventsQuery, req.query, 'query');
    await awaitPosition(ws, q.minPosition);
    const page = await readEvents(redis, ws, {
      ...(q.after !== undefined ? { after: q.after } : {}),
      limit: q.limit ? Number(q.limit) : 100,
      ...(q.type !== undefined ? { types: q.type } : {}),
      history,
      // An entry that is no event is passed over, as the live feed does (docs/API.md).
      onMalformed: (position, why) =>
        req.log.warn(
          { workspace: ws, position, err: why.message },
          `event stream entry is not an event; skipped. ${FOREIGN_EVENT}`,
        ),
    });
    // Nothing after `after`: the end of the log, or a position past it, which names no event (a
    // Redis that lost its data, or another one): refused as the live feed refuses it, not answered
    // as a reader that is done (whose `after` would then wait for events appended before it).
    if (page.events.length === 0 && page.next === null && q.after !== undefined && q.after !== '0-0') {
      const end = await lastEventPosition(redis, ws);
      if (comparePositions(q.after, end ?? '0-0') > 0)
        throw new ProblemError(
          positionAhead(
            `after=${q.after} is after the last event of workspace "${ws}" (${end ?? 'none yet'}): a Redis that lost its data, or another one. Page from lastPosition (or from 0-0); the events before it are the log's, not the ones your position came from.`,
            end ?? null,
            'after',
          ),
        );
    }
    return page;
  });
}
