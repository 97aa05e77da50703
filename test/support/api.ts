/**
 * One Switchboard in process for a suite, against its own Redis, with authentication off unless
 * its `env` turns it on (most suites using it test routing through the API, not keys):
 * `inProcessApi(workspaces)` in the body of a file or `describe`, and its `call`/`ok`/`problem`/
 * `until` helpers (which send no key).
 */
import { type Logger, pino } from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { projectorReady } from './projector.ts';
import { startTestRedis, type TestRedis } from './redis.ts';
import { waitFor } from './wait.ts';

export type Json = Record<string, unknown>;
export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface Answer {
  readonly status: number;
  readonly type: string;
  readonly body: Json;
}

export interface InProcessApi {
  /** The running instance (its Redis client is `running.redis`). */
  readonly running: Running;
  /** Its Redis (for an admin client: `server.adminClient()`). */
  readonly server: TestRedis;
  /** Any request, its answer as it came. */
  call(method: Method, url: string, payload?: unknown): Promise<Answer>;
  /** A request under `/v1/workspaces/{ws}` that must succeed: its body. */
  ok(method: Method, ws: string, path: string, payload?: unknown): Promise<Json>;
  /** A request under `/v1/workspaces/{ws}` that must answer this documented problem: its body. */
  problem(
    method: Method,
    ws: string,
    path: string,
    payload: unknown,
    status: number,
    type: string,
  ): Promise<Json>;
  /** GETs `path` until `good` holds for the body (5 s unless given): that body. */
  until(ws: string, path: string, good: (v: Json) => boolean, timeoutMs?: number): Promise<Json>;
}

/** `env`: settings on top of the suite's (e.g. ROLES, COMMAND_TIMEOUT_MS); `logger`: silent unless given. */
export function inProcessApi(
  workspaces: readonly string[],
  opts: { readonly env?: Readonly<Record<string, string>>; readonly logger?: Logger } = {},
): InProcessApi {
  let redis: TestRedis;
  let running: Running;
  beforeAll(async () => {
    redis = await startTestRedis();
    const config = loadConfig({
      AUTH: 'off',
      ...redis.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      COMMAND_TIMEOUT_MS: '2000',
      // Stopped at once (its drain, /health 503 while it serves on, is test/e2e/drain-edges-1.test.ts's).
      LB_DRAIN_MS: '0',
      WORKSPACES: workspaces.join(','),
      DISCOVER_WORKSPACES: 'false',
      ...opts.env,
    });
    running = await startSwitchboard(config, opts.logger ?? pino({ level: 'silent' }));
    // An instance with no projector (ROLES=api) makes no consumer group to wait for.
    if (config.roles.includes('projector')) await projectorReady(running.redis, workspaces);
  });
  afterAll(async () => {
    await running?.stop();
    await redis?.stop();
  });

  const call = async (method: Method, url: string, payload?: unknown): Promise<Answer> => {
    if (!running.api) throw new Error('this instance runs no api role');
    const res = await running.api.inject({
      method,
      url,
      ...(payload !== undefined ? { payload: payload as Json } : {}),
    });
    return { status: res.statusCode, type: String(res.headers['content-type']), body: res.json() as Json };
  };
  const at = (ws: string, path: string) => `/v1/workspaces/${ws}${path}`;
  const ok = async (method: Method, ws: string, path: string, payload?: unknown): Promise<Json> => {
    const r = await call(method, at(ws, path), payload);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    return r.body;
  };
  return {
    get running() {
      return running;
    },
    get server() {
      return redis;
    },
    call,
    ok,
    async problem(method, ws, path, payload, status, type) {
      const r = await call(method, at(ws, path), payload);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body.type).toBe(`/problems/${type}`);
      expect((PROBLEM_TYPES as Record<string, number>)[type]).toBe(status);
      return r.body;
    },
    async until(ws, path, good, timeoutMs = 5000) {
      let last: Json | undefined;
      const r = await waitFor(
        () => `${path} to hold, last ${JSON.stringify(last)}`,
        async () => {
          last = await ok('GET', ws, path);
          return good(last) ? { value: last } : undefined;
        },
        { timeoutMs, everyMs: 20 },
      );
      return r.value;
    },
  };
}
