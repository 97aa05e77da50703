/**
 * `npm run bench -- <workload> [options]`: the workloads of BENCH.md, run against a private
 * redis-server this command starts (appendonly off) or the one `--redis-url` names. Each run
 * prints one JSON line `{workload, parameters, machine, figures, at}` with `--json`, a table
 * otherwise. The workloads are in src/cli/bench/ (workloads.ts lists them; `--help` describes
 * them): seed, floor, decision, e2e, ingest, the routing shapes split/wide/large, audit, the
 * reference ACD's loop and the cluster scale-out. `all` runs every one of them and prints one
 * table of figures, anchors, ratios and targets (src/cli/bench/all.ts).
 */
import { connectRedis } from '../adapters/redis/client.ts';
import { type RedisServerHandle, startRedisServer } from '../topology/redis-server.ts';
import { allMain, isAll } from './bench/all.ts';
import { parseBenchArgs } from './bench/options.ts';
import { formatResult, machine } from './bench/report.ts';
import { runWorkload } from './bench/workloads.ts';
import { runCommand } from './sim/options.ts';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (isAll(argv)) return allMain(argv);
  const o = parseBenchArgs(argv);
  const note = (text: string) => {
    if (!o.json) process.stderr.write(`bench: ${text}\n`);
  };
  let server: RedisServerHandle | undefined;
  let url = o.redisUrl;
  if (!url) {
    try {
      server = await startRedisServer({ appendonly: false });
    } catch (err) {
      process.stderr.write(
        `bench: cannot start a private redis-server (${(err as Error).message.split('\n')[0]}); install redis-server or pass --redis-url\n`,
      );
      return 1;
    }
    url = server.url;
    note(`started a private redis-server at ${url} (appendonly off)`);
  }
  const admin = connectRedis({ url });
  let lastError: Error | undefined;
  admin.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    try {
      await admin.ping();
    } catch (err) {
      process.stderr.write(`bench: cannot reach Redis at ${url}: ${(lastError ?? (err as Error)).message}\n`);
      return 1;
    }
    if (o.redisUrl)
      note(
        'using a shared Redis: a Switchboard serving it would discover the bench workspaces and route them too',
      );
    const m = await machine(admin);
    const { parameters, figures } = await runWorkload(admin, url, o, note);
    const at = new Date().toISOString();
    process.stdout.write(formatResult({ workload: o.workload, parameters, machine: m, figures, at }, o.json));
    return 0;
  } finally {
    admin.disconnect();
    await server?.stop();
  }
}

runCommand('bench', main);
