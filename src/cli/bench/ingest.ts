/**
 * `ingest`: `POST /contacts` throughput from `connections` keep-alive connections (a closed
 * loop: each sends its next request once the last is answered), against (a) a Switchboard
 * process (all roles; the answer waits for the projector's outcome) and (b) a bare fastify
 * handler doing one XADD per request on the same Redis. Both run as their own process, side by
 * side, and take the load in alternating slices, so a drift in the machine's other load falls on both.
 *
 * With `haproxy`, each side is behind an HAProxy of its own, rendered from the deployment's
 * template (haproxy-front.ts), and the load goes through it.
 *
 * Both sides take the same bare keep-alive requests (./http.ts), not the typed client (src/client):
 * the bare handler is no Switchboard API, and a client on one side only (its Idempotency-Key, which
 * Switchboard then stores, its fetch) would make the ratio measure the clients, not the servers.
 */
import { percentile, round } from '../sim/stats.ts';
import { type SwitchboardChoice, startBareHandler, startSwitchboardProcess, switchboardName } from './e2e.ts';
import { haproxyInFront } from './haproxy-front.ts';
import { type ChildServer, closedLoop, type LoadResult, request, startTogether } from './http.ts';
import type { Note } from './workspace.ts';

export interface IngestOptions extends SwitchboardChoice {
  readonly connections: number;
  readonly duration: number;
  readonly warmup: number;
  /** Both sides behind an HAProxy each (haproxy-front.ts), as deployed. */
  readonly haproxy: boolean;
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

/** Load results added up: requests and errors summed, latencies joined, seconds summed. */
function sum(results: readonly LoadResult[]): LoadResult {
  return {
    requests: results.reduce((n, r) => n + r.requests, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    latenciesMs: results.flatMap((r) => r.latenciesMs),
    seconds: results.reduce((n, r) => n + r.seconds, 0),
  };
}

/** Slices of load each side gets, alternating, so that both see the same machine (others' load drifts). */
const ROUNDS = 4;

export async function ingestWorkload(
  redisUrl: string,
  workspace: string,
  o: IngestOptions,
  note: Note,
): Promise<IngestFigures> {
  note(`starting ${switchboardName(o.switchboard)} and the bare fastify XADD handler`);
  const servers: ChildServer[] = [];
  const fronts: ChildServer[] = [];
  try {
    const [sbServer, bareServer] = await startTogether([
      startSwitchboardProcess(redisUrl, workspace, o.switchboard),
      startBareHandler(redisUrl, workspace, false),
    ]);
    servers.push(sbServer, bareServer);
    let sb: ChildServer = sbServer;
    let bare: ChildServer = bareServer;
    if (o.haproxy) {
      note('starting an HAProxy in front of each (infra/haproxy/haproxy.cfg.tmpl)');
      [sb, bare] = await startTogether([haproxyInFront(sbServer), haproxyInFront(bareServer)]);
      fronts.push(sb, bare);
    }
    const post = (server: ChildServer) => {
      const url = `${server.base}/v1/workspaces/${encodeURIComponent(workspace)}/contacts`;
      return (agent: Parameters<typeof request>[0]) => request(agent, 'POST', url, { skills: ['s'] });
    };
    if (o.warmup > 0) {
      note(`warming up both for ${o.warmup} s each`);
      await closedLoop(o.connections, o.warmup, post(sb));
      await closedLoop(o.connections, o.warmup, post(bare));
    }
    note(
      `POST /contacts from ${o.connections} connections, ${o.duration} s each, in ${ROUNDS} alternating slices`,
    );
    const runs: { sb: LoadResult[]; bare: LoadResult[] } = { sb: [], bare: [] };
    for (let r = 0; r < ROUNDS; r++) {
      runs.sb.push(await closedLoop(o.connections, o.duration / ROUNDS, post(sb)));
      runs.bare.push(await closedLoop(o.connections, o.duration / ROUNDS, post(bare)));
    }
    const a = side(sum(runs.sb));
    const b = side(sum(runs.bare));
    return {
      switchboard: a,
      bareXadd: b,
      ratio: b.requestsPerS > 0 ? round(a.requestsPerS / b.requestsPerS, 3) : null,
    };
  } finally {
    // The HAProxies first, then the servers behind them.
    await Promise.all(fronts.map((s) => s.stop()));
    await Promise.all(servers.map((s) => s.stop()));
  }
}
