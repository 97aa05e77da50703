/**
 * A live feed still replaying its history when Redis came back with less: the tail told its feeds
 * where it reads on from (the events appended since the loss lie below the lost positions, the
 * returning Redis's clock behind the lost one's), but a feed replaying passed that over, and at
 * the hand-over to the live events it dropped the ones it had held as at or before the lost
 * position it was done with: it missed every event appended since the loss until the log passed
 * that position. It now goes on from the tail's position at the hand-over, as a live feed does at
 * once. The feed is kept replaying by a reader that reads nothing while its replay fills the
 * send buffer (64 KiB here); the loss is made by hand in one transaction on a real Redis.
 */
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { sleep, waitFor } from '../support/wait.ts';

const WS = 'rollback-replay';
// The API role alone: the events are written into the stream directly.
const api = inProcessApi([WS, `${WS}-held`, `${WS}-after`, `${WS}-new`], {
  env: { ROLES: 'api', LIVE_MAX_BUFFERED_BYTES: String(64 * 1024) },
});
let client: ReturnType<typeof api.server.client>;
afterAll(() => client?.disconnect());

const fields = (ws: string, n: string, pad = 0) => [
  'type',
  'ContactQueued',
  'event',
  JSON.stringify({
    type: 'ContactQueued',
    workspace: ws,
    at: new Date().toISOString(),
    data: { id: n, notes: 'n'.repeat(pad) },
  }),
];

/** A feed of the workspace (`query` added), and the ids of the events it received. */
async function feed(ws: string, query = ''): Promise<{ socket: WebSocket; got: string[] }> {
  const socket = new WebSocket(
    `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${ws}/events/live?heartbeat=0${query}`,
  );
  const got: string[] = [];
  socket.on('message', (m) => got.push((JSON.parse(String(m)) as { data: { id: string } }).data.id));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return { socket, got };
}

/**
 * The loss while a feed replays: `lost` is the last event before it, appended before the feed
 * opened (its replay read it) or while it replays (its tail handed it out: held). Answers what the
 * replaying feed got.
 */
async function lossWhileReplaying(
  ws: string,
  lostWhen: 'before the feed' | 'while it replays',
  n1When: 'before the hand-over' | 'after it' = 'before the hand-over',
) {
  const key = workspaceKeys(ws).events;
  // A history of 400 events of 15 KB (6 MB: more than the kernel's buffers take), then the last
  // event before the loss, by a clock two minutes ahead of this Redis's.
  const history = Array.from({ length: 400 }, (_, i) => `h${i}`);
  const writes = client.pipeline();
  for (const id of history) writes.xadd(key, '*', ...fields(ws, id, 15_000));
  await writes.exec();
  const end = (await client.xrevrange(key, '+', '-', 'COUNT', 1))[0]![0];
  const watch = await feed(ws);
  const lost = `${Date.now() + 120_000}-0`;
  const appendLost = async () => {
    await client.xadd(key, lost, ...fields(ws, 'lost'));
    await waitFor('the watching feed has it', () => watch.got.includes('lost'));
  };
  if (lostWhen === 'before the feed') await appendLost();

  // The replaying feed: its reader takes nothing until the replay has filled the send buffer.
  const replaying = await feed(ws, '&after=0-0');
  replaying.socket.pause();
  const full = () => [...api.running.api!.websocketServer.clients].some((c) => c.bufferedAmount > 64 * 1024);
  await waitFor('the replay written past the limit', full, { everyMs: 20 });
  if (lostWhen === 'while it replays') await appendLost();

  // Redis back with less: the history as the copy held it (all but the lost event, the stream's
  // last position its last event's), then an event appended since, below the lost one.
  // (As the admin: Switchboard's own user may not set a stream's last position.)
  const admin = api.server.adminClient();
  await admin.multi().xdel(key, lost).xsetid(key, end).exec();
  admin.disconnect();
  if (n1When === 'after it') {
    // The tail notices the loss within its 5 s read (nothing wakes it before): then the hand-over,
    // then n1.
    await sleep(7000);
    expect(full(), 'the feed still replaying when the tail moved back').toBe(true);
    replaying.socket.resume();
    await waitFor('the replay read', () => replaying.got.includes(history.at(-1)!));
    await sleep(200);
  }
  await client.xadd(key, '*', ...fields(ws, 'n1'));
  await waitFor('the watching feed gets n1', () => watch.got.includes('n1'), { timeoutMs: 15_000 });
  await sleep(100);
  if (n1When === 'before the hand-over')
    expect(full(), 'the feed still replaying when the tail handed n1 out').toBe(true);

  replaying.socket.resume();
  await waitFor('the replaying feed gets n1', () => replaying.got.includes('n1'), { timeoutMs: 5000 }).catch(
    () => undefined,
  );
  const got = [...replaying.got];
  // And goes on with what comes next.
  await client.xadd(key, '*', ...fields(ws, 'n2'));
  await waitFor('both get n2', () => replaying.got.includes('n2') && watch.got.includes('n2'));
  expect(replaying.got.slice(got.length)).toEqual(['n2']);
  watch.socket.close();
  replaying.socket.close();
  return { history, got };
}

it('a feed replaying when the tail moves back gets the events appended since the loss', async () => {
  client = api.server.client();
  const { history, got } = await lossWhileReplaying(WS, 'before the feed');
  expect(got).toEqual([...history, 'lost', 'n1']);
}, 60_000);

it('a lost event the tail handed out while the feed replayed is dropped, and what came since delivered once', async () => {
  client = api.server.client();
  const { history, got } = await lossWhileReplaying(`${WS}-held`, 'while it replays');
  expect(got).toEqual([...history, 'n1']);
}, 60_000);

it('a feed whose replay held a lost event gets what is appended after its hand-over', async () => {
  client = api.server.client();
  const { history, got } = await lossWhileReplaying(`${WS}-after`, 'while it replays', 'after it');
  expect(got).toEqual([...history, 'n1']);
}, 60_000);

it('a feed that replayed events appended since the loss before the tail noticed it gets none twice', async () => {
  client = api.server.client();
  const ws = `${WS}-new`;
  const key = workspaceKeys(ws).events;
  const history = Array.from({ length: 10 }, (_, i) => `h${i}`);
  for (const id of history) await client.xadd(key, '*', ...fields(ws, id));
  const end = (await client.xrevrange(key, '+', '-', 'COUNT', 1))[0]![0];
  const watch = await feed(ws);
  const lost = `${Date.now() + 120_000}-0`;
  await client.xadd(key, lost, ...fields(ws, 'lost'));
  await waitFor('the watching feed has it', () => watch.got.includes('lost'));
  const admin = api.server.adminClient();
  await admin.multi().xdel(key, lost).xsetid(key, end).exec();
  admin.disconnect();
  await client.xadd(key, '*', ...fields(ws, 'n1'));
  // Opened before the tail notices the loss (within its 5 s read): its replay reads n1 itself.
  const replayed = await feed(ws, '&after=0-0');
  await waitFor('the replay has n1', () => replayed.got.includes('n1'));
  await waitFor('the watching feed gets n1 (the tail noticed)', () => watch.got.includes('n1'), {
    timeoutMs: 15_000,
  });
  await client.xadd(key, '*', ...fields(ws, 'n2'));
  await waitFor('both get n2', () => replayed.got.includes('n2') && watch.got.includes('n2'));
  await sleep(200);
  expect(replayed.got).toEqual([...history, 'n1', 'n2']);
  watch.socket.close();
  replayed.socket.close();
}, 60_000);
