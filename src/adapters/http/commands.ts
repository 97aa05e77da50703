import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ChangeAgentStateBody,
  type Command,
  QueueContactBody,
  RegisterAgentBody,
  UpdateAgentBody,
} from '../../domain/commands.ts';
import { appendCommand, type CommandOutcome, fingerprintOf } from '../redis/command-log.ts';
import { waitForReplicas } from '../redis/client.ts';
import { workspaceKeys } from '../redis/keys.ts';
import { idParams, IdempotencyKey, workspaceOf } from './params.ts';
import { decodeOr400, ProblemError, problem, sendProblem } from './problem.ts';

/**
 * Command routes: decode, append to the workspace's command stream, and answer with the outcome
 * the projector gives it (201/200 or a 4xx problem), or 202 when it is not known in time.
 */
export async function commandRoutes(app: FastifyInstance): Promise<void> {
  const { redis, tails, config, metrics } = app.deps;

  async function submit(req: FastifyRequest, reply: FastifyReply, ws: string, command: Command) {
    const rawKey = req.headers['idempotency-key'];
    const idempotencyKey =
      rawKey === undefined
        ? undefined
        : decodeOr400(IdempotencyKey, rawKey, 'Idempotency-Key header', 'Idempotency-Key');
    const tail = await tails.get(ws);
    const commandId = randomUUID();
    const waiting = tail.waitOutcome(commandId, config.commandTimeoutMs);
    let appended: Awaited<ReturnType<typeof appendCommand>>;
    try {
      appended = await appendCommand(redis, {
        workspace: ws,
        command,
        commandId,
        ...(idempotencyKey !== undefined
          ? {
              idempotencyKey,
              fingerprint: fingerprintOf(req.method, req.routeOptions.url, req.params, req.body ?? null),
            }
          : {}),
        requestId: req.id,
        idempotencyTtlS: config.idempotencyTtlS,
      });
    } catch (err) {
      waiting.cancel();
      throw err;
    }
    req.log.info(
      {
        commandId: appended.commandId,
        type: command.type,
        position: appended.position,
        repeated: appended.repeated,
      },
      'command appended',
    );
    // Replicated durability: the client hears of its command only once a replica holds it.
    const replicated =
      config.durability === 'replicated'
        ? waitForReplicas(redis, workspaceKeys(ws).commands, 1, config.replicaWaitMs).catch(() => 0)
        : undefined;
    let outcome: CommandOutcome | null;
    if (appended.repeated) {
      waiting.cancel();
      reply.header('idempotent-replayed', 'true');
      if (!appended.sameRequest) {
        throw new ProblemError(
          problem(
            422,
            'idempotency-key-reused',
            'Idempotency-Key reused',
            `The key "${idempotencyKey}" was first used for a different request; use a new key for a new request.`,
          ),
        );
      }
      outcome = appended.outcome ?? (await waitRepeat(ws, idempotencyKey!, appended.commandId));
    } else {
      outcome = await waiting.promise;
    }
    if (replicated && (await replicated) < 1) {
      metrics.commands.inc({ type: command.type, status: '503' });
      reply.header('retry-after', '1');
      return sendProblem(
        reply,
        problem(
          503,
          'not-replicated',
          'Not yet replicated',
          `Command ${appended.commandId} is on the primary but no replica confirmed it within ${config.replicaWaitMs} ms; retry with the same Idempotency-Key.`,
          { position: appended.position, commandId: appended.commandId },
        ),
      );
    }
    if (!outcome) {
      metrics.commands.inc({ type: command.type, status: '202' });
      return reply.code(202).send({ position: appended.position, commandId: appended.commandId });
    }
    metrics.commands.inc({ type: command.type, status: String(outcome.status) });
    if (outcome.status === 201) {
      const id = (outcome.body as { id?: string }).id;
      if (id)
        reply.header('location', `${req.url.split('?')[0]!.replace(/\/$/, '')}/${encodeURIComponent(id)}`);
    }
    if (outcome.status >= 400) return sendProblem(reply, outcome.body as never);
    return reply.code(outcome.status).type('application/json').send(outcome.body);
  }

  /** A repeat whose first command is not applied yet: wait for it, then read the record again. */
  async function waitRepeat(ws: string, key: string, commandId: string): Promise<CommandOutcome | null> {
    const tail = await tails.get(ws);
    const waiting = tail.waitOutcome(commandId, config.commandTimeoutMs);
    const record = await redis.hget(workspaceKeys(ws).idempotency, key);
    const outcome = record ? (JSON.parse(record) as { outcome?: string }).outcome : undefined;
    if (outcome) {
      waiting.cancel();
      return JSON.parse(outcome) as CommandOutcome;
    }
    return waiting.promise;
  }

  app.post('/agents', (req, reply) => {
    const ws = workspaceOf(req.params);
    const b = decodeOr400(RegisterAgentBody, req.body, 'body');
    return submit(req, reply, ws, {
      type: 'RegisterAgent',
      agentId: b.id,
      skills: b.skills,
      capacity: b.capacity ?? 1,
      ...(b.name !== undefined ? { name: b.name } : {}),
    });
  });

  app.patch('/agents/:id', (req, reply) => {
    const { ws, id } = idParams(req.params);
    const b = decodeOr400(UpdateAgentBody, req.body, 'body');
    if (Object.keys(b).length === 0) {
      throw new ProblemError(
        problem(
          400,
          'invalid-request',
          'Invalid request',
          'The body changes nothing: give at least one of name, skills, capacity.',
          {
            errors: [{ path: '(body)', message: 'must give at least one of name, skills, capacity' }],
          },
        ),
      );
    }
    return submit(req, reply, ws, { type: 'UpdateAgent', agentId: id, ...b });
  });

  app.post('/agents/:id/state', (req, reply) => {
    const { ws, id } = idParams(req.params);
    const b = decodeOr400(ChangeAgentStateBody, req.body, 'body');
    return submit(req, reply, ws, { type: 'ChangeAgentState', agentId: id, state: b.state });
  });

  app.delete('/agents/:id', (req, reply) => {
    const { ws, id } = idParams(req.params);
    noBody(req.body);
    return submit(req, reply, ws, { type: 'RemoveAgent', agentId: id });
  });

  app.post('/contacts', (req, reply) => {
    const ws = workspaceOf(req.params);
    const b = decodeOr400(QueueContactBody, req.body, 'body');
    return submit(req, reply, ws, {
      type: 'QueueContact',
      contactId: b.id ?? randomUUID(),
      skills: b.skills,
      priority: b.priority ?? 0,
      ...(b.attributes !== undefined ? { attributes: b.attributes } : {}),
    });
  });

  app.post('/contacts/:id/abandon', (req, reply) => {
    const { ws, id } = idParams(req.params);
    noBody(req.body);
    return submit(req, reply, ws, { type: 'AbandonContact', contactId: id });
  });

  app.post('/contacts/:id/complete', (req, reply) => {
    const { ws, id } = idParams(req.params);
    noBody(req.body);
    return submit(req, reply, ws, { type: 'CompleteContact', contactId: id });
  });
}

/** Body-less commands accept nothing or an empty object. */
function noBody(body: unknown): void {
  if (body === undefined || body === null) return;
  if (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return;
  throw new ProblemError(
    problem(400, 'invalid-request', 'Invalid request', 'This command takes no body; send none (or {}).', {
      errors: [{ path: '(body)', message: 'must be empty' }],
    }),
  );
}

