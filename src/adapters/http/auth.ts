import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { notItsContactDetail } from '../../domain/model.ts';
import { isId } from '../../domain/values.ts';
import { ApiKeyVerifier, consumeWsTicket } from '../redis/api-keys.ts';
import { commandAt, recordedOutcome } from '../redis/command-log.ts';
import { workspaceKeys } from '../redis/keys.ts';
import { readContact } from '../redis/projection-reads.ts';
import { redisClockNow } from '../redis/redis-clock.ts';
import { IdempotencyKey, workspaceOf } from './params.ts';
import type { Principal, Role } from './principal.ts';
import {
  givenTimes,
  type Problem,
  ProblemError,
  problem,
  sendProblem,
  sendUpgradeRequired,
} from './problem.ts';

/**
 * Who may call what: the one table of docs/SECURITY.md ("API keys and roles"), enforced by the
 * hooks below for every route under /v1/workspaces/{ws}. A route missing here is for admins only.
 * Routes outside /v1/workspaces (/health, /status, /metrics, /openapi.json) are open.
 *
 * `own` narrows the `agent` role to its own agent: `path` the agent id in the path, `contact` a
 * contact offered or assigned to it, `body` both (the `agentId` of the body its agent, and the
 * contact of the path offered or assigned to it), `live` the live feed filtered to it (`agent=`
 * forced; another agent is refused).
 */
export type Own = 'path' | 'body' | 'contact' | 'live';

declare module 'fastify' {
  interface FastifyInstance {
    /** With keys on: whether a key is still valid (cached as every check), for open live feeds. */
    apiKeyActive?: (keyId: string) => Promise<boolean>;
  }
}
export interface Access {
  readonly roles: readonly Role[];
  readonly own?: Own;
}

const ALL: readonly Role[] = ['admin', 'integration', 'supervisor', 'auditor', 'agent'];
const READERS: readonly Role[] = ['admin', 'integration', 'supervisor', 'auditor'];
const WS = '/v1/workspaces/:ws';

export const ROUTE_ACCESS: Readonly<Record<string, Access>> = {
  [`POST ${WS}/agents`]: { roles: ['admin'] },
  [`PATCH ${WS}/agents/:id`]: { roles: ['admin'] },
  [`DELETE ${WS}/agents/:id`]: { roles: ['admin'] },
  [`POST ${WS}/agents/:id/state`]: { roles: ['admin', 'supervisor', 'agent'], own: 'path' },
  [`POST ${WS}/contacts`]: { roles: ['admin', 'integration'] },
  [`POST ${WS}/contacts/:id/abandon`]: { roles: ['admin', 'integration'] },
  [`POST ${WS}/contacts/:id/transfer`]: { roles: ['admin', 'integration'] },
  [`POST ${WS}/contacts/:id/complete`]: { roles: ['admin', 'agent'], own: 'contact' },
  [`POST ${WS}/contacts/:id/accept`]: { roles: ['admin', 'agent'], own: 'body' },
  [`POST ${WS}/contacts/:id/reject`]: { roles: ['admin', 'agent'], own: 'body' },
  [`PUT ${WS}/settings`]: { roles: ['admin'] },
  [`GET ${WS}/agents`]: { roles: READERS },
  [`GET ${WS}/agents/:id`]: { roles: ALL, own: 'path' },
  [`GET ${WS}/contacts/:id`]: { roles: ALL, own: 'contact' },
  [`GET ${WS}/settings`]: { roles: READERS },
  [`GET ${WS}/stats`]: { roles: READERS },
  [`GET ${WS}/stats/intervals`]: { roles: READERS },
  [`GET ${WS}/events`]: { roles: READERS },
  [`GET ${WS}/state`]: { roles: READERS },
  [`GET ${WS}/events/live`]: { roles: ALL, own: 'live' },
  [`POST ${WS}/ws-tickets`]: { roles: ALL },
  [`GET ${WS}/keys/me`]: { roles: ALL },
  [`POST ${WS}/keys`]: { roles: ['admin'] },
  [`GET ${WS}/keys`]: { roles: ['admin'] },
  [`GET ${WS}/keys/:keyId`]: { roles: ['admin'] },
  [`DELETE ${WS}/keys/:keyId`]: { roles: ['admin'] },
};

const ADMIN_ONLY: Access = { roles: ['admin'] };

/** The access rule of a route (HEAD as its GET); undefined for the open routes. */
export function accessOf(method: string, url: string): Access | undefined {
  if (url !== WS && !url.startsWith(`${WS}/`)) return undefined;
  const m = method === 'HEAD' ? 'GET' : method;
  return ROUTE_ACCESS[`${m} ${url}`] ?? ADMIN_ONLY;
}

export const unauthorized = (detail: string, advice = 'Send Authorization: Bearer <API key>.'): Problem =>
  problem(401, 'unauthorized', 'Unauthorized', `${detail} ${advice}`);

export const forbidden = (detail: string): Problem => problem(403, 'forbidden', 'Forbidden', detail);

/**
 * The 403 of an `agent` key for a contact whose document does not name its agent: checked when the
 * request arrives (below) and again on the document a read answers (queries.ts: a `minPosition`
 * read answers the document once that position is applied, which may have left the agent).
 */
export const notItsContact = (contactId: string, agentId: string): Problem =>
  forbidden(notItsContactDetail(contactId, agentId));

/** The 400 of a feed's `ticket` query parameter given wrong; nothing is read or spent. */
const badTicketField = (message: string, why = ''): Problem =>
  problem(
    400,
    'invalid-request',
    'Invalid request',
    `The query has a bad field: ticket ${message}${why}. Nothing was changed.`,
    { errors: [{ path: 'ticket', message }] },
  );

/**
 * The error code of a 401's challenge (RFC 6750, section 3.1): none when the request carried no
 * Bearer credentials (no header, another scheme), `invalid_request` for a Bearer header that is not
 * one token, `invalid_token` for a token (or a ticket) that is not a valid key.
 */
type ChallengeError = 'invalid_request' | 'invalid_token';

/** The 400 of a path whose `ws` is no workspace name (params.ts), or undefined when it is one. */
function badWorkspaceName(params: unknown): Problem | undefined {
  try {
    workspaceOf(params);
    return undefined;
  } catch (err) {
    if (err instanceof ProblemError) return err.problem;
    throw err;
  }
}

function refuse(req: FastifyRequest, reply: FastifyReply, p: Problem, error?: ChallengeError): FastifyReply {
  if (p.status === 401)
    reply.header(
      'www-authenticate',
      error ? `Bearer realm="switchboard", error="${error}"` : 'Bearer realm="switchboard"',
    );
  // An upgrade refused: the socket is no HTTP connection any more once answered (as server.ts does).
  if (req.ws) reply.header('connection', 'close');
  return sendProblem(reply, p);
}

/**
 * Installs authentication (onRequest: the key, its workspace, its role) and the agent role's
 * narrowing that needs the body or a document (preHandler). Both answer before any handler runs,
 * so a refused request appends nothing. `cacheMs`: how long a key lookup is reused (revocation
 * reaches every instance within it).
 */
export function installAuth(app: FastifyInstance, opts: { cacheMs?: number } = {}): void {
  const { redis } = app.deps;
  const verifier = new ApiKeyVerifier(redis, opts.cacheMs ?? 500);
  app.decorate('apiKeyActive', async (keyId: string) => (await verifier.active(keyId)) !== undefined);

  app.addHook('onRequest', async (req, reply) => {
    const url = req.routeOptions.url;
    if (url === undefined) return; // no route: the 404 answers
    const access = accessOf(req.method, url);
    if (!access) return;
    const ws = String((req.params as { ws?: unknown }).ws ?? '');
    const header = req.headers.authorization;
    let principal: Principal | undefined;
    // A feed's upgrade with a key and a ticket: the key was taken and the ticket left unused, a
    // one-time credential standing in a URL (a log, a proxy's) that could still open a feed. One
    // credential per request (RFC 6750, section 2): a 400 naming the ticket, which is not spent.
    // (A ticket given twice is told so by the route's query check, as any parameter is.)
    if (
      header !== undefined &&
      access.own === 'live' &&
      typeof (req.query as { ticket?: unknown }).ticket === 'string'
    ) {
      return refuse(
        req,
        reply,
        badTicketField(
          'is given with an Authorization header: send one or the other',
          ' (a ticket is for a client that cannot send the header)',
        ),
      );
    }
    if (header !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(header);
      if (!m)
        return refuse(
          req,
          reply,
          unauthorized('The Authorization header is not "Bearer <key>".'),
          // Another scheme (Basic, ...) carries no Bearer credentials: a challenge with no error.
          /^Bearer(?:\s|$)/i.test(header) ? 'invalid_request' : undefined,
        );
      const checked = await verifier.check(m[1]!, ws);
      // A known key and a name no workspace can have (empty, as a doubled slash makes it; a
      // character names refuse): the caller typed a bad name, a 400 naming `ws`, as with AUTH=off,
      // rather than a 403 sending it to look for the key of a workspace that cannot exist.
      if (!checked.ok && checked.status === 403) {
        const named = badWorkspaceName(req.params);
        if (named) return refuse(req, reply, named);
      }
      if (!checked.ok)
        return refuse(
          req,
          reply,
          checked.status === 401 ? unauthorized(checked.reason, checked.advice) : forbidden(checked.reason),
          'invalid_token',
        );
      const k = checked.key;
      principal = {
        keyId: k.keyId,
        workspace: k.workspace,
        role: k.role,
        ...(k.agentId !== undefined ? { agentId: k.agentId } : {}),
      };
    } else {
      const ticket = (req.query as { ticket?: unknown }).ticket;
      // Tickets given twice (or more): the client has credentials, the query is at fault. A 400
      // naming the field, as the route's query check says it; neither ticket is read, nor spent.
      if (access.own === 'live' && Array.isArray(ticket)) {
        return refuse(req, reply, badTicketField(givenTimes(ticket.length)));
      }
      if (access.own !== 'live' || typeof ticket !== 'string')
        return refuse(req, reply, unauthorized('No API key was given.'));
      // A ticket opens an upgrade only: a plain GET (a link preview, a proxy that dropped the
      // Upgrade header) is told so and leaves the ticket unused, for the upgrade it was bought for.
      if (!req.ws)
        return sendUpgradeRequired(
          reply,
          'Open this route as a WebSocket (Upgrade: websocket); a ticket is used by the upgrade only.',
        );
      const holder = await consumeWsTicket(redis, ws, ticket);
      const key = holder && (await verifier.active(holder.keyId));
      if (!holder || !key)
        return refuse(
          req,
          reply,
          unauthorized(
            'The ticket is not known: expired, already used, its key revoked, or made for another workspace (a ticket opens a feed of the workspace it was made in).',
            // A ticket is how a client that cannot send a header on an upgrade (a browser) opens a
            // feed: the header would not help it; a new ticket does.
            'Take a new ticket for each upgrade (POST /ws-tickets with the API key; valid 30 s, used once), or send Authorization: Bearer <API key> where the client can.',
          ),
          'invalid_token',
        );
      principal = {
        keyId: holder.keyId,
        workspace: holder.workspace,
        role: holder.role,
        ...(holder.agentId !== undefined ? { agentId: holder.agentId } : {}),
        byTicket: true,
      };
    }
    req.principal = principal;
    if (!access.roles.includes(principal.role))
      return refuse(
        req,
        reply,
        forbidden(
          `Role ${principal.role} may not ${req.method} ${url.replace(WS, `/v1/workspaces/${ws}`)}; it is for ${access.roles.join(', ')}.`,
        ),
      );
    if (principal.role !== 'agent') return;
    const agentId = principal.agentId ?? '';
    if (access.own === 'path') {
      const id = (req.params as { id?: unknown }).id;
      if (id !== agentId)
        return refuse(
          req,
          reply,
          forbidden(`This key acts for agent "${agentId}" only, not "${String(id)}".`),
        );
    } else if (access.own === 'live') {
      const query = req.query as { agent?: unknown };
      // Not one value (given twice): left for the route's query check, a 400 naming the field.
      if (query.agent !== undefined && typeof query.agent !== 'string') return;
      if (query.agent !== undefined && query.agent !== agentId)
        return refuse(
          req,
          reply,
          forbidden(`This key receives agent "${agentId}"'s events only; agent= must be it or left out.`),
        );
      // The feed of an agent key is always filtered to its agent (live.ts reads the query after this).
      query.agent = agentId;
    }
  });

  app.addHook('preHandler', async (req, reply) => {
    const p = req.principal;
    if (p?.role !== 'agent' || req.routeOptions.url === undefined) return;
    const own = accessOf(req.method, req.routeOptions.url)?.own;
    const agentId = p.agentId ?? '';
    if (own === 'body') {
      const named = (req.body as { agentId?: unknown } | undefined)?.agentId;
      // A body without a string agentId is the handler's 400 to answer (once the contact is its own).
      if (typeof named === 'string' && named !== agentId)
        return refuse(
          req,
          reply,
          forbidden(`This key acts for agent "${agentId}" only; agentId must be "${agentId}".`),
        );
    }
    // An offer's answer (accept, reject) is held to the contact too, as `complete` and a read are:
    // naming its own agent, an agent key could otherwise answer any contact id and learn from the
    // projector's refusal whether it exists and its state (409 "is queued", "offer-not-yours", 404),
    // which a read of it does not tell (403), each refusal appended. A contact that does not name
    // the key's agent, or no contact, is the same 403; the offer moving between this check and the
    // command's turn is the projector's 409, as before.
    if (own === 'body' || own === 'contact') {
      const id = (req.params as { id?: unknown }).id;
      if (!isId(id)) return; // the handler's 400
      const contact = await readContact(redis, p.workspace, id);
      if (contact?.agentId !== agentId && !(await ownRepeat(req, p.workspace, id, agentId)))
        return refuse(req, reply, notItsContact(id, agentId));
    }
  });

  /**
   * Whether a command refused by the check above is the repeat of one this agent sent with the
   * same Idempotency-Key about this contact. The contact may have left the agent since (a completed
   * contact forgotten after CONTACT_RETENTION, its id queued again for another agent; an offer it
   * rejected back in the queue), and the repeat answers the first outcome as every repeat does (the
   * command path appends nothing for a key seen before, and answers a 422 for a key first used for
   * another request), not a 403. The first command is the agent's when its recorded outcome names
   * the contact and the agent (a 200; a reject's names the agent last among `excludedAgents`), or
   * when its entry, still in the command stream, is this agent's completion of it (an agent key's
   * `complete` carries its agent) or an agent key's accept or reject of it naming this agent (an
   * agent key names its own): a refusal (`409 contact-not-assigned`, `contact-not-offered`, a `404`
   * once forgotten) or an outcome not recorded yet is the agent's own too.
   */
  async function ownRepeat(req: FastifyRequest, ws: string, id: string, agentId: string): Promise<boolean> {
    const key = req.headers['idempotency-key'];
    if (req.method !== 'POST' || !IdempotencyKey.is(key)) return false;
    // A record that is not JSON is none; Redis failing is the request's 503, as for any read.
    const outcome = await recordedOutcome(redis, ws, key).catch((err: unknown) => {
      if (err instanceof SyntaxError) return null;
      throw err;
    });
    if (outcome?.status === 200 && outcome.body?.id === id) {
      if (outcome.body.agentId === agentId) return true;
      // A reject's outcome is the contact back in the queue: its agent is the last one excluded.
      const excluded = outcome.body.excludedAgents;
      const reject = req.routeOptions.url === `${WS}/contacts/:id/reject`;
      if (reject && outcome.body.state === 'queued' && Array.isArray(excluded) && excluded.at(-1) === agentId)
        return true;
    }
    const first = await firstCommand(ws, key);
    if (!first || first.command.contactId !== id || first.command.agentId !== agentId) return false;
    const type = first.command.type;
    if (type === 'CompleteContact') return true;
    return (
      (type === 'AcceptOffer' || type === 'RejectOffer') && (await roleAt(ws, first.position)) === 'agent'
    );
  }

  /** The command an Idempotency-Key was first used for, and its position, while its record lives and its entry is in the stream. */
  async function firstCommand(
    ws: string,
    key: string,
  ): Promise<
    { position: string; command: { type?: unknown; contactId?: unknown; agentId?: unknown } } | undefined
  > {
    const k = workspaceKeys(ws);
    const [record, expires, now] = await Promise.all([
      redis.hget(k.idempotency, key),
      redis.zscore(k.idempotencyExpiry, key),
      // The expiry is scored by the append step, by the clock of the workspace's node.
      redisClockNow(redis, k.idempotencyExpiry),
    ]);
    if (!record || expires === null || Number(expires) <= now) return undefined;
    let position: unknown;
    try {
      // A record something else wrote (not JSON, JSON null, no position) names no command.
      position = (JSON.parse(record) as { position?: unknown } | null)?.position;
    } catch {
      return undefined;
    }
    if (typeof position !== 'string') return undefined;
    const command = await commandAt(redis, ws, position);
    return command && { position, command };
  }

  /** The role of the key that appended the command entry at `position` (its `role` field), if any. */
  async function roleAt(ws: string, position: string): Promise<string | undefined> {
    const [entry] = (await redis.xrange(workspaceKeys(ws).commands, position, position)) as [
      string,
      string[],
    ][];
    const fields = entry?.[1] ?? [];
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'role') return fields[i + 1];
    return undefined;
  }
}
