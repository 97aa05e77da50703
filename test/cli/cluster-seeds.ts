/** Running a CLI tool against Redis Cluster seeds the test gives (cluster-nodes-not-redis*.test.ts). */
import { runCli } from './run-cli.ts';

/** `host:port` of a local server's `http://host:port`, as a seed. */
export const seedOf = (httpUrl: string) => httpUrl.replace('http://', '');

/** The environment without a Redis of its own: only what the test gives. */
export function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of ['REDIS_URL', 'REDIS_CLUSTER_NODES']) if (!(name in extra)) delete env[name];
  return env;
}

/** `runCli`, and how long it took, start included. */
export async function timed(...args: Parameters<typeof runCli>) {
  const started = performance.now();
  const run = await runCli(...args);
  return { ...run, seconds: (performance.now() - started) / 1000 };
}
