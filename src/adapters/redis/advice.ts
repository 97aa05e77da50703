/**
 * What a log line about a failed Redis call tells the operator to do (docs/DEPLOYMENT.md, "Logs":
 * errors say what to do): one text, so every such line says it alike.
 */
export const CHECK_REDIS = 'Check that Redis is up and reachable (REDIS_URL or REDIS_CLUSTER_NODES).';

/** For a loop that retries on any error: what to look at if its retries go on. */
export const IF_IT_GOES_ON = `If it goes on, see err: most often Redis does not answer. ${CHECK_REDIS}`;
