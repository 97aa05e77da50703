/**
 * A live feed's upgrade answered `101` is a request like any other: docs/DEPLOYMENT.md, "Logs"
 * ("one line per request, written after the answer", `reqId` on every request line) and
 * docs/METRICS.md (`switchboard_http_request_duration_seconds`, the API's load by route). The
 * feeds an instance opened left no request line and no count (only `subscriber joined` at debug,
 * after the replay): an operator could not tell from the log or the scrape how many feeds
 * connected, nor follow a feed's X-Request-Id to its request. Now the upgrade writes its line
 * (status 101, at debug unless slower than SLOW_REQUEST_MS) and is counted by its route template.
 * An X-Request-Id of 10 kB is not taken: neither answered nor logged.
 */
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { inProcessApi } from '../support/api.ts';
import { capturedLogger } from '../support/log-capture.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'observe-feed-log';
const ROUTE = '/v1/workspaces/:ws/events/live';
const { logger, lines } = capturedLogger('debug');
const api = inProcessApi([WS], { logger, env: { LOG_LEVEL: 'debug' } });

/** Opens a feed with `requestId` as its X-Request-Id: the id answered on the 101, once open. */
async function openFeed(requestId: string): Promise<{ socket: WebSocket; answered: string }> {
  const url = `${api.running.url!.replace(/^http/, 'ws')}/v1/workspaces/${WS}/events/live?after=0-0`;
  const socket = new WebSocket(url, { headers: { 'x-request-id': requestId } });
  let answered = '';
  socket.on('upgrade', (res) => {
    answered = String(res.headers['x-request-id']);
  });
  await new Promise((resolve, reject) => socket.on('open', resolve).on('error', reject));
  return { socket, answered };
}

/** The value of one series of the instance's /metrics text (0 when absent). */
async function sample(series: string): Promise<number> {
  const text = (await api.running.api!.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

it('an accepted feed writes its request line (101, with its request id) and is counted by route', async () => {
  const count = `switchboard_http_request_duration_seconds_count{method="GET",route="${ROUTE}",status="101"}`;
  const before = await sample(count);
  const { socket, answered } = await openFeed('observe-feed-1');
  expect(answered).toBe('observe-feed-1');
  const line = await waitFor('the feed request line', () =>
    lines.find((l) => l.msg === 'request' && l.reqId === 'observe-feed-1'),
  );
  expect(line).toMatchObject({
    level: 20,
    method: 'GET',
    url: `/v1/workspaces/${WS}/events/live?after=0-0`,
    status: 101,
    ms: expect.any(Number),
  });
  socket.close();
  expect(await sample(count)).toBe(before + 1);
});

it('a 10 kB X-Request-Id on a feed is replaced: neither answered nor logged', async () => {
  const huge = `observe-${'x'.repeat(10_240)}`;
  const { socket, answered } = await openFeed(huge);
  socket.close();
  expect(answered).toMatch(/^[0-9a-f-]{36}$/);
  await waitFor('the feed request line', () =>
    lines.find((l) => l.msg === 'request' && l.reqId === answered),
  );
  expect(lines.filter((l) => JSON.stringify(l).includes('x'.repeat(129)))).toEqual([]);
});
