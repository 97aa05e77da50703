/** Running a CLI tool against Redis Cluster seeds the test gives (cluster-nodes-not-redis*.test.ts). */

/** `host:port` of a local server's `http://host:port`, as a seed. */
export const seedOf = (httpUrl: string) => httpUrl.replace('http://', '');

/** The environment without a Redis of its own: only what the test gives. */
export function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of ['REDIS_URL', 'REDIS_CLUSTER_NODES']) if (!(name in extra)) delete env[name];
  return env;
}
