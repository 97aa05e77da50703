/**
 * An API instance's event tail after Redis came back with less, the events appended since the
 * loss lying below the last position it read (the returning Redis's clock behind the lost one's):
 * the tail moved back to the stream's end when it noticed, so the events appended between the
 * loss and that moment reached no live feed. It now reads on after the newest event it delivered
 * that Redis still holds, so every event appended since the loss is delivered, once. The loss is
 * made by hand on a real Redis: the stream deleted and written again as the snapshot held it, then
 * new events appended.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { TailHub } from '../../src/adapters/redis/tail.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** A workspace's tail hub on a client of its own, its event stream's key, and an event's fields. */
function tailOf(name: string) {
  const client = redis.client();
  const hub = new TailHub(client, pino({ level: 'silent' }));
  const ws = `${name}-${Date.now()}`;
  const fields = (n: string) => [
    'type',
    'ContactQueued',
    'event',
    JSON.stringify({ type: 'ContactQueued', workspace: ws, at: '2026-01-01T00:00:00.000Z', data: { n } }),
  ];
  return { client, hub, ws, key: workspaceKeys(ws).events, fields };
}

it('delivers every event appended after the loss, none twice', async () => {
  const { client, hub, ws, key, fields } = tailOf('rollback-tail');
  try {
    const tail = await hub.get(ws);
    const got: string[] = [];
    tail.subscribe((e) => got.push(e.position));
    const e1 = await client.xadd(key, '*', ...fields('e1'));
    const e2 = await client.xadd(key, '*', ...fields('e2'));
    // The last event before the loss, by a clock two minutes ahead of this Redis's.
    const lost = await client.xadd(key, `${Date.now() + 120_000}-0`, ...fields('lost'));
    await waitFor('the three delivered', () => got.length === 3);
    // Redis back as its snapshot held it (e1, e2), then two events appended before the tail looks.
    // (One transaction: a Redis comes back at once, never half of its snapshot.)
    await client
      .multi()
      .del(key)
      .xadd(key, e1!, ...fields('e1'))
      .xadd(key, e2!, ...fields('e2'))
      .exec();
    const n1 = await client.xadd(key, '*', ...fields('n1'));
    const n2 = await client.xadd(key, '*', ...fields('n2'));
    await waitFor('the events appended after the loss delivered', () => got.length >= 5, {
      timeoutMs: 15_000,
    });
    const n3 = await client.xadd(key, '*', ...fields('n3'));
    await waitFor('the next one delivered', () => got.length >= 6);
    expect(got).toEqual([e1, e2, lost, n1, n2, n3]);
  } finally {
    hub.stop();
    client.disconnect();
  }
}, 40_000);

it('a new event given the very position of the last one delivered, lost: it and those before it delivered', async () => {
  const { client, hub, ws, key, fields } = tailOf('rollback-tail-same');
  try {
    const tail = await hub.get(ws);
    const got: string[] = [];
    tail.subscribe((e) => got.push(`${e.position} ${JSON.stringify(e.envelope.data)}`));
    const e1 = await client.xadd(key, '*', ...fields('e1'));
    const lost = await client.xadd(key, `${Date.now() + 120_000}-0`, ...fields('lost'));
    await waitFor('both delivered', () => got.length === 2);
    // Back as the snapshot held it (e1), then a new event, and one at the lost one's position.
    await client
      .multi()
      .del(key)
      .xadd(key, e1!, ...fields('e1'))
      .exec();
    const n1 = await client.xadd(key, '*', ...fields('n1'));
    await client.xadd(key, lost!, ...fields('n2'));
    await waitFor('the new events delivered', () => got.length >= 4, { timeoutMs: 15_000 });
    expect(got.slice(2)).toEqual([`${n1} {"n":"n1"}`, `${lost} {"n":"n2"}`]);
  } finally {
    hub.stop();
    client.disconnect();
  }
}, 40_000);
