/**
 * The baseline of the `ingest` workload: a bare fastify handler that does one XADD per
 * `POST /v1/workspaces/:ws/contacts` and answers 201. Env: REDIS_URL, PORT, HOST, BARE_KEY.
 */
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 2 });
const key = process.env.BARE_KEY ?? 'bench-bare-commands';
const app = Fastify({ logger: false });

app.get('/health', async () => ({ status: 'ok' }));
app.post('/v1/workspaces/:ws/contacts', async (req, reply) => {
  const position = await redis.xadd(key, '*', 'command', JSON.stringify(req.body ?? null));
  return reply.code(201).send({ position });
});

const stop = () => {
  app.close().finally(() => {
    redis.disconnect();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
