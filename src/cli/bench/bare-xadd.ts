/**
 * The anchors of the HTTP workloads: a bare fastify handler that does one XADD per
 * `POST /v1/workspaces/:ws/contacts` and answers 201 (`ingest`'s anchor). Env: REDIS_URL, PORT,
 * HOST, BARE_KEY.
 *
 * With BARE_FEED=1 it is also `e2e`'s anchor, the least a contact's way can cost from an HTTP
 * request through Redis to a WebSocket subscriber: a reader on a connection of its own blocks on
 * the stream (XREAD) and sends each entry to every subscriber of
 * `/v1/workspaces/:ws/events/live` as an AssignmentMade-shaped message (`type`, `at`,
 * `data.contactId`), and `POST .../contacts/:id/complete` appends to a second stream and answers
 * 200. No projection, no routing decision, no document, no outcome: the hops alone.
 */
import websocket from '@fastify/websocket';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import type { WebSocket } from 'ws';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url, { maxRetriesPerRequest: 2 });
const key = process.env.BARE_KEY ?? 'bench-bare-commands';
const withFeed = process.env.BARE_FEED === '1';
const app = Fastify({ logger: false });

app.get('/health', async () => ({ status: 'ok' }));
app.post('/v1/workspaces/:ws/contacts', async (req, reply) => {
  const position = await redis.xadd(key, '*', 'command', JSON.stringify(req.body ?? null));
  return reply.code(201).send({ position });
});

let stopFeed = (): void => {};
if (withFeed) {
  const reader = new Redis(url, { maxRetriesPerRequest: null });
  const completions = `${key}:completed`;
  const subscribers = new Set<WebSocket>();
  await app.register(websocket);
  app.post('/v1/workspaces/:ws/contacts/:id/complete', async (req, reply) => {
    const position = await redis.xadd(completions, '*', 'contactId', (req.params as { id: string }).id);
    return reply.code(200).send({ position });
  });
  app.get('/v1/workspaces/:ws/events/live', { websocket: true }, (socket) => {
    subscribers.add(socket);
    socket.on('close', () => subscribers.delete(socket));
  });
  let stopped = false;
  stopFeed = () => {
    stopped = true;
    reader.disconnect();
  };
  // Each run starts from empty streams (a Redis given with --redis-url may hold an earlier run's).
  await redis.del(key, completions);
  /** Blocks on the stream and sends every entry to every subscriber, in order. */
  const feed = async (): Promise<void> => {
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
  };
  app.addHook('onReady', async () => {
    void feed();
  });
}

const stop = () => {
  stopFeed();
  app.close().finally(() => {
    redis.disconnect();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
