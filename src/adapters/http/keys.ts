import type { FastifyInstance } from 'fastify';
import * as t from 'io-ts';
import { strict } from '../../domain/strict.ts';
import {
  AfterPosition,
  comparePositions,
  Id,
  OneLineName,
  WorkspaceId,
  withMessage,
} from '../../domain/values.ts';
import {
  API_KEY_ROLES,
  type ApiKeyRole,
  createApiKey,
  getApiKey,
  issueWsTicket,
  listApiKeys,
  revokeApiKey,
} from '../redis/api-keys.ts';
import { lastEventPosition } from '../redis/event-log.ts';
import { NoQuery, workspaceOf } from './params.ts';
import { decodeOr400, ProblemError, positionAhead, problem } from './problem.ts';

const Role = t.keyof(
  Object.fromEntries(API_KEY_ROLES.map((r) => [r, null])) as Record<ApiKeyRole, null>,
  API_KEY_ROLES.join(' | '),
);
/**
 * A key's name: a name (1..200 characters of well-formed Unicode) on one line, without control
 * characters nor bidirectional controls (the rule an agent's name follows: OneLineName).
 */
const NewKeyBody = strict({ role: Role }, { agentId: Id, name: OneLineName }, 'NewKey');
const KeyParams = t.type({
  ws: WorkspaceId,
  keyId: withMessage(
    t.refinement(t.string, (s) => /^[0-9a-f]{16}$/.test(s), 'KeyId'),
    '16 lowercase hexadecimal digits',
  ),
});

/** What POST /ws-tickets reads: where the feed will open from, if the caller says. */
const TicketBody = strict({}, { after: AfterPosition }, 'TicketBody');

/** These routes read no query, and only POST /keys and /ws-tickets a body: anything else is named in a 400. */
function noBody(body: unknown): void {
  if (body === undefined || body === null) return;
  if (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return;
  throw new ProblemError(
    problem(400, 'invalid-request', 'Invalid request', 'This route takes no body; send none (or {}).', {
      errors: [{ path: '(body)', message: 'must be empty' }],
    }),
  );
}

/**
 * The workspace's API keys (admins only: src/adapters/http/auth.ts) and the one-time tickets that
 * let a browser open the live feed. A key's secret is in the answer of its creation, and nowhere else.
 */
export async function keyRoutes(app: FastifyInstance): Promise<void> {
  const { redis } = app.deps;

  app.post('/keys', async (req, reply) => {
    const ws = workspaceOf(req.params);
    decodeOr400(NoQuery, req.query, 'query');
    const body = decodeOr400(NewKeyBody, req.body ?? {}, 'body');
    if (body.role === 'agent' && body.agentId === undefined)
      throw new ProblemError(
        problem(
          400,
          'invalid-request',
          'Invalid request',
          'A key of role agent names its agent: give agentId.',
          {
            errors: [{ path: 'agentId', message: 'is required for role agent' }],
          },
        ),
      );
    if (body.role !== 'agent' && body.agentId !== undefined)
      throw new ProblemError(
        problem(400, 'invalid-request', 'Invalid request', 'Only a key of role agent names an agent.', {
          errors: [{ path: 'agentId', message: 'is only for role agent' }],
        }),
      );
    const { key, info } = await createApiKey(redis, { workspace: ws, ...body });
    req.log.info({ keyId: info.keyId, role: info.role, by: req.principal?.keyId ?? null }, 'API key created');
    return reply
      .code(201)
      .header('location', `${req.url.split('?')[0]!.replace(/\/$/, '')}/${info.keyId}`)
      .header('cache-control', 'no-store')
      .send({ ...info, key });
  });

  app.get('/keys', async (req) => {
    const ws = workspaceOf(req.params);
    decodeOr400(NoQuery, req.query, 'query');
    return { keys: await listApiKeys(redis, ws) };
  });

  const notFound = (ws: string, keyId: string) =>
    new ProblemError(
      problem(404, 'key-not-found', 'API key not found', `No API key "${keyId}" in workspace "${ws}".`),
    );

  // The key POST /keys names in its Location, revoked or not; never its secret.
  app.get('/keys/:keyId', async (req, reply) => {
    const { ws, keyId } = decodeOr400(KeyParams, req.params, 'path');
    decodeOr400(NoQuery, req.query, 'query');
    const info = await getApiKey(redis, ws, keyId);
    if (!info) throw notFound(ws, keyId);
    return reply.header('cache-control', 'no-store').send(info);
  });

  app.delete('/keys/:keyId', async (req) => {
    const { ws, keyId } = decodeOr400(KeyParams, req.params, 'path');
    decodeOr400(NoQuery, req.query, 'query');
    noBody(req.body);
    const revoked = await revokeApiKey(redis, ws, keyId);
    if (!revoked) throw notFound(ws, keyId);
    req.log.info({ keyId, by: req.principal?.keyId ?? null }, 'API key revoked');
    return revoked;
  });

  // Who the caller's key is (every role): how a page signed in with a key learns its role and,
  // for an agent key, the agent it acts for. With authentication off, the anonymous admin.
  app.get('/keys/me', async (req) => {
    const ws = workspaceOf(req.params);
    decodeOr400(NoQuery, req.query, 'query');
    const p = req.principal;
    if (!p) return { keyId: 'anonymous', workspace: ws, role: 'admin' };
    return {
      keyId: p.keyId,
      workspace: ws,
      role: p.role,
      ...(p.agentId !== undefined ? { agentId: p.agentId } : {}),
    };
  });

  // A ticket carries the caller's key: its role and agent, in this workspace, for 30 s and one use.
  // `after`: where the feed will open from, checked here, where a browser can read the refusal (of
  // a refused upgrade it sees only a failed socket): past the log's last event is a 409 naming it.
  app.post('/ws-tickets', async (req, reply) => {
    const ws = workspaceOf(req.params);
    decodeOr400(NoQuery, req.query, 'query');
    const { after } =
      req.body === undefined || req.body === null ? {} : decodeOr400(TicketBody, req.body, 'body');
    if (after !== undefined && after !== '0-0') {
      const end = await lastEventPosition(redis, ws);
      if (comparePositions(after, end ?? '0-0') > 0)
        throw new ProblemError(
          positionAhead(
            `after=${after} is after the last event of workspace "${ws}" (${end ?? 'none yet'}): a Redis that lost its data, or another one. Open the feed from lastPosition (or without after, from the log's end); the events before it are the log's, not the ones your position came from.`,
            end ?? null,
          ),
        );
    }
    const p = req.principal;
    const issued = await issueWsTicket(
      redis,
      p
        ? {
            keyId: p.keyId,
            workspace: ws,
            role: p.role,
            ...(p.agentId !== undefined ? { agentId: p.agentId } : {}),
          }
        : // Authentication off: the live feed asks for no ticket; one is issued all the same.
          { keyId: 'anonymous', workspace: ws, role: 'admin' },
    );
    return reply.code(201).header('cache-control', 'no-store').send(issued);
  });
}
