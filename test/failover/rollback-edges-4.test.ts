/**
 * A live feed opened after Redis came back with less but before the instance's tail noticed: the
 * feed starts after what the tail had read, a lost position, and passed over every event appended
 * since (they lie below it, the returning Redis's clock behind the lost one's), until the log
 * passed it. The tail now tells its feeds where it reads on from, and a feed done with positions
 * past it goes on from there. The loss is made by hand in one transaction on a real Redis.
 */
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { inProcessApi } from '../support/api.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'rollback-feed';
// The API role alone: the events are written into the stream directly.
const api = inProcessApi([WS], { env: { ROLES: 'api' } });
let client: ReturnType<typeof api.server.client>;
afterAll(() => client?.disconnect());

const fields = (n: string) => [
  'type',
  'ContactQueued',
  'event',
  JSON.stringify({ type: 'ContactQueued', workspace: WS, at: new Date().toISOString(), data: { id: n } }),
];

/** A feed of the workspace, and the ids of the events it received. */
async function feed(): Promise<{ socket: WebSocket; got: string[] }> {
  const socket = new WebSocket(
    `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?heartbeat=0`,
  );
  const got: string[] = [];
  socket.on('message', (m) => got.push((JSON.parse(String(m)) as { data: { id: string } }).data.id));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return { socket, got };
}

it('a feed opened between the loss and the tail noticing it gets the events appended since', async () => {
  client = api.server.client();
  const key = workspaceKeys(WS).events;
  const first = fields('e1');
  const e1 = await client.xadd(key, '*', ...first);
  const before = await feed();
  // The last event before the loss, by a clock two minutes ahead of this Redis's.
  await client.xadd(key, `${Date.now() + 120_000}-0`, ...fields('lost'));
  await waitFor('the first feed has it', () => before.got.includes('lost'));
  await client
    .multi()
    .del(key)
    .xadd(key, e1!, ...first)
    .exec();
  const after = await feed();
  await client.xadd(key, '*', ...fields('n1'));
  await waitFor('both feeds get n1', () => before.got.includes('n1') && after.got.includes('n1'), {
    timeoutMs: 15_000,
  });
  expect(after.got).toEqual(['n1']);
  before.socket.close();
  after.socket.close();
}, 40_000);
