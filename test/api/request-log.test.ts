/**
 * The API's request log (src/adapters/http/request-log.ts), in-process against a real Redis:
 * one line per request, written after the answer, with method, URL, status, time and client
 * address, and for a command its id, type and position; health checks (`/health`, `/status`)
 * not at info. The client address comes from X-Forwarded-For only when the request arrives from
 * a proxy named in TRUST_PROXY; TRUST_PROXY takes addresses and CIDRs and refuses anything else.
 *
 * The command id in every line of a command's path: an API, a projector and a dispatcher (three
 * instances, each with its own log, on the same Redis) and a command the projector refuses, one
 * whose outcome comes too late (202), one no replica confirms (503), and a timer's command (a
 * contact's maxWaitMs): each line about the command, in each log, names its id (and the API's
 * request id where there is a request).
 */
import http from 'node:http';
import { Writable } from 'node:stream';
import { type Cluster, Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestLevel } from '../../src/adapters/http/request-log.ts';
import { parseFields } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { ConfigError, loadConfig } from '../../src/app/config.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const WS = 'api-request-log';
type Line = Record<string, unknown>;

/** A pino logger writing into `into`, one parsed object per line. */
function collecting(into: Line[], level = 'info') {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') into.push(JSON.parse(l) as Line);
      done();
    },
  });
  return pino({ level }, sink);
}

let redis: TestRedis;
let running: Running;
const lines: Line[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  running = await startSwitchboard(
    loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      TRUST_PROXY: '127.0.0.1,10.231.1.0/24',
      // Every request's line at info, so the tests below read them all (the levels: a test of its own).
      SLOW_REQUEST_MS: '0',
    }),
    collecting(lines),
  );
  await projectorReady(running.redis, [WS]);
});

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

/** The request lines logged for requests carrying this request id. */
function requestLines(reqId: string): Line[] {
  return lines.filter(
    (l) => l.reqId === reqId && l.level !== undefined && !String(l.msg).startsWith('redis unavailable'),
  );
}

async function inject(opts: {
  method: 'GET' | 'POST';
  url: string;
  from: string;
  forwardedFor?: string;
  payload?: unknown;
}): Promise<{ status: number; reqId: string }> {
  const r = await running.api!.inject({
    method: opts.method,
    url: opts.url,
    remoteAddress: opts.from,
    headers: {
      ...(opts.forwardedFor ? { 'x-forwarded-for': opts.forwardedFor } : {}),
      ...(opts.payload
        ? { 'content-type': 'application/json', 'idempotency-key': `k-${Math.random()}` }
        : {}),
    },
    ...(opts.payload ? { payload: JSON.stringify(opts.payload) } : {}),
  });
  return { status: r.statusCode, reqId: String(r.headers['x-request-id']) };
}

describe('the request log', () => {
  it('is at debug for a quick success, at info when refused, answered 202 or slow, at warn for 5xx', async () => {
    expect(requestLevel(201, 3, '/v1/workspaces/:ws/contacts', 1000)).toBe('debug');
    expect(requestLevel(201, 1000, '/v1/workspaces/:ws/contacts', 1000)).toBe('info');
    expect(requestLevel(202, 2000, '/v1/workspaces/:ws/contacts', 5000)).toBe('info');
    expect(requestLevel(404, 1, '/v1/workspaces/:ws/contacts/:id', 1000)).toBe('info');
    expect(requestLevel(503, 1, '/v1/workspaces/:ws/contacts', 1000)).toBe('warn');
    expect(requestLevel(200, 5000, '/health', 1000)).toBe('debug');
    expect(requestLevel(503, 1, '/health', 1000)).toBe('debug');
    expect(requestLevel(503, 1, '/status', 1000)).toBe('warn');
    // A real instance at info with the default (1000 ms): a quick success writes no line, the 404
    // one. The success is a query: a command's 201 waits for a projector, which a loaded machine can
    // hold past the threshold (an info line, rightly).
    const mine: Line[] = [];
    const other = await startSwitchboard(
      loadConfig({
        AUTH: 'off',
        ...redis.env,
        PORT: '0',
        ROLES: 'api',
        WORKSPACES: WS,
        DISCOVER_WORKSPACES: 'false',
      }),
      collecting(mine),
    );
    try {
      const ok = await other.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/settings` });
      expect(ok.statusCode).toBe(200);
      const missing = await other.api!.inject({ method: 'GET', url: `/v1/workspaces/${WS}/agents/nobody` });
      expect(missing.statusCode).toBe(404);
      const requests = mine.filter((l) => l.msg === 'request');
      expect(requests).toMatchObject([{ level: 30, status: 404, reqId: missing.headers['x-request-id'] }]);
    } finally {
      await other.stop();
    }
  });

  it('writes one line per command request, with the command id and the forwarded client address', async () => {
    const r = await inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/agents`,
      from: '127.0.0.1',
      forwardedFor: '203.0.113.7',
      payload: { id: 'log-agent', skills: ['English'] },
    });
    expect(r.status).toBe(201);
    const mine = requestLines(r.reqId);
    expect(mine, JSON.stringify(mine)).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      level: 30,
      msg: 'request',
      method: 'POST',
      url: `/v1/workspaces/${WS}/agents`,
      status: 201,
      ip: '203.0.113.7',
      type: 'RegisterAgent',
      repeated: false,
    });
    expect(mine[0]!.commandId).toMatch(/^[0-9a-f-]{36}$/);
    expect(mine[0]!.position).toMatch(/^\d+-\d+$/);
    expect(typeof mine[0]!.ms).toBe('number');
  });

  it("names the command in the projector's line too when the API's process applies it (api and projector roles in one process)", async () => {
    const r = await inject({
      method: 'POST',
      url: `/v1/workspaces/${WS}/agents/nobody-at-all/state`,
      from: '127.0.0.1',
      payload: { state: 'available' },
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    const [request] = requestLines(r.reqId);
    const commandId = String(request?.commandId);
    expect(commandId).toMatch(/^[0-9a-f-]{36}$/);
    const refused = await waitFor('the refusal line', () =>
      lines.find((l) => l.msg === 'command refused' && l.commandId === commandId),
    );
    expect(refused).toMatchObject({
      requestId: r.reqId,
      type: 'ChangeAgentState',
      status: r.status,
      workspace: WS,
    });
  });

  it('takes X-Forwarded-For from a trusted proxy (a CIDR too), and never from anyone else', async () => {
    const viaLb = await inject({
      method: 'GET',
      url: `/v1/workspaces/${WS}/agents`,
      from: '10.231.1.12',
      forwardedFor: '198.51.100.4',
    });
    const direct = await inject({
      method: 'GET',
      url: `/v1/workspaces/${WS}/agents`,
      from: '192.0.2.9',
      forwardedFor: '198.51.100.4',
    });
    expect(requestLines(viaLb.reqId)).toMatchObject([{ ip: '198.51.100.4', status: 200, msg: 'request' }]);
    expect(requestLines(direct.reqId)).toMatchObject([{ ip: '192.0.2.9', status: 200, msg: 'request' }]);
  });

  it('answers with the request id it logs and records, a new one for an X-Request-Id given twice', async () => {
    // Two X-Request-Id headers, the second empty: Node joins them into "dup-id, ", which is no id
    // the client gave, so the request is served under a new one: the id answered, logged and
    // recorded with the command is that one, the same in all three.
    const body = JSON.stringify({ id: 'dup-req-agent', skills: ['English'] });
    const answered = await new Promise<{ status: number; id: unknown }>((resolve, reject) => {
      const req = http.request(
        `${running.url}/v1/workspaces/${WS}/agents`,
        {
          method: 'POST',
          // Headers as raw pairs (Node adds none of its own then: Host and the length are here).
          headers: [
            ...['host', new URL(running.url!).host, 'content-type', 'application/json'],
            ...['content-length', String(Buffer.byteLength(body))],
            ...['x-request-id', 'dup-id', 'x-request-id', ''],
          ],
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, id: res.headers['x-request-id'] }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(answered.status).toBe(201);
    const id = String(answered.id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(requestLines(id)).toMatchObject([{ msg: 'request', status: 201 }]);
    const recorded = (await running.redis.xrange(workspaceKeys(WS).commands, '-', '+'))
      .map(([, f]) => parseFields(f))
      .filter((f) => String(f.command).includes('dup-req-agent'));
    expect(recorded.map((f) => f.requestId)).toEqual([id]);
  });

  it('takes an X-Request-Id of 1..128 printable ASCII characters; any other is replaced by a new one', async () => {
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    /** POST /agents with this X-Request-Id: the id answered, and the one recorded with the command. */
    const register = async (given: string, agent: string) => {
      const r = await running.api!.inject({
        method: 'POST',
        url: `/v1/workspaces/${WS}/agents`,
        headers: { 'content-type': 'application/json', 'x-request-id': given },
        payload: JSON.stringify({ id: agent, skills: ['English'] }),
      });
      expect(r.statusCode, r.body).toBe(201);
      const id = String(r.headers['x-request-id']);
      const recorded = (await running.redis.xrange(workspaceKeys(WS).commands, '-', '+'))
        .map(([, f]) => parseFields(f))
        .filter((f) => String(f.command).includes(`"${agent}"`))
        .map((f) => f.requestId);
      expect(recorded).toEqual([id]);
      expect(requestLines(id)).toMatchObject([{ msg: 'request', status: 201 }]);
      return id;
    };
    const longest = `r${'x'.repeat(126)}:`;
    expect(await register(longest, 'rid-128')).toBe(longest);
    expect(await register('trace 7/a=b', 'rid-spaces')).toBe('trace 7/a=b');
    // 129 characters, 8 KB (under Node's header cap), a control character, a Latin-1 byte:
    // none is written into the logs and events; the request is served under a new id.
    for (const [given, agent] of [
      [`q${'z'.repeat(128)}`, 'rid-129'],
      ['y'.repeat(8000), 'rid-8k'],
      ['a\tb', 'rid-tab'],
      ['caf\u00e9', 'rid-latin1'],
    ] as const) {
      const id = await register(given, agent);
      expect(id, agent).toMatch(UUID);
      expect(
        lines.some((l) => JSON.stringify(l).includes(given.slice(0, 40))),
        agent,
      ).toBe(false);
    }
  });

  it('does not log health checks at info', async () => {
    for (const url of ['/health', '/status']) {
      const r = await inject({ method: 'GET', url, from: '127.0.0.1' });
      expect(r.status).toBe(200);
      expect(requestLines(r.reqId), url).toEqual([]);
    }
  });

  it('is off by default: without TRUST_PROXY, X-Forwarded-For is ignored', () => {
    expect(loadConfig({}).trustProxy).toEqual([]);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,::1' }).trustProxy).toEqual([
      '10.0.0.5',
      '10.1.0.0/16',
      '::1',
    ]);
    for (const bad of ['haproxy', '10.0.0.0/33', '10.0.0.1/8/2']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });
});

describe("the command id in every line of a command's path", () => {
  const PATH_WS = 'command-path-log';
  /** Served by no projector: its commands are appended and never applied (202). */
  const UNSERVED_WS = 'command-path-unserved';
  const logs = {
    api: [] as Line[],
    projector: [] as Line[],
    dispatcher: [] as Line[],
    replicated: [] as Line[],
  };
  const instances: Running[] = [];
  let api: Running;
  let replicated: Running;

  beforeAll(async () => {
    const base = {
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      WORKSPACES: PATH_WS,
      DISCOVER_WORKSPACES: 'false',
      SLOW_REQUEST_MS: '0', // every request line at info: the paths below read them
    };
    const start = async (env: Record<string, string>, into: Line[], level: string) => {
      const r = await startSwitchboard(loadConfig({ ...base, ...env }), collecting(into, level));
      instances.push(r);
      return r;
    };
    await start({ ROLES: 'projector' }, logs.projector, 'debug');
    await start({ ROLES: 'dispatcher' }, logs.dispatcher, 'debug');
    api = await start({ ROLES: 'api', COMMAND_TIMEOUT_MS: '1500' }, logs.api, 'info');
    // A standalone Redis has no replica: with replicated durability no command is confirmed.
    replicated = await start(
      { ROLES: 'api', DURABILITY: 'replicated', REPLICA_WAIT_MS: '50' },
      logs.replicated,
      'info',
    );
    await projectorReady(api.redis, [PATH_WS]);
  });

  afterAll(async () => {
    for (const r of instances.reverse()) await r.stop();
  });

  async function post(via: Running, url: string, payload: unknown) {
    const r = await via.api!.inject({
      method: 'POST',
      url,
      remoteAddress: '127.0.0.1',
      headers: { 'content-type': 'application/json', 'idempotency-key': `k-${Math.random()}` },
      payload: JSON.stringify(payload),
    });
    return { status: r.statusCode, reqId: String(r.headers['x-request-id']), body: r.json() as Line };
  }

  /** The pids of the cluster's replicas (all local processes). */
  /**
   * The process ids of every replica the cluster knows (CLUSTER NODES, not the client's pool,
   * which may not list a replica still syncing: one left running would confirm the write).
   */
  async function replicaPids(): Promise<number[]> {
    const admin = redis.adminClient() as Cluster;
    try {
      await admin.ping();
      const table = String(await admin.nodes('master')[0]!.call('CLUSTER', 'NODES'));
      const replicas = table
        .split('\n')
        .map((line) => line.split(' '))
        .filter((f) => f[2]?.split(',').includes('slave'))
        .map((f) => f[1]!.split('@')[0]!);
      const pids: number[] = [];
      for (const address of replicas) {
        const [host, port] = [
          address.slice(0, address.lastIndexOf(':')),
          address.slice(address.lastIndexOf(':') + 1),
        ];
        const u = new URL(redis.adminUrl);
        const node = new Redis({
          host,
          port: Number(port),
          username: decodeURIComponent(u.username),
          password: decodeURIComponent(u.password),
          maxRetriesPerRequest: 1,
        });
        try {
          pids.push(Number(/process_id:(\d+)/.exec(String(await node.info('server')))?.[1]));
        } finally {
          node.disconnect();
        }
      }
      expect(pids.length).toBeGreaterThan(0);
      expect(pids.every((p) => p > 0)).toBe(true);
      return pids;
    } finally {
      admin.disconnect();
    }
  }

  /** The lines of `log` that are about `commandId`, or mention it anywhere. */
  const about = (log: Line[], commandId: string) =>
    log.filter((l) => l.commandId === commandId || JSON.stringify(l).includes(commandId));

  it('a command the projector refuses: the request line and the projector line name it, with the request id', async () => {
    const r = await post(api, `/v1/workspaces/${PATH_WS}/agents/nobody-here/state`, { state: 'available' });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    const commandId = String(r.body.commandId);
    expect(commandId).toMatch(/^[0-9a-f-]{36}$/);
    const apiLines = about(logs.api, commandId);
    expect(apiLines).toMatchObject([
      { msg: 'request', reqId: r.reqId, commandId, status: r.status, type: 'ChangeAgentState' },
    ]);
    const refused = await waitFor('the projector line', () => {
      const found = about(logs.projector, commandId);
      return found.length > 0 ? found : undefined;
    });
    expect(refused).toMatchObject([
      {
        msg: 'command refused',
        commandId,
        requestId: r.reqId,
        type: 'ChangeAgentState',
        status: r.status,
        problem: r.body.type,
        workspace: PATH_WS,
      },
    ]);
    // Every line in the API log that carries a command id carries a request id too.
    for (const l of logs.api.filter((x) => x.commandId !== undefined))
      expect(l.reqId, JSON.stringify(l)).toBeDefined();
  });

  it('an outcome that comes too late (202): the line saying so and the request line name the command', async () => {
    const r = await post(api, `/v1/workspaces/${UNSERVED_WS}/agents`, { id: 'late', skills: ['English'] });
    expect(r.status).toBe(202);
    const commandId = String(r.body.commandId);
    const mine = about(logs.api, commandId);
    expect(mine.map((l) => l.msg)).toEqual([
      expect.stringMatching(/no outcome in time; answered 202/),
      'request',
    ]);
    for (const l of mine) expect(l).toMatchObject({ commandId, reqId: r.reqId });
    expect(mine[0]).toMatchObject({
      level: 30,
      waitedMs: 1500,
      type: 'RegisterAgent',
      position: r.body.position,
    });
  });

  it('a command no replica confirms (503 not-replicated): the warning and the request line name it', async () => {
    // A standalone Redis has no replica; on the cluster target the replicas are frozen meanwhile.
    const frozen = redis.target === 'cluster' ? await replicaPids() : [];
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    const r = await post(replicated, `/v1/workspaces/${PATH_WS}/agents`, {
      id: 'unconfirmed',
      skills: ['English'],
    }).finally(() => {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
    });
    expect(r.status).toBe(503);
    expect(r.body.type).toBe('/problems/not-replicated');
    const commandId = String(r.body.commandId);
    const mine = about(logs.replicated, commandId);
    expect(mine.map((l) => l.msg)).toEqual([
      // With what to do: a replica connected and keeping up, or a longer REPLICA_WAIT_MS.
      expect.stringMatching(/^no replica confirmed the command; .*replica connected.*REPLICA_WAIT_MS/),
      'request',
    ]);
    for (const l of mine) expect(l).toMatchObject({ commandId, reqId: r.reqId });
    expect(mine[0]).toMatchObject({ level: 40, position: r.body.position, type: 'RegisterAgent' });
    // Said once at start when a master has no replica to confirm a command (the standalone
    // Redis); not on the cluster, whose masters each have one.
    expect(logs.replicated.filter((l) => l.durability === 'replicated')).toEqual(
      redis.target === 'cluster'
        ? []
        : [
            expect.objectContaining({
              level: 40,
              replicas: [0],
              msg: expect.stringMatching(
                /^DURABILITY=replicated, but a Redis master has no replica connected/,
              ),
            }),
          ],
    );
  });

  it("a timer's command: the dispatcher's line that fires it and the projector's line that applies it name it", async () => {
    const r = await post(api, `/v1/workspaces/${PATH_WS}/contacts`, {
      id: 'waits-too-long',
      skills: ['Nobody'],
      maxWaitMs: 200,
    });
    expect(r.status).toBe(201);
    // The line names the commands the clock step appended, as the step returned them.
    const named = (l: Record<string, unknown>): string[] =>
      Array.isArray(l.commandIds) ? (l.commandIds as string[]) : [];
    const fired = await waitFor(
      'the timer fired',
      () =>
        logs.dispatcher.find(
          (l) => l.msg === 'timers fired' && named(l).some((id) => id.includes('waits-too-long')),
        ),
      { timeoutMs: 20_000 },
    );
    expect(fired.workspace).toBe(PATH_WS);
    const timerId = named(fired).find((id) => id.includes('waits-too-long'))!;
    expect(timerId).toMatch(/^timer:m\|waits-too-long\|\d+:\d+$/);
    const applied = await waitFor('the projector applied it', () =>
      logs.projector.find((l) => l.commandId === timerId),
    );
    expect(applied).toMatchObject({ msg: 'command applied', workspace: PATH_WS, status: expect.any(Number) });
    // The contact did expire: that command is the one that changed it.
    const contact = await api.api!.inject({
      method: 'GET',
      url: `/v1/workspaces/${PATH_WS}/contacts/waits-too-long`,
    });
    expect(contact.json()).toMatchObject({ state: expect.stringMatching(/expired|abandoned/) });
    // And the queueing command's own lines: the request line and the projector's debug line.
    const queued = String(r.body.position);
    const queueLine = logs.projector.find((l) => l.position === queued);
    expect(queueLine).toMatchObject({ msg: 'command applied', status: 201 });
    expect(about(logs.api, String(queueLine!.commandId))).toMatchObject([{ msg: 'request', reqId: r.reqId }]);
  });
});
