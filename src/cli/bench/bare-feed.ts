/**
 * The anchor of the `e2e` workload: the least a contact's way can cost on this machine, from an
 * HTTP request through Redis to a WebSocket subscriber, taken by the same load generator as
 * Switchboard. `POST /v1/workspaces/:ws/contacts` appends the body to a stream (one XADD) and
 * answers 201; a reader on a connection of its own blocks on that stream (XREAD) and sends each
 * entry to every subscriber of `/v1/workspaces/:ws/events/live` as an AssignmentMade-shaped message
 * (`type`, `at`, `data.contactId`); `POST .../contacts/:id/complete` appends to a second stream and
 * answers 200. No projection, no routing decision, no document, no outcome: the hops alone.
 * Env: REDIS_URL, PORT, HOST, BARE_KEY.
 */
import websocket from '@fastify/websocket';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import type { WebSocket } from 'ws';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url, { maxRetriesPerRequest: 2 });
const reader = new Redis(url, { maxRetriesPerRequest: null });
const key = process.env.BARE_KEY ?? 'bench-bare-feed';
const completions = `${key}:completed`;
const subscribers = new Set<WebSocket>();
const app = Fastify({ logger: false });
await app.register(websocket);

app.get('/health', async () => ({ status: 'ok' }));
app.post('/v1/workspaces/:ws/contacts', async (req, reply) => {
  const position = await redis.xadd(key, '*', 'command', JSON.stringify(req.body ?? null));
  return reply.code(201).send({ position });
});
app.post('/v1/workspaces/:ws/contacts/:id/complete', async (req, reply) => {
  const position = await redis.xadd(completions, '*', 'contactId', (req.params as { id: string }).id);
  return reply.code(200).send({ position });
});
app.get('/v1/workspaces/:ws/events/live', { websocket: true }, (socket) => {
  subscribers.add(socket);
  socket.on('close', () => subscribers.delete(socket));
});

let stopped = false;
/** Blocks on the stream and sends every entry to every subscriber, in order. */
async function feed(): Promise<void> {
  let last = '0-0';
  while (!stopped) {
    const reply = (await reader
      .xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', key, last)
      .catch(() => null)) as [string, [string, string[]][]][] | null;
    for (const [, entries] of reply ?? [])
      for (const [id, fields] of entries) {
        last = id;
        const body = JSON.parse(fields[1] ?? 'null') as { id?: string } | null;
        const message = JSON.stringify({
          type: 'AssignmentMade',
          position: id,
          at: new Date().toISOString(),
          data: { contactId: body?.id },
        });
        for (const s of subscribers) s.send(message);
      }
  }
}

const stop = () => {
  stopped = true;
  app.close().finally(() => {
    redis.disconnect();
    reader.disconnect();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// Each run starts from empty streams (a Redis given with --redis-url may hold an earlier run's).
await redis.del(key, completions);
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
void feed();
