/**
 * `ingest`: `POST /contacts` throughput from `connections` keep-alive connections (a closed
 * loop: each sends its next request once the last is answered), against (a) a Switchboard
 * process (all roles; the answer waits for the projector's outcome) and (b) a bare fastify
 * handler doing one XADD per request on the same Redis. Both run as their own process.
 */
import { KEY_ROOT } from '../../adapters/redis/keys.ts';
import { percentile, round } from '../sim/stats.ts';
import { startSwitchboardProcess } from './e2e.ts';
import { type ChildServer, closedLoop, type LoadResult, request, startChild } from './http.ts';
import type { Note } from './workspace.ts';

export interface IngestOptions {
  readonly connections: number;
  readonly duration: number;
  readonly warmup: number;
}

export interface IngestSide {
  readonly requestsPerS: number;
  readonly requests: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly errors: number;
}

export interface IngestFigures {
  readonly switchboard: IngestSide;
  readonly bareXadd: IngestSide;
  /** Switchboard's requests/s over the bare handler's. */
  readonly ratio: number | null;
}

function side(r: LoadResult): IngestSide {
  return {
    requestsPerS: Math.round((r.requests - r.errors) / r.seconds),
    requests: r.requests,
    p50Ms: round(percentile(r.latenciesMs, 50), 2),
    p99Ms: round(percentile(r.latenciesMs, 99), 2),
    errors: r.errors,
  };
}

async function drive(server: ChildServer, workspace: string, o: IngestOptions): Promise<LoadResult> {
  const url = `${server.base}/v1/workspaces/${encodeURIComponent(workspace)}/contacts`;
  const send = (agent: Parameters<typeof request>[0]) => request(agent, 'POST', url, { skills: ['s'] });
  if (o.warmup > 0) await closedLoop(o.connections, o.warmup, send);
  return closedLoop(o.connections, o.duration, send);
}

export async function ingestWorkload(
  redisUrl: string,
  workspace: string,
  o: IngestOptions,
  note: Note,
): Promise<IngestFigures> {
  note('starting Switchboard (node --import tsx src/main.ts, all roles)');
  let server = await startSwitchboardProcess(redisUrl, workspace);
  let sb: LoadResult;
  try {
    note(`POST /contacts to Switchboard from ${o.connections} connections for ${o.duration} s`);
    sb = await drive(server, workspace, o);
  } finally {
    await server.stop();
  }
  note('starting the bare fastify XADD handler');
  server = await startChild(
    'src/cli/bench/bare-xadd.ts',
    { REDIS_URL: redisUrl, BARE_KEY: `${KEY_ROOT}:{${workspace}}:bare-commands` },
    '/health',
  );
  let bare: LoadResult;
  try {
    note(`POST /contacts to the bare handler from ${o.connections} connections for ${o.duration} s`);
    bare = await drive(server, workspace, o);
  } finally {
    await server.stop();
  }
  const a = side(sb);
  const b = side(bare);
  return {
    switchboard: a,
    bareXadd: b,
    ratio: b.requestsPerS > 0 ? round(a.requestsPerS / b.requestsPerS, 3) : null,
  };
}
