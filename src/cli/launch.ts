/**
 * `npm run topology`: the whole production topology on one machine (src/topology/local/): a
 * Redis Cluster of 3 masters with a replica each (AOF on), HAProxy in front (HTTP API, TLS,
 * stats, Redis TCP with its layer-7 check), 3 API, 2 projector and 2 dispatcher processes. API
 * instances register with a heartbeat and the launcher keeps HAProxy's backend in step through
 * its runtime API. Every process it starts is supervised: Switchboard processes, Redis nodes,
 * HAProxy and keepalived are restarted when they die (src/topology/supervisor.ts), and counted in
 * the launcher's GET /status (127.0.0.1:8099 by default, src/topology/status.ts). The cluster's
 * data is kept in the data directory across launches (--fresh deletes it). Ctrl-C stops
 * everything cleanly.
 *
 * Two shapes, chosen by --vrrp / --no-vrrp (default: VRRP when running as root and `ip netns add`
 * works, a single HAProxy otherwise):
 *
 * - single (--no-vrrp, src/topology/local/single.ts): every process on loopback, one HAProxy.
 * - VRRP (--vrrp, src/topology/local/vrrp.ts): the HAProxy pair with keepalived, in network
 *   namespaces the launcher creates, reached through forwarders on 127.0.0.1. The part inside
 *   the app namespace is this same command run as a child with --app-namespace <run id>.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decimalInteger } from '../domain/decimal.ts';
import { runAppNamespace } from '../topology/local/app-namespace.ts';
import {
  checkAndExit,
  LaunchContext,
  type LaunchedTopology,
  PORT_OPTIONS,
  PORTS,
} from '../topology/local/context.ts';
import { claimDataDir, DataDirTaken } from '../topology/local/data-dir-lock.ts';
import { launchSingle } from '../topology/local/single.ts';
import { launchVrrp } from '../topology/local/vrrp.ts';
import { probeNetns } from '../topology/netns.ts';
import { plainFailure } from './plain-failure.ts';
import { parseOrUsage, UsageError } from './sim/options.ts';

const usage = `usage: npm run topology -- [--api 3] [--projectors 2] [--dispatchers 2] [--data-dir ./data/topology]
       [--http-port 8000] [--tls-port 8443] [--stats-port 8404] [--redis-port 12000] [--check]
       [--vrrp | --no-vrrp] [--fresh] [--haproxy-restart-delay 1000] [--status-port 8099]
  --check    start everything, send one command through HAProxy, print the URLs as JSON, stop.
  --fresh    delete the Redis Cluster kept in the data directory (every workspace's data, its
             passwords and the admin key) and start a new one. Without it, a launch starts the
             cluster an earlier launch left there, with its data.
  --haproxy-restart-delay  milliseconds a dead HAProxy waits before it is started again (then
             2x, 4x ... at most 30 s, or the delay itself when longer; 100 to 60000). Above about
             6000 (with --vrrp), the VIP moves to the other HAProxy first and comes back once
             the restarted one passes keepalived's check.
  --status-port  the launcher's own GET /status on 127.0.0.1 (every supervised process: pid,
             state, restarts, last restart; also written to <data dir>/status.json). Default 8099,
             or the next free port up to 8119; 0: any free port.
  --vrrp     HAProxy pair with keepalived (VIP failover) in network namespaces; the ports above
             are forwarded from 127.0.0.1 to the VIP. Needs root and \`ip netns\`.
  --no-vrrp  a single HAProxy on loopback.
  Default: --vrrp when running as root and network namespaces work, --no-vrrp otherwise.`;

function fail(message: string): never {
  process.stderr.write(`topology: ${message}\n${usage}\n`);
  process.exit(2);
}

function count(raw: string | undefined, name: string, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = decimalInteger(raw);
  if (n === undefined || n < min || n > max)
    fail(`--${name} must be an integer from ${min} to ${max} (got "${raw}")`);
  return n;
}

// Parsed as the other tools parse theirs: an option that takes one value, given twice
// (`--data-dir a --data-dir b`), is refused naming it, before anything starts.
let args: Record<string, string | boolean | undefined>;
try {
  args = parseOrUsage({
    options: {
      api: { type: 'string' },
      projectors: { type: 'string' },
      dispatchers: { type: 'string' },
      'data-dir': { type: 'string' },
      'http-port': { type: 'string' },
      'tls-port': { type: 'string' },
      'stats-port': { type: 'string' },
      'redis-port': { type: 'string' },
      check: { type: 'boolean' },
      fresh: { type: 'boolean' },
      'haproxy-restart-delay': { type: 'string' },
      'status-port': { type: 'string' },
      vrrp: { type: 'boolean' },
      'no-vrrp': { type: 'boolean' },
      // Internal: the part of the VRRP topology that runs inside the app namespace (run id).
      'app-namespace': { type: 'string' },
      help: { type: 'boolean' },
    },
  }).values;
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  fail(err.problems.join('\ntopology: '));
}
if (args.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const str = (name: string) => args[name] as string | undefined;
// An empty one would be the directory the launcher runs in, whatever that holds.
if (str('data-dir')?.trim() === '')
  fail('--data-dir must name a directory (got an empty value): leave it out for ./data/topology');
const ctx = new LaunchContext({
  api: count(str('api'), 'api', 3, 1, 16),
  projectors: count(str('projectors'), 'projectors', 2, 1, 16),
  dispatchers: count(str('dispatchers'), 'dispatchers', 2, 1, 16),
  httpPort: count(str('http-port'), 'http-port', 8000, 0, 65535),
  tlsPort: count(str('tls-port'), 'tls-port', 8443, 0, 65535),
  statsPort: count(str('stats-port'), 'stats-port', 8404, 0, 65535),
  redisPort: count(str('redis-port'), 'redis-port', 12000, 0, 65535),
  dataDir: path.resolve(str('data-dir') ?? './data/topology'),
  check: args.check === true,
  fresh: args.fresh === true,
  haproxyRestartDelayMs: count(str('haproxy-restart-delay'), 'haproxy-restart-delay', 1000, 100, 60_000),
  ...(str('status-port') !== undefined
    ? { statusPort: count(str('status-port'), 'status-port', 0, 0, 65535) }
    : {}),
});

// Each port its own (0, any free port, excepted): HAProxy would split one port's connections
// between two frontends, or fail to bind the second once the cluster is made.
{
  const ports: [string, number | undefined][] = [
    ...PORTS.map((k): [string, number] => [PORT_OPTIONS[k], ctx.opts[k]]),
    ['--status-port', ctx.opts.statusPort],
  ];
  for (const [i, [name, port]] of ports.entries()) {
    const same = ports.slice(0, i).find(([, other]) => port !== undefined && port !== 0 && other === port);
    if (same) fail(`${name} ${port} is also ${same[0]}: give each port its own number (0: any free one)`);
  }
}

function chooseMode(): 'single' | 'vrrp' {
  if (args.vrrp && args['no-vrrp']) fail('--vrrp and --no-vrrp exclude each other');
  if (args['no-vrrp']) return 'single';
  const support = probeNetns({ binaries: ['haproxy', 'keepalived'] });
  if (args.vrrp) {
    if (!support.ok) fail(`--vrrp needs network namespaces: ${support.reason}`);
    return 'vrrp';
  }
  if (!support.ok) ctx.say(`single HAProxy on loopback (no HAProxy pair with keepalived: ${support.reason})`);
  return support.ok ? 'vrrp' : 'single';
}

async function launch(): Promise<void> {
  // Before anything is written there: one launcher per data directory (its part in the app
  // namespace runs under this claim).
  try {
    claimDataDir(ctx.opts.dataDir);
  } catch (err) {
    if (err instanceof DataDirTaken) {
      process.stderr.write(`topology: ${err.message}\n`);
      process.exit(2);
    }
    // Not a directory, or not writable: said as the option's fault, without a stack.
    fail(`--data-dir ${ctx.opts.dataDir} cannot be used: ${(err as Error).message}`);
  }
  const topology: LaunchedTopology | undefined =
    chooseMode() === 'vrrp' ? await launchVrrp(ctx, fileURLToPath(import.meta.url)) : await launchSingle(ctx);
  if (!topology) return; // stopped during start-up: everything is being removed
  if (ctx.opts.check) await checkAndExit(topology, ctx.opts.dataDir);
  for (const line of topology.banner) ctx.say(line);
}

const appNamespace = str('app-namespace');
if (appNamespace !== undefined) {
  if (!/^[a-z0-9]{1,6}$/.test(appNamespace)) fail('--app-namespace: invalid run id');
  runAppNamespace(ctx, appNamespace).catch((err: unknown) => {
    process.stderr.write(`topology (app namespace): could not run: ${plainFailure(err)}\n`);
    process.exit(1);
  });
} else {
  launch().catch((err: unknown) => {
    process.stderr.write(`topology: could not run: ${plainFailure(err)}\n`);
    process.exit(1);
  });
}
