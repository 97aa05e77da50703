import { randomUUID } from 'node:crypto';
import { errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import type * as t from 'io-ts';
import type { Logger } from 'pino';
import {
  ChangeAgentStateBody,
  type Command,
  commandTarget,
  OfferAnswerBody,
  QueueContactBody,
  RegisterAgentBody,
  SettingsBody,
  TransferBody,
  UpdateAgentBody,
} from '../../domain/commands.ts';
import { DEFAULT_PREFERRED_FOR_MS, DEFAULT_SETTINGS } from '../../domain/model.ts';
import { DEFAULT_CHANNEL } from '../../domain/values.ts';
import { REPORT_DEFECT } from '../redis/advice.ts';
import { waitForReplicas } from '../redis/client.ts';
import {
  type Appended,
  type AppendSoon,
  appendCommand,
  type CommandOutcome,
  commandAt,
  fingerprintOf,
  legacyFingerprintOf,
  recordedOutcome,
} from '../redis/command-log.ts';
import { workspaceKeys } from '../redis/keys.ts';
import { boundedView } from '../redis/projection-reads.ts';
import { AgentParams, ContactParams, IdempotencyKey, NoQuery, WorkspaceParams } from './params.ts';
import {
  decodeOrProblem,
  internalError,
  isRedisUnavailable,
  type Problem,
  problem,
  redisUnavailable,
  redisUnavailableLog,
  sendProblem,
} from './problem.ts';
import { addLogFields } from './request-log.ts';

/** A command request's path and body, decoded: which workspace, which command. */
interface CommandRequest {
  readonly ws: string;
  readonly command: Command;
  /**
   * The body as its Idempotency-Key compares it: as sent (a JSON value), but null for every body
   * a body-less command takes (none, `null`, `{}`): those are one request.
   */
  readonly comparedBody: unknown;
}

/** With the Idempotency-Key header, decoded: the key that makes a repeat safe. */
interface Submission extends CommandRequest {
  readonly idempotencyKey: string | undefined;
}

/** A submission in the command stream: appended now, or the repeat of one appended before. */
interface InStream extends Submission {
  readonly appended: Appended;
}

/** Just appended: `ownOutcome` is the command's outcome (null at once for a repeat: it appended nothing). */
interface Appending extends InStream {
  readonly ownOutcome: Promise<CommandOutcome | null>;
}

/**
 * Every way the command path ends other than with the document its command made, each answered
 * by `answerFailure`. Those met once the command is in the stream carry it (`submitted`).
 */
type CommandFailure =
  /** 400: a bad path, body or Idempotency-Key header; nothing was appended. */
  | { readonly _tag: 'InvalidRequest'; readonly problem: Problem }
  /** 503: Redis could not be reached; the client retries with the same Idempotency-Key. */
  | { readonly _tag: 'RedisUnavailable'; readonly error: Error; readonly submitted?: InStream }
  /** 500: anything else that failed; logged under the request id. */
  | { readonly _tag: 'Failed'; readonly error: unknown; readonly submitted?: InStream }
  /** 422: the Idempotency-Key was first used for a different request; nothing was appended. */
  | { readonly _tag: 'IdempotencyKeyReused'; readonly submitted: InStream }
  /**
   * 503: durability is "replicated" and no replica confirmed the command in time. `target`: as
   * for TimedOut, the document it is about (the client may read it: the command may still apply).
   */
  | { readonly _tag: 'NotReplicated'; readonly submitted: InStream; readonly target?: string }
  /**
   * 202: the command is in the stream, but its outcome was not known in time. `target`: the id of
   * the document it is about (for a repeat, the first command's), when it is about one.
   */
  | { readonly _tag: 'TimedOut'; readonly submitted: InStream; readonly target?: string }
  /** 404/409/422: the projector refused the command; its outcome is the problem to answer. */
  | { readonly _tag: 'Refused'; readonly submitted: InStream; readonly outcome: CommandOutcome };

/** A command the projector applied: answered 200 or 201 with the document. */
interface Applied {
  readonly submitted: InStream;
  readonly outcome: CommandOutcome;
}

const invalidRequest = (p: Problem): CommandFailure => ({ _tag: 'InvalidRequest', problem: p });

/** A thrown error (a Redis one, mostly) as a failure of the command path. */
const thrown =
  (submitted?: InStream) =>
  (error: unknown): CommandFailure =>
    isRedisUnavailable(error)
      ? { _tag: 'RedisUnavailable', error: error as Error, ...(submitted ? { submitted } : {}) }
      : { _tag: 'Failed', error, ...(submitted ? { submitted } : {}) };

/** The id of the document a command is about (its 200/201 answers that document), if any. */
const ownTarget = (command: Command): string | undefined => {
  const { kind, id } = commandTarget(command);
  return kind === 'workspace' ? undefined : id;
};

/** The commands that make a document (answered 201 with a Location): their routes are its collection. */
const CREATES: ReadonlySet<Command['type']> = new Set(['RegisterAgent', 'QueueContact']);

/** Where the document `id` of the collection a command was posted to is. */
const locationOf = (req: FastifyRequest, id: string): string =>
  `${req.url.split('?')[0]!.replace(/\/$/, '')}/${encodeURIComponent(id)}`;

/** How a route reads its body. */
type BodyDecoder<B> = (body: unknown) => E.Either<Problem, B>;

const bodyOf =
  <B>(codec: t.Type<B, unknown, unknown>): BodyDecoder<B> =>
  (body) =>
    decodeOrProblem(codec, body, 'body');

/** Body-less commands accept nothing or an empty object. */
const noBody: BodyDecoder<null> = (body) =>
  body === undefined ||
  body === null ||
  (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0)
    ? E.right(null)
    : E.left(
        problem(400, 'invalid-request', 'Invalid request', 'This command takes no body; send none (or {}).', {
          errors: [{ path: '(body)', message: 'must be empty' }],
        }),
      );

/** A PATCH must change something. */
const changeOf: BodyDecoder<t.TypeOf<typeof UpdateAgentBody>> = (body) =>
  pipe(
    decodeOrProblem(UpdateAgentBody, body, 'body'),
    E.filterOrElse(
      (b) => Object.keys(b).length > 0,
      () =>
        problem(
          400,
          'invalid-request',
          'Invalid request',
          'The body changes nothing: give at least one of name, skills, capacity, wrapUpMs.',
          {
            errors: [
              { path: '(body)', message: 'must give at least one of name, skills, capacity, wrapUpMs' },
            ],
          },
        ),
    ),
  );

/** A contact: preferredForMs only with preferredAgents. */
const preferenceWithoutAgents = problem(
  400,
  'invalid-request',
  'Invalid request',
  'preferredForMs needs preferredAgents: name them too.',
  {
    errors: [{ path: 'preferredForMs', message: 'only with preferredAgents' }],
  },
);

/**
 * A contact's body: preferredForMs only with preferredAgents, named with the body's other bad
 * fields when there are some (API.md: `errors` lists every bad field at once).
 */
const queueBody: BodyDecoder<t.TypeOf<typeof QueueContactBody>> = (body) => {
  const decoded = decodeOrProblem(QueueContactBody, body, 'body');
  const fields =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : {};
  const unpaired = fields.preferredForMs !== undefined && fields.preferredAgents === undefined;
  if (E.isRight(decoded)) return unpaired ? E.left(preferenceWithoutAgents) : decoded;
  const named = (decoded.left.errors ?? []).some((e) => e.path === 'preferredForMs');
  return unpaired && !named ? E.left(together([decoded.left, preferenceWithoutAgents])) : decoded;
};

/**
 * Several 400s about the parts of one request as one, naming every bad field of them all (API.md:
 * each is named in `errors`), so a client learns them at once rather than one part per try.
 */
function together(problems: readonly Problem[]): Problem {
  if (problems.length === 1) return problems[0]!;
  const details = problems.map((p, i) => {
    const d = p.detail.replace(/\s*Nothing was changed\.$/, '').replace(/\.$/, '');
    return i === 0 ? d : d.replace(/^The /, 'the ');
  });
  return problem(400, 'invalid-request', 'Invalid request', `${details.join('; ')}. Nothing was changed.`, {
    errors: problems.flatMap((p) => p.errors ?? []),
  });
}

/** The Idempotency-Key header, decoded: undefined when absent. */
const idempotencyKeyOf = (req: FastifyRequest): E.Either<Problem, string | undefined> => {
  const raw = req.headers['idempotency-key'];
  return raw === undefined
    ? E.right(undefined)
    : decodeOrProblem(IdempotencyKey, raw, 'Idempotency-Key header', 'Idempotency-Key');
};

/**
 * The path parameters first (a bad path is the one answered), then the query (none) and the
 * body, named together (with a bad Idempotency-Key header too); `make` makes the command.
 */
function decodeRequest<P extends { readonly ws: string }, B>(
  req: FastifyRequest,
  params: t.Type<P, unknown, unknown>,
  body: BodyDecoder<B>,
  make: (params: P, body: B, req: FastifyRequest) => Command,
): E.Either<CommandFailure, CommandRequest> {
  const p = decodeOrProblem(params, req.params, 'path');
  if (E.isLeft(p)) return E.left(invalidRequest(p.left));
  // A command is all in its path and body: a field given as a query parameter is not read.
  const q = decodeOrProblem(NoQuery, req.query, 'query');
  const b = body(req.body);
  if (E.isLeft(q) || E.isLeft(b)) {
    const bad = [q, b, idempotencyKeyOf(req)].flatMap((r) => (E.isLeft(r) ? [r.left] : []));
    return E.left(invalidRequest(together(bad)));
  }
  return E.right({
    ws: p.right.ws,
    command: make(p.right, b.right, req),
    comparedBody: body === noBody ? null : (req.body ?? null),
  });
}

/**
 * Command routes: decode, append to the workspace's command stream, and answer with the outcome
 * the projector gives it (201/200 or a 4xx problem), or 202 when it is not known in time.
 */
export async function commandRoutes(app: FastifyInstance): Promise<void> {
  const { redis, tails, config, metrics, projectSoon } = app.deps;

  // An empty body under another media type is no body (fetch's `body: ''` sends it as text/plain,
  // curl's `-d ''` as a form): a body-less command runs, one that needs a body names it (400). A
  // body that is there is JSON, or a 415 as on every route.
  app.addContentTypeParser('*', (req, _payload, done) => {
    const length = req.headers['content-length'];
    const none = length === '0' || (length === undefined && req.headers['transfer-encoding'] === undefined);
    if (none) done(null, undefined);
    else done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(), undefined);
  });

  /**
   * A command route, and the whole command path: decode → append → await the outcome, then one
   * answer, whatever the path ends with. `make` turns the decoded path parameters and body into the
   * command. (Plain steps rather than a TaskEither chain: this is the hot path of every command.)
   */
  function commandRoute<P extends { readonly ws: string }, B>(
    params: t.Type<P, unknown, unknown>,
    body: BodyDecoder<B>,
    make: (params: P, body: B, req: FastifyRequest) => Command,
  ) {
    return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const decoded = decodeRequest(req, params, body, make); // 400
      if (E.isLeft(decoded)) return answerFailure(req, reply, decoded.left);
      // Every answer to a decoded command is counted, by its workspace, type and status: the
      // refusals and failures too (a 503 while Redis is away, a 422 reused key), not only outcomes.
      const answered = await answerCommand(req, reply, decoded.right);
      metrics.countCommand(decoded.right.ws, decoded.right.command.type, reply.statusCode);
      return answered;
    };
  }

  /** The path of a decoded command, to its one answer. */
  async function answerCommand(
    req: FastifyRequest,
    reply: FastifyReply,
    request: CommandRequest,
  ): Promise<FastifyReply> {
    const submission = withIdempotencyKey(req, request); // 400
    if (E.isLeft(submission)) return answerFailure(req, reply, submission.left);
    let appending: Appending;
    try {
      appending = await append(req, submission.right);
    } catch (err) {
      return answerFailure(req, reply, thrown()(err)); // 503 when Redis is unavailable
    }
    const { appended } = appending;
    if (appended.repeated && !appended.sameRequest)
      return answerFailure(req, reply, { _tag: 'IdempotencyKeyReused', submitted: appending }); // 422
    // 202 when late, 503 when not replicated, 4xx when refused
    const result = await awaitOutcome(appending);
    return E.isLeft(result)
      ? answerFailure(req, reply, result.left)
      : answerApplied(req, reply, result.right);
  }

  function withIdempotencyKey(req: FastifyRequest, s: CommandRequest): E.Either<CommandFailure, Submission> {
    const key = idempotencyKeyOf(req);
    return E.isLeft(key) ? E.left(invalidRequest(key.left)) : E.right({ ...s, idempotencyKey: key.right });
  }

  /** Appends the command; `ownOutcome` is its outcome (null at once for a repeat: it appended nothing). */
  async function append(req: FastifyRequest, s: Submission): Promise<Appending> {
    const tail = await tails.get(s.ws);
    const commandId = randomUUID();
    // The waiter is registered before the append: the projector may apply the command and
    // record its outcome before the append's reply is back here, and the tail hands an outcome
    // only to the waiters it has when it reads that outcome.
    const waiting = tail.waitOutcome(commandId, config.commandTimeoutMs);
    // With this process's projector serving the workspace, the step that applies the command
    // appends it (and looks its Idempotency-Key up).
    const soon: AppendSoon | undefined = projectSoon?.serves(s.ws)
      ? (append) => projectSoon.append(s.ws, append)
      : undefined;
    let appended: Appended;
    try {
      appended = await appendCommand(
        redis,
        {
          workspace: s.ws,
          command: s.command,
          commandId,
          ...(s.idempotencyKey !== undefined
            ? {
                idempotencyKey: s.idempotencyKey,
                fingerprint: fingerprintOf(req.method, req.routeOptions.url, req.params, s.comparedBody),
                // Until 2026-12-05 a body-less command's `{}` was compared as sent: a key recorded
                // with one matches its retry by that fingerprint; any other body by the one of
                // the versions before 2026-12-04 (members in the order sent).
                legacyFingerprint: () =>
                  s.comparedBody === null && req.body != null
                    ? fingerprintOf(req.method, req.routeOptions.url, req.params, req.body)
                    : legacyFingerprintOf(req.method, req.routeOptions.url, req.params, req.body ?? null),
              }
            : {}),
          requestId: req.id,
          // Who sent it (src/adapters/http/auth.ts): the projector puts both into every fact's meta.
          ...(req.principal ? { keyId: req.principal.keyId, role: req.principal.role } : {}),
          idempotencyTtlS: config.idempotencyTtlS,
        },
        soon,
      );
    } catch (err) {
      waiting.cancel();
      // Appended or not (the reply was lost): the failure's line names the id it was sent with.
      req.log = req.log.child({ commandId });
      throw err;
    }
    // From here on every line of this request names the command (its request id is bound
    // already): the request's one log line (request-log.ts), the debug line below, and those of
    // a late outcome (202), a missing replica (503) or a failure. The projector's lines about it
    // carry the same id.
    req.log = req.log.child({ commandId: appended.commandId });
    const logged = { type: s.command.type, position: appended.position, repeated: appended.repeated };
    addLogFields(req, logged);
    if ((req.log as Logger).isLevelEnabled('debug')) req.log.debug(logged, 'command appended');
    // A repeat appended nothing; a command its own step applied has its outcome already.
    if (appended.repeated || appended.outcome) waiting.cancel();
    return { ...s, appended, ownOutcome: waiting.promise };
  }

  /**
   * The outcome: this command's, or for a repeat the first command's. Not an outcome in time is
   * 202; with replicated durability, a command no replica confirmed is 503 whatever its outcome.
   */
  async function awaitOutcome({
    ownOutcome,
    ...submitted
  }: Appending): Promise<E.Either<CommandFailure, Applied>> {
    const { ws, idempotencyKey, appended } = submitted;
    // Replicated durability: the client hears of its command only once a replica holds it.
    const replicated =
      config.durability === 'replicated'
        ? waitForReplicas(redis, workspaceKeys(ws).commands, 1, config.replicaWaitMs).catch(() => 0)
        : undefined;
    let outcome: CommandOutcome | null;
    try {
      outcome =
        appended.outcome ??
        (appended.repeated ? await waitRepeat(ws, idempotencyKey!, appended.commandId) : await ownOutcome);
    } catch (err) {
      return E.left(thrown(submitted)(err));
    }
    const notReplicated = replicated !== undefined && (await replicated) < 1;
    if (notReplicated || !outcome) {
      // The document the command is about (for a repeat, the first command's): a client told only
      // "accepted" or "not replicated" learns which it is, a contact id the server made included.
      let target: string | undefined;
      try {
        target = appended.repeated ? await firstTarget(ws, appended.position) : ownTarget(submitted.command);
      } catch (err) {
        return E.left(thrown(submitted)(err));
      }
      const about = target !== undefined ? { target } : {};
      return E.left(
        notReplicated
          ? { _tag: 'NotReplicated', submitted, ...about }
          : { _tag: 'TimedOut', submitted, ...about },
      );
    }
    if (outcome.status >= 400) return E.left({ _tag: 'Refused', submitted, outcome });
    return E.right({ submitted, outcome });
  }

  /** A repeat whose first command is not applied yet: wait for it, then read its recorded outcome. */
  async function waitRepeat(ws: string, key: string, commandId: string): Promise<CommandOutcome | null> {
    const tail = await tails.get(ws);
    // Waiting before reading, for the same reason as before an append: an outcome recorded
    // between the read and the wait would reach no waiter.
    const waiting = tail.waitOutcome(commandId, config.commandTimeoutMs);
    const outcome = await recordedOutcome(redis, ws, key);
    if (outcome) {
      waiting.cancel();
      return outcome;
    }
    return waiting.promise;
  }

  /**
   * The document a repeat's first command is about, read from its entry in the command stream: a
   * contact id the server made is the first request's, not the one made for the repeat. Undefined
   * when the entry is gone (applied and archived since) or names no document.
   */
  async function firstTarget(ws: string, position: string): Promise<string | undefined> {
    const command = await commandAt(redis, ws, position);
    return command ? ownTarget(command as unknown as Command) : undefined;
  }

  /** The one mapping from the ways the command path fails to their answers (problem+json, or 202). */
  function answerFailure(req: FastifyRequest, reply: FastifyReply, failure: CommandFailure): FastifyReply {
    // A repeat's first outcome is replayed; a key reused for another request is refused, not replayed.
    if (
      failure._tag !== 'IdempotencyKeyReused' &&
      'submitted' in failure &&
      failure.submitted?.appended.repeated
    )
      reply.header('idempotent-replayed', 'true');
    switch (failure._tag) {
      case 'InvalidRequest':
        return sendProblem(reply, failure.problem);
      case 'RedisUnavailable':
        req.log.warn({ err: failure.error.message }, redisUnavailableLog(failure.error));
        return sendProblem(reply.header('retry-after', '1'), redisUnavailable(failure.error));
      case 'Failed':
        req.log.error({ err: failure.error }, `request failed; answered 500. ${REPORT_DEFECT}`);
        return sendProblem(reply, internalError(req.id));
      case 'IdempotencyKeyReused':
        return sendProblem(
          reply,
          problem(
            422,
            'idempotency-key-reused',
            'Idempotency-Key reused',
            `The key "${failure.submitted.idempotencyKey}" was first used for a different request; use a new key for a new request.`,
            // The header is the part of the request at fault: named as a 400 names a bad field.
            {
              errors: [
                {
                  path: 'Idempotency-Key',
                  message:
                    'was first used for a different request (another method, route or body): use a new key for a new request',
                },
              ],
            },
          ),
        );
      case 'NotReplicated': {
        const { command, appended } = failure.submitted;
        req.log.warn(
          { type: command.type, position: appended.position, replicaWaitMs: config.replicaWaitMs },
          `no replica confirmed the command; answered 503 not-replicated (it may still apply). Check that the workspace's Redis master has a replica connected and keeping up (INFO replication: connected_slaves, each one's lag), or raise REPLICA_WAIT_MS (at most 1500; now ${config.replicaWaitMs})`,
        );
        return sendProblem(
          reply.header('retry-after', '1'),
          problem(
            503,
            'not-replicated',
            'Not yet replicated',
            `Command ${appended.commandId} WAS appended (position ${appended.position}) and may still be applied, but no replica confirmed it within ${config.replicaWaitMs} ms, so it is not acknowledged. Do not send it again with a new key: retry with the same Idempotency-Key to learn its outcome (it is never appended twice).`,
            {
              applied: 'unknown',
              appended: true,
              position: appended.position,
              commandId: appended.commandId,
              // The document it is about, as a 202 names it: the contact id the server made.
              ...(failure.target !== undefined ? { id: failure.target } : {}),
            },
          ),
        );
      }
      case 'TimedOut': {
        const { command, appended } = failure.submitted;
        req.log.info(
          { type: command.type, position: appended.position, waitedMs: config.commandTimeoutMs },
          'no outcome in time; answered 202 (the command is appended and will be applied)',
        );
        // The document the command is about, so that a client told only "accepted" can read it
        // (a contact id the server made is known to it no other way); a command that makes one
        // (POST /agents, POST /contacts) says where it will be, as its 201 would.
        if (failure.target !== undefined && CREATES.has(command.type))
          reply.header('location', locationOf(req, failure.target));
        return reply.code(202).send({
          position: appended.position,
          commandId: appended.commandId,
          ...(failure.target !== undefined ? { id: failure.target } : {}),
        });
      }
      case 'Refused':
        return sendProblem(reply, failure.outcome.body as never);
    }
  }

  function answerApplied(
    req: FastifyRequest,
    reply: FastifyReply,
    { submitted, outcome }: Applied,
  ): FastifyReply {
    if (submitted.appended.repeated) reply.header('idempotent-replayed', 'true');
    if (outcome.status === 201) {
      const id = (outcome.body as { id?: string }).id;
      if (id) reply.header('location', locationOf(req, id));
    }
    // A contact's `excludedAgents` as routing reads it, its last 100 (API.md, "Documents").
    return reply.code(outcome.status).type('application/json').send(boundedView(outcome.body));
  }

  app.post(
    '/agents',
    commandRoute(WorkspaceParams, bodyOf(RegisterAgentBody), (_, b) => ({
      type: 'RegisterAgent',
      agentId: b.id,
      skills: b.skills,
      capacity: b.capacity ?? 1,
      ...(b.name !== undefined ? { name: b.name } : {}),
      ...(b.wrapUpMs !== undefined ? { wrapUpMs: b.wrapUpMs } : {}),
    })),
  );

  app.patch(
    '/agents/:id',
    commandRoute(AgentParams, changeOf, (p, b) => ({ type: 'UpdateAgent', agentId: p.id, ...b })),
  );

  app.post(
    '/agents/:id/state',
    commandRoute(AgentParams, bodyOf(ChangeAgentStateBody), (p, b) => ({
      type: 'ChangeAgentState',
      agentId: p.id,
      state: b.state,
    })),
  );

  app.delete(
    '/agents/:id',
    commandRoute(AgentParams, noBody, (p) => ({ type: 'RemoveAgent', agentId: p.id })),
  );

  app.post(
    '/contacts',
    commandRoute(WorkspaceParams, queueBody, (_, b) => ({
      type: 'QueueContact',
      contactId: b.id ?? randomUUID(),
      skills: b.skills,
      priority: b.priority ?? 0,
      ...(b.attributes !== undefined ? { attributes: b.attributes } : {}),
      ...(b.maxWaitMs !== undefined ? { maxWaitMs: b.maxWaitMs } : {}),
      channel: b.channel ?? DEFAULT_CHANNEL,
      ...(b.steps !== undefined ? { steps: b.steps } : {}),
      ...(b.preferredAgents !== undefined
        ? { preferredAgents: b.preferredAgents, preferredForMs: b.preferredForMs ?? DEFAULT_PREFERRED_FOR_MS }
        : {}),
    })),
  );

  app.post(
    '/contacts/:id/abandon',
    commandRoute(ContactParams, noBody, (p) => ({ type: 'AbandonContact', contactId: p.id })),
  );

  app.post(
    '/contacts/:id/complete',
    commandRoute(ContactParams, noBody, (p, _, req) => ({
      type: 'CompleteContact',
      contactId: p.id,
      // An agent key's completion names its agent: the contact may leave it (a transfer, and an
      // assignment to another) between the key's check (auth.ts) and the command's turn.
      ...(req.principal?.role === 'agent' && req.principal.agentId !== undefined
        ? { agentId: req.principal.agentId }
        : {}),
    })),
  );

  // Back to the queue with new skills; the agent's assignment ends as with a completion.
  app.post(
    '/contacts/:id/transfer',
    commandRoute(ContactParams, bodyOf(TransferBody), (p, b) => ({
      type: 'TransferContact',
      contactId: p.id,
      skills: b.skills,
      ...(b.priority !== undefined ? { priority: b.priority } : {}),
    })),
  );

  // The agent answers the offer it holds (the body names the agent: the one offered, else 409).
  app.post(
    '/contacts/:id/accept',
    commandRoute(ContactParams, bodyOf(OfferAnswerBody), (p, b) => ({
      type: 'AcceptOffer',
      contactId: p.id,
      agentId: b.agentId,
    })),
  );

  app.post(
    '/contacts/:id/reject',
    commandRoute(ContactParams, bodyOf(OfferAnswerBody), (p, b) => ({
      type: 'RejectOffer',
      contactId: p.id,
      agentId: b.agentId,
    })),
  );

  // PUT replaces the settings whole: a field left out takes its default, not its current value;
  // but channels left out stay as they are (channels are added, never removed).
  app.put(
    '/settings',
    commandRoute(WorkspaceParams, bodyOf(SettingsBody), (_, b) => ({
      type: 'ChangeSettings',
      offerTimeoutMs: b.offerTimeoutMs ?? DEFAULT_SETTINGS.offerTimeoutMs,
      wrapUpMs: b.wrapUpMs ?? DEFAULT_SETTINGS.wrapUpMs,
      missedOfferPresence: b.missedOfferPresence ?? DEFAULT_SETTINGS.missedOfferPresence,
      maxWaitMs: b.maxWaitMs !== undefined ? b.maxWaitMs : DEFAULT_SETTINGS.maxWaitMs,
      ...(b.channels !== undefined ? { channels: b.channels } : {}),
      ...(b.priorityWeightMs != null ? { priorityWeightMs: b.priorityWeightMs } : {}),
      ...(b.agentSelection !== undefined && b.agentSelection !== 'longest-available'
        ? { agentSelection: b.agentSelection }
        : {}),
    })),
  );
}
