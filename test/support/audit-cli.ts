/**
 * The suites' event-log audit (`auditWorkspace` of ./audit.ts: the auditor of src/audit, as
 * `npm run audit` runs it, plus the load driver's own checks of acknowledged contacts) as a
 * command, for a test process that cannot reach the Redis it audits (e.g. a Redis Cluster inside
 * a network namespace): run it where the cluster is reachable, e.g.
 *
 *   ip netns exec sb-<id>-app node --import tsx test/support/audit-cli.ts \
 *     --nodes 10.231.1.10:7001,10.231.1.10:7002 --ws my-ws --acked /tmp/acked.json
 *
 * Options: `--nodes host:port,...` (seed nodes of a Redis Cluster; default: $REDIS_CLUSTER_NODES),
 * `--ws <workspace>`, `--acked <file>` (a JSON array of the acknowledged contact ids),
 * `--settle-ms <n>` (wait at most this long, default 20000, for the projector's checkpoint to
 * reach the head of the command stream and the queue to be empty before auditing).
 *
 * Prints one JSON line: `{ ok: true, report }` and exits 0, or `{ ok: false, error }` (the failed
 * assertion's message) and exits 1.
 *
 * `audit.ts` asserts with vitest's `expect`, which only works inside the test runner: its
 * `vitest` import is mapped (module resolve hook) to ./expect-shim.ts, the same matchers on chai.
 */
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { parseArgs } from 'node:util';
import { connectRedis } from '../../src/adapters/redis/client.ts';
import type { StreamEntry } from '../../src/adapters/redis/event-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';

const hooks = `
let shim;
export function initialize(data) { shim = data.shim; }
export async function resolve(specifier, context, next) {
  return next(specifier === 'vitest' ? shim : specifier, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url, {
  data: { shim: new URL('./expect-shim.ts', import.meta.url).href },
});

function print(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const { values } = parseArgs({
  options: {
    nodes: { type: 'string' },
    ws: { type: 'string' },
    acked: { type: 'string' },
    'settle-ms': { type: 'string', default: '20000' },
  },
});
const nodes = (values.nodes ?? process.env.REDIS_CLUSTER_NODES ?? '')
  .split(',')
  .map((n) => n.trim())
  .filter(Boolean);
if (nodes.length === 0 || !values.ws || !values.acked) {
  print({
    ok: false,
    error: 'usage: audit-cli.ts --nodes host:port,... --ws <workspace> --acked <file.json>',
  });
  process.exit(2);
}
const ws = values.ws;
const acked = JSON.parse(readFileSync(values.acked, 'utf8')) as string[];
const settleMs = Number(values['settle-ms']);

const { auditWorkspace } = await import('./audit.ts');
const redis = connectRedis({ clusterNodes: nodes });
let code = 0;
try {
  // Settle (bounded): the projector has applied the whole command stream and nothing is queued.
  const k = workspaceKeys(ws);
  const started = Date.now();
  let settled = false;
  let state = '';
  while (Date.now() - started < settleMs) {
    const head = ((await redis.xrevrange(k.commands, '+', '-', 'COUNT', 1)) as StreamEntry[])[0]?.[0];
    const applied = await redis.hget(k.meta, 'applied');
    const queued = await redis.zcard(k.queue);
    state = `applied ${applied}, head ${head}, queued ${queued}`;
    if (head !== undefined && applied === head && queued === 0) {
      settled = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const report = await auditWorkspace(redis, ws, acked);
  print({
    ok: true,
    settled,
    settleMs: Date.now() - started,
    settleState: state,
    report: {
      ws: report.ws,
      commands: report.commands,
      events: report.events,
      assignments: report.assignments,
      unassigned: report.unassigned,
      rejected: report.rejected.length,
      checkpoint: report.checkpoint,
      acknowledged: acked.length,
      assignmentPositions: report.assignmentPositions,
    },
  });
} catch (err) {
  code = 1;
  const message = err instanceof Error ? err.message : String(err);
  print({ ok: false, error: message });
  process.stderr.write(`${message}\n`);
} finally {
  redis.disconnect();
}
process.exit(code);
