import type { FastifyInstance } from 'fastify';
import { EVENT_TYPES } from '../../domain/events.ts';
import { MAX_ATTRIBUTES_DEPTH, MAX_POSITION, MAX_POSITION_PART } from '../../domain/values.ts';
import { PROBLEM_TYPES } from './problem.ts';

/** The OpenAPI 3.1 description of docs/API.md, served at /openapi.json. */
/** An id: not "." nor "..", dot segments in a URL path. */
const id = { type: 'string', pattern: '^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$' };
const skillName = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' };
/** Skills as routing knows them (the state at a position): a skill, or one with a level ("Billing#3"). */
const skills = {
  type: 'array',
  minItems: 1,
  items: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}(#[2-5])?$' },
  description: 'routing skills: "<skill>#<n>" is that skill at level n (or above, for a contact)',
};
const leveled = (field: 'level' | 'minLevel', description: string) => ({
  type: 'array',
  minItems: 1,
  maxItems: 32,
  items: {
    oneOf: [
      skillName,
      {
        type: 'object',
        required: ['name', field],
        additionalProperties: false,
        properties: { name: skillName, [field]: { type: 'integer', minimum: 1, maximum: 5 } },
      },
    ],
  },
  description,
});
const agentSkills = leveled(
  'level',
  'skills the agent holds: a name (level 1), or {name, level} with a proficiency 1..5',
);
const requirements = leveled(
  'minLevel',
  'skills the contact needs: a name (any level), or {name, minLevel}: an agent at that level or above',
);
const position = {
  type: 'string',
  pattern: '^\\d{1,20}-\\d{1,20}$',
  description: `<ms>-<seq>, each part an integer of at most ${MAX_POSITION_PART} (a Redis stream id)`,
  examples: ['1732200000000-0'],
};
const after = {
  name: 'after',
  in: 'query',
  schema: { ...position, description: `${position.description}, below ${MAX_POSITION}` },
};
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const header = (description: string) => ({ description, schema: { type: 'string' } });
/** The headers a refusal of a status carries (docs/API.md): the challenge of a 401, when to retry. */
const PROBLEM_HEADERS: Readonly<Record<number, Record<string, ReturnType<typeof header>>>> = {
  401: { 'WWW-Authenticate': header('Bearer realm="switchboard" (with error="..." for a key refused)') },
  429: {
    'Retry-After': header(
      'seconds to wait before sending again (rate-limited: retryAfterMs says it in ms; too-many-websockets: 5)',
    ),
  },
  503: {
    'Retry-After': header(
      'seconds to wait before asking again, when the instance knows (redis-unavailable, not-replicated, shutting-down: 1; too-many-connections: 5)',
    ),
  },
};
const problems = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [
      String(c),
      {
        description: 'problem',
        ...(PROBLEM_HEADERS[c] ? { headers: PROBLEM_HEADERS[c] } : {}),
        content: { 'application/problem+json': { schema: ref('Problem') } },
      },
    ]),
  );
const wsParam = {
  name: 'ws',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
};
const idParam = { name: 'id', in: 'path', required: true, schema: id };
const name = { type: 'string', minLength: 1, maxLength: 200, description: 'well-formed Unicode' };
/**
 * A name a client gives (an agent's, a key's): one line, without control characters (C0, DEL, C1),
 * line or paragraph separators, nor bidirectional controls (src/domain/values.ts, OneLineName).
 */
const oneLineName = {
  ...name,
  pattern: '^[^\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u2069]*$',
  description:
    'well-formed Unicode on one line: no control characters (line breaks, tabs, escapes) nor bidirectional embeddings, overrides or isolates (U+202A..U+202E, U+2066..U+2069)',
};
const idem = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    '1..200 visible ASCII characters (no spaces), given once: two Idempotency-Key headers are a 400 naming it',
  schema: { type: 'string', maxLength: 200 },
};
const minPosition = { name: 'minPosition', in: 'query', required: false, schema: position };
/** `type=A,B` of the history and the live feed (TypeList in queries.ts): no empty item, none unknown. */
const eventTypeAlternatives = `(${EVENT_TYPES.join('|')})`;
const typeParam = {
  name: 'type',
  in: 'query',
  schema: {
    type: 'string',
    pattern: `^${eventTypeAlternatives}(,${eventTypeAlternatives})*$`,
    description: `comma-separated, each item one of ${EVENT_TYPES.join(', ')}; an empty item ("A,,B", ",A", "A,") or an empty list ("type=") is a 400 naming \`type\` (leave it out for every type)`,
  },
};
const ms = (min: number, max: number, description: string) => ({
  type: 'integer',
  minimum: min,
  maximum: max,
  description,
});
const DAY_MS = 86_400_000;
const wrapUpMs = ms(0, DAY_MS, 'after-contact work after each completion, ms (the agent takes no new work)');
const maxWaitMs = ms(1, 7 * DAY_MS, 'the longest the contact waits queued, ms, before it leaves as expired');
const channel = { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$' };
const serviceLevelMs = {
  name: 'serviceLevelMs',
  in: 'query',
  schema: { type: 'integer', minimum: 1, maximum: 86_400_000, default: 20_000 },
  description:
    "the service level's threshold: the share of decisions made within this long of the contact's arrival",
};
const capacity = {
  oneOf: [
    { type: 'integer', minimum: 1, maximum: 100 },
    {
      type: 'object',
      minProperties: 1,
      maxProperties: 16,
      propertyNames: channel,
      additionalProperties: { type: 'integer', minimum: 1, maximum: 100 },
    },
  ],
  description:
    'contacts at once on any channel (default 1), or per channel such as {"voice": 1, "chat": 3} (each a channel the workspace declares)',
};
const presence = { enum: ['available', 'away', 'offline'] };
const agentSelection = { enum: ['longest-available', 'most-skilled', 'least-occupied'] };
const agentStates = ['offline', 'available', 'away', 'busy', 'wrapup', 'reserved'];

/**
 * What any route may answer before its handler (edge.ts, limits.ts, server.ts, json-body.ts): a bad
 * Host (bad-request), a request that did not arrive in time (request-timeout: HEADERS_TIMEOUT_MS,
 * REQUEST_TIMEOUT_MS), a URL or headers too large, a body in a content coding (unsupported-encoding,
 * whatever the method), an Expect other than 100-continue (expectation-failed), past the rate
 * limit (every route but /health and /metrics), and the instance stopping (shutting-down).
 */
const EDGE_PROBLEMS = problems(400, 408, 414, 415, 417, 429, 431, 503);
/** /health and /metrics: the same, with no rate limit. */
const UNLIMITED_EDGE_PROBLEMS = problems(400, 408, 414, 415, 417, 431, 503);

/** A file the pages or /docs serve: its media type and what it is. */
function fileOp(summary: string, media: string) {
  return {
    get: {
      security: [],
      summary,
      responses: {
        '200': { description: summary, content: { [media]: { schema: { type: 'string' } } } },
        '304': { description: 'not modified (If-None-Match named its ETag)' },
        ...EDGE_PROBLEMS,
      },
    },
  };
}

function pagePaths() {
  const html = 'text/html';
  const js = 'text/javascript';
  const css = 'text/css';
  const docsOp = (summary: string, media: string) => {
    const op = fileOp(summary, media);
    const { '304': _, ...responses } = op.get.responses;
    return { get: { ...op.get, responses } };
  };
  return {
    '/': fileOp('The wallboard: queues, waits, agents by state and assignments, live', html),
    '/agent': fileOp('The agent desktop: presence, offers, accept or reject, complete, wrap-up', html),
    '/ui/common.js': fileOp("The pages' shared script", js),
    '/ui/wallboard.js': fileOp("The wallboard's script", js),
    '/ui/agent.js': fileOp("The agent desktop's script", js),
    '/ui/style.css': fileOp("The pages' style sheet", css),
    '/ui/vendor/uplot.js': fileOp('uPlot, the charting library of the wallboard', js),
    '/ui/vendor/uplot.css': fileOp("uPlot's style sheet", css),
    '/docs': docsOp('Swagger UI for this document (/openapi.json)', html),
    '/docs/init.js': docsOp("Swagger UI's start script, pointed at /openapi.json", js),
    '/docs/swagger-ui-bundle.js': docsOp('Swagger UI', js),
    '/docs/swagger-ui.css': docsOp("Swagger UI's style sheet", css),
    '/docs/favicon-32x32.png': docsOp("Swagger UI's icon", 'image/png'),
    '/openapi.json': {
      get: {
        security: [],
        summary: 'This document',
        responses: {
          '200': { description: 'the OpenAPI document', content: json({ type: 'object' }) },
          ...EDGE_PROBLEMS,
        },
      },
    },
  };
}

/** GET /stats (src/domain/stats.ts `WorkspaceStats`). */
function statsSchema() {
  const count = { type: 'integer', minimum: 0 };
  const byState = {
    type: 'object',
    required: agentStates,
    properties: Object.fromEntries(agentStates.map((st) => [st, count])),
    description: 'agents by state',
  };
  const window = {
    assignments: { ...count, description: 'decisions in the window (the latest 64 of each queue)' },
    meanWaitMs: { type: ['integer', 'null'], description: 'their mean wait; null: none' },
    serviceLevel: {
      type: ['number', 'null'],
      minimum: 0,
      maximum: 1,
      description: 'the share of them made within serviceLevelMs of arrival; null: none',
    },
    abandons: {
      ...count,
      description: 'queued or offered contacts abandoned in the window (the latest 64 of each queue)',
    },
    expirations: {
      ...count,
      description:
        'queued or offered contacts that left after their maximum wait in the window (the latest 64 of each queue)',
    },
  };
  const windowFields = Object.keys(window);
  return {
    type: 'object',
    required: [
      'queued',
      'queueBySkills',
      'queueByChannel',
      'longestWaitMs',
      'oldestContactId',
      'agentsByState',
      'assignments',
      'completed',
      'abandoned',
      'expired',
      'transferred',
      'contactsQueuedSoFar',
      'window',
      'queues',
      'occupancy',
      'position',
    ],
    properties: {
      queued: { ...count, description: 'contacts waiting' },
      queueBySkills: {
        type: 'object',
        additionalProperties: count,
        description: 'skill set (routing strings, "English#2,Sales") → contacts waiting, every channel',
      },
      queueByChannel: {
        type: 'object',
        additionalProperties: { type: 'object', additionalProperties: count },
        description: 'channel → skill set → contacts waiting',
      },
      longestWaitMs: { ...count, description: 'how long the oldest waiting contact has waited (0: none)' },
      oldestContactId: { type: ['string', 'null'] },
      agentsByState: byState,
      assignments: count,
      completed: count,
      abandoned: count,
      expired: count,
      transferred: count,
      contactsQueuedSoFar: count,
      window: {
        type: 'object',
        required: ['ms', 'serviceLevelMs', ...windowFields],
        properties: { ms: count, serviceLevelMs: count, ...window },
        description: 'the last 5 minutes of decisions, abandons and expirations',
      },
      queues: {
        type: 'array',
        description:
          'each queue (channel and skill set) with contacts waiting, or decisions, abandons or expirations in the window',
        items: {
          type: 'object',
          required: ['channel', 'skills', 'queued', 'longestWaitMs', 'agents', 'occupancy', ...windowFields],
          properties: {
            channel: { type: 'string' },
            skills: { type: 'string', description: 'routing strings, comma-separated: "English#2,Sales"' },
            queued: { ...count, description: 'contacts waiting' },
            longestWaitMs: {
              type: ['integer', 'null'],
              minimum: 0,
              description:
                'how long its oldest waiting contact has waited (0: none waits); null: it is behind the 500 oldest contacts of the workspace',
            },
            agents: {
              ...byState,
              description:
                'the agents who may take its contacts (its skills at their levels, its channel), by state',
            },
            occupancy: {
              type: ['number', 'null'],
              minimum: 0,
              description:
                'contacts held over the capacity (every channel together) of its agents present as available; null: none present',
            },
            ...window,
          },
        },
      },
      occupancy: {
        type: ['number', 'null'],
        minimum: 0,
        description: 'contacts held over the capacity of the agents present as available; null: none present',
      },
      position,
    },
  };
}
/** An interval's figures in GET /stats/intervals (src/domain/intervals.ts `IntervalFigures`), also per queue. */
const intervalFigures = (() => {
  const count = { type: 'integer', minimum: 0 };
  return {
    type: 'object',
    properties: {
      queued: { ...count, description: 'contacts queued' },
      assigned: { ...count, description: "first decisions (a contact's first offer, or its assignment)" },
      abandoned: count,
      expired: count,
      completed: count,
      transferred: count,
      meanWaitMs: { type: ['integer', 'null'], description: 'mean wait to the first decision; null: none' },
      serviceLevel: {
        type: ['number', 'null'],
        minimum: 0,
        maximum: 1,
        description: 'the share of first decisions made within serviceLevelMs of arrival; null: none',
      },
      meanHandleMs: { type: ['integer', 'null'], description: 'mean handle time of completions; null: none' },
    },
  };
})();
const contactStates = ['queued', 'offered', 'assigned', 'completed', 'abandoned', 'expired'];

function command(summary: string, body: object | undefined, doc: string, ok: number) {
  // A command that makes a document (answered 201) says where it is, and where it will be when
  // its outcome comes too late (202).
  // A repeat with the same Idempotency-Key is answered its first outcome, saying so; a refusal
  // the projector decided (403, 404, 409, 422) too.
  const replayed = {
    'Idempotent-Replayed': header('true: the answer of the first request with this Idempotency-Key'),
  };
  const headers = {
    headers: {
      ...(ok === 201 ? { Location: header('the path of the document the command makes') } : {}),
      ...replayed,
    },
  };
  const refusals = problems(400, 401, 403, 404, 409, 413, 415, 422, 503);
  for (const status of ['403', '404', '409', '422'])
    refusals[status] = { ...refusals[status]!, headers: replayed };
  return {
    summary,
    parameters: [idem],
    ...(body ? { requestBody: { required: true, content: json(body) } } : {}),
    responses: {
      [String(ok)]: { description: 'applied', content: json(ref(doc)), ...headers },
      '202': {
        description: 'accepted; outcome not known in time',
        content: json(ref('Accepted')),
        ...headers,
      },
      ...refusals,
    },
  };
}

/**
 * Each operation's name (what generated clients call their methods): the typed client's
 * (src/client) where it has one. Every operation of the document has one; one missing fails at load.
 */
const OPERATION_IDS: Readonly<Record<string, string>> = {
  'POST /v1/workspaces/{ws}/agents': 'registerAgent',
  'GET /v1/workspaces/{ws}/agents': 'listAgents',
  'GET /v1/workspaces/{ws}/agents/{id}': 'getAgent',
  'PATCH /v1/workspaces/{ws}/agents/{id}': 'updateAgent',
  'DELETE /v1/workspaces/{ws}/agents/{id}': 'removeAgent',
  'POST /v1/workspaces/{ws}/agents/{id}/state': 'setAgentState',
  'POST /v1/workspaces/{ws}/contacts': 'queueContact',
  'GET /v1/workspaces/{ws}/contacts/{id}': 'getContact',
  'POST /v1/workspaces/{ws}/contacts/{id}/abandon': 'abandonContact',
  'POST /v1/workspaces/{ws}/contacts/{id}/complete': 'completeContact',
  'POST /v1/workspaces/{ws}/contacts/{id}/transfer': 'transferContact',
  'POST /v1/workspaces/{ws}/contacts/{id}/accept': 'acceptOffer',
  'POST /v1/workspaces/{ws}/contacts/{id}/reject': 'rejectOffer',
  'GET /v1/workspaces/{ws}/settings': 'getSettings',
  'PUT /v1/workspaces/{ws}/settings': 'putSettings',
  'GET /v1/workspaces/{ws}/stats': 'getStats',
  'GET /v1/workspaces/{ws}/stats/intervals': 'getStatsIntervals',
  'GET /v1/workspaces/{ws}/events': 'listEvents',
  'GET /v1/workspaces/{ws}/state': 'getStateAt',
  'GET /v1/workspaces/{ws}/events/live': 'subscribeLive',
  'GET /v1/workspaces/{ws}/keys': 'listKeys',
  'POST /v1/workspaces/{ws}/keys': 'createKey',
  'GET /v1/workspaces/{ws}/keys/me': 'whoami',
  'GET /v1/workspaces/{ws}/keys/{keyId}': 'getKey',
  'DELETE /v1/workspaces/{ws}/keys/{keyId}': 'revokeKey',
  'POST /v1/workspaces/{ws}/ws-tickets': 'createWsTicket',
  'GET /health': 'health',
  'GET /status': 'status',
  'GET /metrics': 'metrics',
  'GET /': 'wallboardPage',
  'GET /agent': 'agentDesktopPage',
  'GET /ui/common.js': 'pagesCommonScript',
  'GET /ui/wallboard.js': 'wallboardScript',
  'GET /ui/agent.js': 'agentDesktopScript',
  'GET /ui/style.css': 'pagesStyleSheet',
  'GET /ui/vendor/uplot.js': 'uplotScript',
  'GET /ui/vendor/uplot.css': 'uplotStyleSheet',
  'GET /docs': 'swaggerUiPage',
  'GET /docs/init.js': 'swaggerUiInitScript',
  'GET /docs/swagger-ui-bundle.js': 'swaggerUiScript',
  'GET /docs/swagger-ui.css': 'swaggerUiStyleSheet',
  'GET /docs/favicon-32x32.png': 'swaggerUiIcon',
  'GET /openapi.json': 'openapiDocument',
};

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** The document with each operation's `operationId` (OPERATION_IDS). */
function withOperationIds<T extends { readonly paths: object }>(doc: T): T {
  const paths = Object.fromEntries(
    Object.entries(doc.paths).map(([path, item]) => [
      path,
      Object.fromEntries(
        Object.entries(item as Record<string, unknown>).map(([method, op]) => {
          if (!METHODS.includes(method)) return [method, op];
          const operationId = OPERATION_IDS[`${method.toUpperCase()} ${path}`];
          if (!operationId) throw new Error(`OpenAPI: no operationId for ${method.toUpperCase()} ${path}`);
          return [method, { operationId, ...(op as object) }];
        }),
      ),
    ]),
  );
  return { ...doc, paths };
}

/** The workspace's settings as GET /settings answers them; PUT's answer (SettingsApplied) adds the position. */
const settings = {
  required: ['offerTimeoutMs', 'wrapUpMs', 'missedOfferPresence', 'maxWaitMs', 'channels'],
  properties: {
    offerTimeoutMs: { type: 'integer' },
    wrapUpMs: { type: 'integer' },
    missedOfferPresence: presence,
    maxWaitMs: { type: ['integer', 'null'] },
    channels: { type: 'array', items: channel },
    priorityWeightMs: { type: ['integer', 'null'] },
    agentSelection,
  },
};

/**
 * Every route under /v1/workspaces/{ws} also answers the edge's refusals (EDGE_PROBLEMS: a bad
 * Host, a request that did not arrive in time, a target too long, a body in a content coding, an
 * Expect it cannot meet, past the rate limit, headers too large, the instance stopping), whatever
 * its own answers.
 */
function withEdgeProblems<T extends { readonly paths: object }>(doc: T): T {
  const paths = Object.fromEntries(
    Object.entries(doc.paths).map(([path, item]) => [
      path,
      !path.startsWith('/v1/')
        ? item
        : Object.fromEntries(
            Object.entries(item as Record<string, { responses?: object }>).map(([method, op]) =>
              METHODS.includes(method)
                ? [method, { ...op, responses: { ...op.responses, ...EDGE_PROBLEMS } }]
                : [method, op],
            ),
          ),
    ]),
  );
  return { ...doc, paths };
}

export const openapi = withEdgeProblems(
  withOperationIds({
    openapi: '3.1.0',
    info: {
      title: 'Switchboard',
      version: '1',
      description: 'Contact-center router: see docs/API.md',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    // Relative: the server that serves this document (Swagger UI at /docs tries requests there).
    servers: [{ url: '/', description: 'the Switchboard serving this document' }],
    paths: {
      '/v1/workspaces/{ws}/agents': {
        parameters: [wsParam],
        post: command('Register an agent', ref('RegisterAgent'), 'Agent', 201),
        get: {
          summary: 'List agents',
          parameters: [
            {
              name: 'state',
              in: 'query',
              schema: { enum: agentStates },
            },
            {
              name: 'skill',
              in: 'query',
              schema: skillName,
              description: 'agents holding this skill at any level (with state=available: in LAA order)',
            },
            {
              name: 'limit',
              in: 'query',
              schema: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
            },
            {
              name: 'after',
              in: 'query',
              schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
              description:
                'by id: the agents after this id (the `next` of the page before); not with state=available&skill',
            },
            minPosition,
          ],
          responses: {
            '200': {
              description:
                'agents; by id with `next` (the `after` of the next page; null: none after), at most 10,000 ids looked at a page',
              content: json({
                type: 'object',
                required: ['agents'],
                properties: {
                  agents: { type: 'array', items: ref('Agent') },
                  next: {
                    type: ['string', 'null'],
                    description:
                      'by id: the id to list after; null: none after this page. Absent in longest-available order',
                  },
                },
              }),
            },
            ...problems(400, 401, 403, 409, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/agents/{id}': {
        parameters: [wsParam, idParam],
        get: {
          summary: 'An agent',
          parameters: [minPosition],
          responses: {
            '200': { description: 'agent', content: json(ref('Agent')) },
            ...problems(400, 401, 403, 404, 409, 503),
          },
        },
        patch: command('Change an agent', ref('UpdateAgent'), 'Agent', 200),
        delete: command('Remove an agent', undefined, 'Removed', 200),
      },
      '/v1/workspaces/{ws}/agents/{id}/state': {
        parameters: [wsParam, idParam],
        post: command('Set an agent available, away or offline', ref('AgentState'), 'Agent', 200),
      },
      '/v1/workspaces/{ws}/contacts': {
        parameters: [wsParam],
        post: command('Queue a contact', ref('QueueContact'), 'Contact', 201),
      },
      '/v1/workspaces/{ws}/contacts/{id}': {
        parameters: [wsParam, idParam],
        get: {
          summary: 'A contact',
          parameters: [minPosition],
          responses: {
            '200': { description: 'contact', content: json(ref('Contact')) },
            ...problems(400, 401, 403, 404, 409, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/contacts/{id}/abandon': {
        parameters: [wsParam, idParam],
        post: command(
          'The customer left a queued or offered contact: never assigned after this (409 contact-not-queued)',
          undefined,
          'Contact',
          200,
        ),
      },
      '/v1/workspaces/{ws}/contacts/{id}/complete': {
        parameters: [wsParam, idParam],
        post: command(
          "The agent finished; it wraps up for its wrap-up time, if any (409 contact-not-assigned; an agent key's for a contact not its agent's, also one that left it before the command was applied: 403 forbidden)",
          undefined,
          'Contact',
          200,
        ),
      },
      '/v1/workspaces/{ws}/contacts/{id}/transfer': {
        parameters: [wsParam, idParam],
        post: command(
          'An assigned contact goes back to the queue with new skills (and priority), keeping its arrival for ordering; the agent wraps up (409 contact-not-assigned)',
          ref('Transfer'),
          'Contact',
          200,
        ),
      },
      '/v1/workspaces/{ws}/contacts/{id}/accept': {
        parameters: [wsParam, idParam],
        post: command(
          'The agent offered the contact takes it (409 contact-not-offered, 409 offer-not-yours)',
          ref('OfferAnswer'),
          'Contact',
          200,
        ),
      },
      '/v1/workspaces/{ws}/contacts/{id}/reject': {
        parameters: [wsParam, idParam],
        post: command(
          'The agent offered the contact declines it: back to the queue at its place, never offered to that agent again while among the last 100 who turned it down',
          ref('OfferAnswer'),
          'Contact',
          200,
        ),
      },
      '/v1/workspaces/{ws}/settings': {
        parameters: [wsParam],
        get: {
          summary: 'The workspace settings (defaults when never set)',
          parameters: [minPosition],
          responses: {
            '200': { description: 'settings', content: json(ref('Settings')) },
            ...problems(400, 401, 403, 409, 503),
          },
        },
        put: command(
          'Replace the workspace settings (a field left out takes its default)',
          ref('SettingsBody'),
          'SettingsApplied',
          200,
        ),
      },
      '/v1/workspaces/{ws}/stats': {
        parameters: [wsParam],
        get: {
          summary:
            'Queue depth, longest wait, agents per state, counters; the last 5 minutes: service level, mean wait, per queue',
          parameters: [minPosition, serviceLevelMs],
          responses: {
            '200': { description: 'stats', content: json(ref('Stats')) },
            ...problems(400, 401, 403, 409, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/stats/intervals': {
        parameters: [wsParam],
        get: {
          summary:
            'The event log in 15-minute intervals: queued, first decisions, abandons, expiries, completions, mean wait, service level, mean handle time; per queue too',
          parameters: [
            {
              name: 'from',
              in: 'query',
              required: true,
              schema: { type: 'string', format: 'date-time', description: 'UTC when it has no offset' },
            },
            {
              name: 'to',
              in: 'query',
              required: true,
              schema: {
                type: 'string',
                format: 'date-time',
                description: 'after from, at most 24 hours later; UTC when it has no offset',
              },
            },
            serviceLevelMs,
            {
              name: 'source',
              in: 'query',
              schema: {
                enum: ['log'],
                description: 'log: computed from the log even when the live projection covers the range',
              },
            },
            minPosition,
          ],
          responses: {
            '200': {
              description:
                '{from, to, intervals: [{from, to, queued, assigned, ..., queues}], source: "live" | "log", position?}: source live (the live interval projection; position: the last event its figures include) or log (read from the log for this request)',
              content: json({
                type: 'object',
                required: ['from', 'to', 'intervals', 'source'],
                properties: {
                  from: { type: 'string', format: 'date-time' },
                  to: { type: 'string', format: 'date-time' },
                  intervals: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['from', 'to', ...Object.keys(intervalFigures.properties), 'queues'],
                      properties: {
                        from: { type: 'string', format: 'date-time' },
                        to: { type: 'string', format: 'date-time' },
                        ...intervalFigures.properties,
                        queues: {
                          type: 'object',
                          additionalProperties: intervalFigures,
                          description: 'per queue ("<channel> <skills as JSON>"): the same figures',
                        },
                      },
                    },
                  },
                  source: { enum: ['live', 'log'] },
                  position,
                },
              }),
            },
            ...problems(400, 401, 403, 409, 503),
            '422': {
              ...problems(422)['422'],
              description: 'range-too-large: more than 2,000,000 events in the range',
            },
          },
        },
      },
      '/v1/workspaces/{ws}/events': {
        parameters: [wsParam],
        get: {
          summary: 'Page the event history in order',
          parameters: [
            after,
            {
              name: 'limit',
              in: 'query',
              schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            },
            typeParam,
            minPosition,
          ],
          responses: {
            '200': {
              description:
                'a page; with type, it reads at most 10,000 events of the log, so it may hold fewer than limit (or none) with a next: page until next is null',
              content: json({
                type: 'object',
                required: ['events', 'next'],
                properties: {
                  events: { type: 'array', items: ref('Event') },
                  next: { oneOf: [position, { type: 'null' }] },
                },
              }),
            },
            ...problems(400, 401, 403, 409, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/state': {
        parameters: [wsParam],
        get: {
          summary:
            'The agents, contacts and queue right after an event, computed from the log by the domain model (from the latest archived snapshot at or before it)',
          parameters: [
            {
              name: 'at',
              in: 'query',
              required: true,
              schema: {
                ...position,
                description: `an event position (GET /events, the live feed); between two events: the earlier. ${position.description}`,
              },
            },
            minPosition,
          ],
          responses: {
            '200': {
              description: 'the state right after the last event at or before `at`',
              content: json({
                type: 'object',
                required: [
                  'workspace',
                  'at',
                  'position',
                  'checkpoint',
                  'agents',
                  'contacts',
                  'queue',
                  'snapshot',
                  'replayed',
                ],
                properties: {
                  workspace: { type: 'string' },
                  at: position,
                  position: { oneOf: [position, { type: 'null' }], description: 'the last event replayed' },
                  checkpoint: {
                    oneOf: [position, { type: 'null' }],
                    description: 'the command position of the last command replayed',
                  },
                  agents: { type: 'array', items: ref('Agent'), description: 'sorted by id' },
                  contacts: { type: 'array', items: ref('Contact'), description: 'sorted by id' },
                  queue: {
                    type: 'array',
                    description:
                      'queued contacts in routing order: priority descending, then arrival (under priority aging, the aged order)',
                    items: {
                      type: 'object',
                      properties: {
                        contactId: id,
                        skills,
                        priority: { type: 'integer' },
                        queuedAt: { type: 'string' },
                      },
                    },
                  },
                  snapshot: {
                    oneOf: [position, { type: 'null' }],
                    description:
                      'event position of the snapshot the replay started from; null: the beginning',
                  },
                  replayed: {
                    type: 'object',
                    properties: { events: { type: 'integer' }, commands: { type: 'integer' } },
                  },
                },
              }),
            },
            ...problems(400, 401, 403, 409, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/events/live': {
        parameters: [wsParam],
        get: {
          summary: 'WebSocket: replay after a position, then live events (one JSON envelope per message)',
          parameters: [
            after,
            typeParam,
            { name: 'agent', in: 'query', schema: id },
            {
              name: 'ticket',
              in: 'query',
              schema: { type: 'string' },
              description: 'a one-time ticket from POST /ws-tickets, instead of the Authorization header',
            },
            {
              name: 'heartbeat',
              in: 'query',
              schema: { type: 'string', enum: ['0', '1'] },
              description:
                '0: no heartbeat messages ({"heartbeat": {after, at, everyMs}}, sent as the feed opens and after LIVE_HEARTBEAT_MS of silence) on this feed',
            },
          ],
          responses: {
            '101': { description: 'switching protocols' },
            // 409: after= past the last event; 429: the key's WebSockets; 503: the instance's, or Redis.
            ...problems(400, 401, 403, 409, 426, 429, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/keys': {
        parameters: [wsParam],
        post: {
          summary: 'Make an API key (admin): the secret is in this answer only',
          requestBody: { required: true, content: json(ref('NewApiKey')) },
          responses: {
            '201': {
              description: 'the key, with its secret `key`',
              headers: { Location: header('the path of the key (GET /keys/{keyId}), never its secret') },
              content: json(ref('NewApiKeyAnswer')),
            },
            ...problems(400, 401, 403, 413, 415, 503),
          },
        },
        get: {
          summary: "The workspace's API keys (admin); never a secret",
          responses: {
            '200': {
              description: 'keys',
              content: json({
                type: 'object',
                properties: { keys: { type: 'array', items: ref('ApiKey') } },
              }),
            },
            ...problems(400, 401, 403, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/keys/me': {
        parameters: [wsParam],
        get: {
          summary: "The caller's own key (every role): its id, role and, for an agent key, its agent",
          responses: {
            '200': {
              description: 'the key (with authentication off: keyId "anonymous", role admin)',
              content: json({
                type: 'object',
                required: ['keyId', 'workspace', 'role'],
                properties: {
                  keyId: { type: 'string' },
                  workspace: { type: 'string' },
                  role: { type: 'string', enum: ['admin', 'integration', 'supervisor', 'auditor', 'agent'] },
                  agentId: id,
                },
              }),
            },
            ...problems(400, 401, 403, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/keys/{keyId}': {
        parameters: [
          wsParam,
          {
            name: 'keyId',
            in: 'path',
            required: true,
            schema: { type: 'string', pattern: '^[0-9a-f]{16}$' },
          },
        ],
        get: {
          summary: 'One API key (admin), revoked or not: where POST /keys points; never a secret',
          responses: {
            '200': { description: 'the key', content: json(ref('ApiKey')) },
            ...problems(400, 401, 403, 404, 503),
          },
        },
        delete: {
          summary: 'Revoke an API key (admin): refused on every instance within a second',
          responses: {
            '200': { description: 'the revoked key', content: json(ref('ApiKey')) },
            ...problems(400, 401, 403, 404, 413, 415, 503),
          },
        },
      },
      '/v1/workspaces/{ws}/ws-tickets': {
        parameters: [wsParam],
        post: {
          summary: 'A one-time ticket (30 s) to open the live feed with ?ticket= (for browsers)',
          requestBody: {
            required: false,
            content: json({
              type: 'object',
              additionalProperties: false,
              properties: {
                after: {
                  ...after.schema,
                  description: `where the feed will open from (its after=): past the last event, 409 position-ahead with lastPosition. ${after.schema.description}`,
                },
              },
            }),
          },
          responses: {
            '201': {
              description: 'ticket',
              content: json({
                type: 'object',
                properties: { ticket: { type: 'string' }, expiresAt: { type: 'string' } },
              }),
            },
            ...problems(400, 401, 403, 409, 413, 415, 503),
          },
        },
      },
      '/health': {
        get: {
          security: [],
          summary: 'Load balancer check',
          description:
            '200 while the instance serves; 503 redis-unavailable while Redis is unreachable, 503 shutting-down while it stops (its drain, LB_DRAIN_MS: requests are still answered, new ones belong elsewhere).',
          responses: {
            '200': {
              description: 'serving',
              content: json({
                type: 'object',
                required: ['status'],
                properties: { status: { const: 'ok' } },
              }),
            },
            ...UNLIMITED_EDGE_PROBLEMS,
          },
        },
      },
      '/status': {
        get: {
          security: [],
          summary: 'State, roles, Redis',
          responses: {
            '200': {
              description: 'status',
              content: json({
                type: 'object',
                required: [
                  'version',
                  'state',
                  'roles',
                  'workspaces',
                  'auth',
                  'uptimeS',
                  'pid',
                  'subscribers',
                ],
                properties: {
                  version: { type: 'string' },
                  state: {
                    enum: ['running', 'paused', 'stopping'],
                    description: 'stopping: signalled to stop, still serving for LB_DRAIN_MS, /health 503',
                  },
                  reason: { type: 'string', description: 'why paused' },
                  roles: { type: 'array', items: { enum: ['api', 'projector', 'dispatcher', 'archiver'] } },
                  workspaces: { type: 'array', items: { type: 'string' } },
                  redis: { type: 'object' },
                  auth: { enum: ['on', 'off'] },
                  uptimeS: { type: 'integer', minimum: 0 },
                  pid: { type: 'integer' },
                  subscribers: { type: 'integer', minimum: 0 },
                  projectorApplied: { type: 'integer', minimum: 0 },
                  dispatcherAssignments: { type: 'integer', minimum: 0 },
                },
              }),
            },
            ...EDGE_PROBLEMS,
          },
        },
      },
      '/metrics': {
        get: {
          security: [],
          summary: 'Prometheus metrics',
          responses: {
            '200': {
              description: 'Prometheus text exposition format (docs/METRICS.md)',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...UNLIMITED_EDGE_PROBLEMS,
          },
        },
      },
      // The pages (docs/API.md "Pages"): open, like /status; every API call they make carries the
      // key typed in. Each answers 304 to an If-None-Match naming its ETag.
      ...pagePaths(),
    },
    // Every /v1/workspaces route takes an API key (docs/SECURITY.md); /health, /status, /metrics
    // and /openapi.json are open (their `security: []`).
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'Authorization: Bearer sb_<keyId>_<secret>: an API key of the workspace, with a role (admin, integration, supervisor, auditor, agent); 401 without a valid key, 403 for a role or workspace it does not cover',
        },
      },
      schemas: {
        Stats: statsSchema(),
        NewApiKey: {
          type: 'object',
          required: ['role'],
          additionalProperties: false,
          properties: {
            role: { enum: ['admin', 'integration', 'supervisor', 'auditor', 'agent'] },
            agentId: {
              ...id,
              description: 'the agent a key of role agent acts for (required for it, refused otherwise)',
            },
            name: oneLineName,
          },
        },
        ApiKey: {
          type: 'object',
          properties: {
            keyId: { type: 'string' },
            workspace: { type: 'string' },
            role: { type: 'string' },
            agentId: { type: 'string' },
            name: { type: 'string' },
            createdAt: { type: 'string' },
            revokedAt: { type: 'string' },
          },
        },
        NewApiKeyAnswer: {
          allOf: [
            ref('ApiKey'),
            {
              type: 'object',
              properties: { key: { type: 'string', description: 'the key, shown this once' } },
            },
          ],
        },
        RegisterAgent: {
          type: 'object',
          required: ['id', 'skills'],
          additionalProperties: false,
          properties: {
            id,
            name: oneLineName,
            skills: agentSkills,
            capacity,
            wrapUpMs: { ...wrapUpMs, description: `${wrapUpMs.description}; instead of the workspace's` },
          },
        },
        UpdateAgent: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: {
            name: oneLineName,
            skills: agentSkills,
            capacity,
            wrapUpMs: {
              oneOf: [wrapUpMs, { type: 'null' }],
              description: `${wrapUpMs.description}; instead of the workspace's; null: the agent's own is removed, the workspace's applies again`,
            },
          },
        },
        AgentState: {
          type: 'object',
          required: ['state'],
          additionalProperties: false,
          properties: {
            state: {
              ...presence,
              description:
                '`available` while wrapping up ends the wrap-up early; `away`/`offline` withdraws offers held',
            },
          },
        },
        Transfer: {
          type: 'object',
          required: ['skills'],
          additionalProperties: false,
          properties: {
            skills: { ...requirements, description: 'the skills it needs now (a name, or {name, minLevel})' },
            priority: {
              type: 'integer',
              minimum: 0,
              maximum: 9,
              description: 'its priority now (default: unchanged)',
            },
          },
        },
        OfferAnswer: {
          type: 'object',
          required: ['agentId'],
          additionalProperties: false,
          properties: {
            agentId: { ...id, description: 'the agent answering: the one the contact is offered to' },
          },
        },
        SettingsBody: {
          type: 'object',
          additionalProperties: false,
          description: 'PUT replaces the settings whole: a field left out takes its default',
          properties: {
            offerTimeoutMs: ms(
              0,
              3_600_000,
              'how long an offer waits for the agent to accept, ms; 0 (default): contacts are assigned directly',
            ),
            wrapUpMs: { ...wrapUpMs, description: `${wrapUpMs.description}; default 0` },
            missedOfferPresence: {
              ...presence,
              description: 'the presence an agent is set to when it lets an offer expire (default away)',
            },
            maxWaitMs: {
              oneOf: [maxWaitMs, { type: 'null' }],
              description: `${maxWaitMs.description}; null (default): no limit`,
            },
            channels: {
              type: 'array',
              items: channel,
              minItems: 1,
              maxItems: 16,
              description:
                'the channels contacts may come on (default ["voice"]), a set: a name given twice counts once; left out: the channels in force stay; channels are added, never removed',
            },
            priorityWeightMs: {
              oneOf: [ms(1, 3_600_000, 'ms'), { type: 'null' }],
              description:
                'priority aging: each priority point counts as this much earlier arrival (routing order is arrival − priority × weight); null (default): strict priority, then arrival. Set or removed only while no contact is queued (409 settings-conflict)',
            },
            agentSelection: {
              ...agentSelection,
              description:
                "how the agent is chosen among the eligible ones: longest-available (default), most-skilled (highest level summed over the contact's required skills, then longest available), least-occupied (lowest share of capacity in use, then longest available). Changed to or from least-occupied only while no agent can take work (409 settings-conflict)",
            },
          },
        },
        Settings: { type: 'object', required: settings.required, properties: settings.properties },
        SettingsApplied: {
          type: 'object',
          required: [...settings.required, 'position'],
          properties: { ...settings.properties, position },
        },
        QueueContact: {
          type: 'object',
          required: ['skills'],
          additionalProperties: false,
          properties: {
            id,
            skills: requirements,
            channel: {
              ...channel,
              description: 'the channel it comes on (default voice), one the workspace declares',
            },
            preferredAgents: {
              type: 'array',
              items: id,
              minItems: 1,
              maxItems: 10,
              uniqueItems: true,
              description: 'the only agents who may take it for preferredForMs (then anyone eligible)',
            },
            preferredForMs: ms(1, 7 * DAY_MS, 'how long it waits for its preferred agents (default 30,000)'),
            steps: {
              type: 'array',
              minItems: 1,
              maxItems: 8,
              description:
                "routing steps: afterMs after its arrival (each later than the one before), its requirements become the step's; it keeps its arrival",
              items: {
                type: 'object',
                required: ['afterMs', 'skills'],
                additionalProperties: false,
                properties: {
                  afterMs: ms(1, 7 * DAY_MS, 'ms after the contact arrived'),
                  skills: requirements,
                  priority: { type: 'integer', minimum: 0, maximum: 9 },
                },
              },
            },
            priority: { type: 'integer', minimum: 0, maximum: 9 },
            maxWaitMs: { ...maxWaitMs, description: `${maxWaitMs.description}; instead of the workspace's` },
            attributes: {
              type: 'object',
              description: `at most 16 KiB as JSON, nested at most ${MAX_ATTRIBUTES_DEPTH} levels (this object is the first), strings well-formed Unicode (no lone surrogates)`,
            },
          },
        },
        Agent: {
          type: 'object',
          // Always there (docs/API.md, "Documents"); the others only when they apply.
          required: [
            'id',
            'skills',
            'capacity',
            'presence',
            'state',
            'activeContacts',
            'availableSince',
            'registeredAt',
            'position',
          ],
          properties: {
            id,
            name: { type: 'string' },
            skills: agentSkills,
            capacity,
            presence,
            state: {
              enum: agentStates,
              description:
                'derived: presence when not available; available agents are wrapup, reserved (holding an offer), busy (at capacity) or available',
            },
            activeContacts: { type: 'array', items: id, description: 'offered and assigned contacts' },
            availableSince: { type: ['string', 'null'] },
            availableSinceByChannel: {
              type: 'object',
              additionalProperties: { type: 'string' },
              description: 'with capacity per channel: each channel it has room on, and since when',
            },
            registeredAt: { type: 'string' },
            wrapUpMs: { type: 'integer', description: "the agent's own wrap-up time, when set" },
            wrapUpUntil: { type: 'string', description: 'while wrapping up: when the wrap-up ends' },
            position,
          },
        },
        Contact: {
          type: 'object',
          // Always there (docs/API.md, "Documents"); `channel` too, but for a contact written
          // before channels (src/domain/views.ts); the others only when they apply.
          required: ['id', 'skills', 'priority', 'state', 'queuedAt', 'position'],
          properties: {
            id,
            skills: requirements,
            channel,
            priority: { type: 'integer' },
            attributes: { type: 'object' },
            steps: { type: 'array', items: { type: 'object' }, description: 'its routing steps, when given' },
            step: { type: 'integer', description: 'with steps: how many have been taken' },
            preferredAgents: {
              type: 'array',
              items: id,
              description:
                'its preferred agents: until PreferenceEnded or a transfer removes them (a contact taken, abandoned or expired during its preference keeps them)',
            },
            preferredUntil: {
              type: 'string',
              description: 'when anyone eligible may take it (shown with preferredAgents)',
            },
            queuePosition: {
              type: 'integer',
              description:
                'while queued, and only then (read with the state): queued contacts ahead of it in its own queue (its channel and skills), in routing order',
            },
            estimatedWaitMs: {
              type: ['integer', 'null'],
              description:
                "while queued: (queuePosition + 1) / its queue's service rate over the last 5 minutes; null before any decision there",
            },
            state: { enum: contactStates },
            queuedAt: { type: 'string' },
            agentId: { ...id, description: 'offered or assigned to' },
            assignedAt: { type: 'string', description: 'when offered or assigned' },
            waitedMs: { type: 'integer' },
            offerExpiresAt: { type: 'string', description: 'while offered: when the offer expires' },
            acceptedAt: { type: 'string' },
            excludedAgents: {
              type: 'array',
              items: id,
              description:
                'the last 100 agents that rejected it, let its offer expire or had it withdrawn (away, offline, removed), oldest first: never offered to them again while among them',
            },
            maxWaitMs: { type: 'integer', description: 'its own maximum wait, when given' },
            expiresAt: {
              type: 'string',
              description:
                'set when queued with a maximum wait: when it leaves as expired if still queued or offered then (kept once assigned or left; a transfer removes it)',
            },
            expiredAt: { type: 'string' },
            completedAt: { type: 'string' },
            abandonedAt: { type: 'string' },
            position,
          },
        },
        Removed: { type: 'object', properties: { id, removed: { const: true }, position } },
        Accepted: {
          type: 'object',
          required: ['position', 'commandId'],
          properties: {
            position,
            commandId: { type: 'string' },
            id: {
              ...id,
              description:
                'the document the command is about (the one its 200/201 answers): the agent or contact, ' +
                'for POST /contacts the id the server made when the body gave none; absent for PUT /settings',
            },
          },
        },
        Event: {
          type: 'object',
          required: ['position', 'type', 'workspace', 'at', 'data', 'meta'],
          properties: {
            position,
            type: { enum: [...EVENT_TYPES] },
            workspace: { type: 'string' },
            at: { type: 'string' },
            data: {
              type: 'object',
              description:
                'by type (docs/API.md, "Events"): AgentRegistered, AgentUpdated: the agent; AgentStateChanged {agentId, from, to, presence, availableSince}; AgentRemoved {agentId}; ' +
                'ContactQueued: the contact; ContactCompleted {contactId, agentId, completedAt, handledMs}; CommandRejected {commandId, command, target, status, title, detail}; ' +
                'AssignmentMade {contactId, agentId, skills, channel, priority, queuedAt, assignedAt, waitedMs, offer?: {id, expiresAt}}; ' +
                'AssignmentAccepted {contactId, agentId, acceptedAt}; AssignmentRejected {contactId, agentId, rejectedAt, reason: rejected|presence|removed}; ' +
                'AssignmentExpired {contactId, agentId, expiredAt}; WrapUpStarted {agentId, wrapUp, until}; WrapUpEnded {agentId, wrapUp, early, endedAt}; ' +
                'ContactAbandoned {contactId, abandonedAt, waitedMs, agentId?}; ContactExpired {contactId, expiredAt, waitedMs, agentId?}; ContactTransferred {contactId, fromAgentId, skills, priority, transferredAt}; ' +
                'ContactStepped {contactId, step, skills, priority, steppedAt}; PreferenceEnded {contactId, endedAt}; ' +
                'SettingsChanged: the settings; ContactsForgotten {contactIds, before}',
            },
            meta: {
              type: 'object',
              description:
                'commandId?, idempotencyKey?, causationId?, basedOn? (AssignmentMade), requestId?, keyId?, role?',
            },
          },
        },
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail'],
          properties: {
            type: {
              enum: Object.keys(PROBLEM_TYPES).map((slug) => `/problems/${slug}`),
              description: 'see "Problem types" in docs/API.md',
            },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            errors: {
              type: 'array',
              description:
                'each field of the request at fault, {path, message}: the path as the request names it (a body field, a query parameter, a header), the message what is wrong and what to do. Carried by invalid-request (400: every bad field), bad-handshake (the headers), unsupported-encoding (Content-Encoding), and by the refusals caused by a request field: channel-not-declared (channel, capacity.<channel>), skill-set-limit (skills, the message naming the skill), channels-not-removable (channels), settings-conflict (priorityWeightMs or agentSelection), agent-exists (id), contact-exists (id), offer-not-yours (agentId), idempotency-key-reused (Idempotency-Key), position-ahead (minPosition, or after of GET /events, or at of GET /state); see "Problem types" in docs/API.md',
              items: {
                type: 'object',
                properties: { path: { type: 'string' }, message: { type: 'string' } },
              },
            },
            applied: {
              enum: ['unknown'],
              description:
                'not-replicated: the command was appended and may still be applied; retry with the same Idempotency-Key to learn its outcome',
            },
            appended: { type: 'boolean', description: 'not-replicated: true, the command is in the stream' },
            commandId: {
              type: 'string',
              description:
                "the command's id: one the projector refused, or (not-replicated) the one appended",
            },
            position: { type: 'string', description: 'not-replicated: its position in the command stream' },
            id: {
              type: 'string',
              description:
                "not-replicated: the id of the document the command is about (a contact id the server made included), as a 202 names it; for a retry with the same Idempotency-Key, the first request's",
            },
            lastPosition: {
              oneOf: [position, { type: 'null' }],
              description: 'position-ahead: the last position of the log asked about; null: it has none yet',
            },
            lostAfter: {
              oneOf: [position, { type: 'null' }],
              description:
                "archive-unreadable: the last position before the hole that reads (the previous segment's last; for a break between two segments, the last of the one before both); null: the hole begins at the start of the history, or where it begins is not known",
            },
            resumeAt: {
              oneOf: [position, { type: 'null' }],
              description:
                "archive-unreadable: the first position after the hole that reads (the next segment's first, or the stream's oldest entry); null: not known from the archive",
            },
            resumeAfter: {
              oneOf: [position, { type: 'null' }],
              description:
                'archive-unreadable: the after= that reads on from resumeAt (the position right before it); null when resumeAt is',
            },
            retryAfterMs: {
              type: 'integer',
              minimum: 0,
              description: 'rate-limited: when to send again, ms (Retry-After in seconds)',
            },
            state: {
              enum: ['paused', 'stopping'],
              description:
                "GET /health's 503: paused (redis-unavailable: Redis unreachable), or stopping (shutting-down: the drain of a stop, LB_DRAIN_MS)",
            },
          },
        },
      },
    },
  } as const),
);

export async function openapiRoute(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', async () => openapi);
}
