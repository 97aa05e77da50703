/**
 * What a command-line tool reads a workspace's log from: the Redis (`--redis-url` or
 * `--cluster-nodes`, else the environment) and the archive directory.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { Redis, ReplyError } from 'ioredis';
import {
  connectRedis,
  isCluster,
  LOGIN_ENCODING,
  mask,
  parseSeed,
  type RedisTarget,
  undecodableLogin,
} from '../adapters/redis/client.ts';
import { isClusterNode } from '../adapters/redis/health-watch.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import type { RedisClient } from '../adapters/redis/scripts.ts';
import {
  isRedisUrl,
  loginGivenTwice,
  readableFile,
  redisUsernameProblem,
  sameLoginAndTls,
  tlsTargetProblem,
} from '../app/config.ts';
import { parseAnchor } from '../archive/chain.ts';
import { workspaceFolder } from '../archive/store.ts';
import { WorkspaceId } from '../domain/values.ts';
import { privateRedisFile, runningPrivateRedis } from '../topology/redis-server.ts';
import { notRedisReply, plainFailure } from './plain-failure.ts';
import type { OptionChecker } from './sim/options.ts';

/** What is wrong with a Redis URL a tool is given (--redis-url, REDIS_URL): REDIS_URL's check. */
export const redisUrlProblem = (value: string): string | undefined => isRedisUrl(value);

export interface ParsedTarget {
  readonly target: RedisTarget;
  /** How to name it in messages. */
  readonly label: string;
  /** Where a single Redis's URL came from, when the user gave one: the option or the variable. */
  readonly urlName?: '--redis-url' | 'REDIS_URL';
}

export function parseRedisTarget(
  values: { 'redis-url'?: string | undefined; 'cluster-nodes'?: string | undefined },
  env: NodeJS.ProcessEnv,
  check: OptionChecker,
): ParsedTarget {
  check.check(
    values['redis-url'] === undefined || values['cluster-nodes'] === undefined,
    '--redis-url and --cluster-nodes: give one or the other',
  );
  check.check(
    values['redis-url'] !== undefined ||
      values['cluster-nodes'] !== undefined ||
      !env.REDIS_URL?.trim() ||
      !env.REDIS_CLUSTER_NODES?.trim(),
    'REDIS_URL and REDIS_CLUSTER_NODES are both set: unset one (npm start refuses both), or give --redis-url or --cluster-nodes',
  );
  const nodesText =
    values['cluster-nodes'] ??
    (values['redis-url'] !== undefined ? undefined : env.REDIS_CLUSTER_NODES?.trim() || undefined);
  const items = (nodesText ?? '').split(',').map((n) => n.trim());
  const nodes = items.filter(Boolean);
  const nodesName = values['cluster-nodes'] !== undefined ? '--cluster-nodes' : 'REDIS_CLUSTER_NODES';
  // An empty one (`--cluster-nodes "$NODES"` with NODES unset, or only commas) is refused as an
  // empty --redis-url is: taken as not given, the tool went on to REDIS_URL or the private Redis
  // without a word (keys made there, another Redis's workspace audited).
  const nodesGivenEmpty = values['cluster-nodes'] !== undefined && nodes.length === 0;
  check.check(
    !nodesGivenEmpty,
    `--cluster-nodes: must name the cluster's nodes, host:port,... (got "${values['cluster-nodes']}"): leave it out for $REDIS_CLUSTER_NODES, $REDIS_URL or the private Redis of npm start`,
  );
  // An empty item among seeds (two commas together, one at an end) is refused as npm start refuses
  // it (src/app/config.ts), not passed over: REDIS_CLUSTER_NODES="," was read as no cluster. The
  // value is not shown (a seed may hold a password).
  const emptyItem = items.indexOf('');
  check.check(
    nodesText === undefined || nodesGivenEmpty || emptyItem < 0,
    `${nodesName}: has an empty item (item ${emptyItem + 1} of ${items.length}): two commas together, or one at an end; write the items separated by single commas`,
  );
  // A login the client could not decode is named alone, not also as a seed of the wrong form, nor
  // (below) as a seed that is not rediss://.
  const undecodable = nodes.filter(undecodableLogin);
  check.check(
    undecodable.length === 0,
    `${nodesName}: ${LOGIN_ENCODING} (got "${mask(undecodable.join(','))}")`,
  );
  const seedsRead = nodes.every((n) => typeof parseSeed(n) !== 'string');
  check.check(
    nodes.every((n) => undecodableLogin(n) || typeof parseSeed(n) !== 'string'),
    `${nodesName}: each seed must be host:port, user:password@host:port or a redis:// or rediss:// URL (got "${mask(nodesText ?? '')}")`,
  );
  // As npm start: one login and one TLS setting for every seed (the client would take the first
  // seed's login, and TLS for all when any is rediss://).
  const seedsMixed = seedsRead ? sameLoginAndTls(nodes) : undefined;
  check.check(seedsMixed === undefined, `${nodesName}: ${seedsMixed}`);
  const configured =
    nodes.length > 0 || nodesGivenEmpty
      ? undefined
      : (values['redis-url'] ?? (env.REDIS_URL?.trim() || undefined));
  // Nothing configured: the private Redis `npm start` runs for this data directory, if it runs.
  const dataDir = env.DATA_DIR?.trim() || './data';
  const own =
    nodes.length > 0 || nodesGivenEmpty || configured !== undefined
      ? undefined
      : runningPrivateRedis(dataDir);
  const url = configured ?? own;
  const urlName = values['redis-url'] !== undefined ? '--redis-url' : 'REDIS_URL';
  const urlProblem = configured === undefined ? undefined : redisUrlProblem(configured);
  // Named as the user gave it: the flag, or the environment's variable.
  check.check(urlProblem === undefined, `${urlName}: ${urlProblem}`);
  check.check(
    nodes.length > 0 || nodesGivenEmpty || url !== undefined,
    `no Redis to read: give --redis-url or --cluster-nodes (or set REDIS_URL or REDIS_CLUSTER_NODES), or run npm start first (its private Redis says where it listens in ${privateRedisFile(dataDir)})`,
  );
  // The login and TLS files of the environment, as the main command reads and checks them.
  const text = (name: string) => env[name]?.trim() || undefined;
  const username = text('REDIS_USERNAME');
  const password = text('REDIS_PASSWORD');
  const usernameProblem = username === undefined ? undefined : redisUsernameProblem(username);
  check.check(usernameProblem === undefined, `REDIS_USERNAME: ${usernameProblem}`);
  const [caFile, certFile, keyFile] = ['REDIS_TLS_CA', 'REDIS_TLS_CERT', 'REDIS_TLS_KEY'].map((name) => {
    const file = text(name);
    const problem = file === undefined ? undefined : readableFile(file);
    check.check(problem === undefined, `${name}: ${problem}`);
    return file;
  });
  // As npm start: a part of the login the target carries is not given again in REDIS_USERNAME or
  // REDIS_PASSWORD, where it would be ignored (the target's used) without a word.
  if (nodes.length > 0 ? seedsRead : configured !== undefined && urlProblem === undefined)
    for (const problem of loginGivenTwice(
      nodes.length > 0 ? { seeds: nodes, seedsName: nodesName } : { url: configured, urlName },
      username,
      password,
    ))
      check.check(false, problem);
  // As npm start: the TLS files apply to a rediss:// target only (else they would be ignored and
  // the connection made in clear), and a client certificate goes with its key.
  const tlsSet = (
    [
      ['REDIS_TLS_CA', caFile],
      ['REDIS_TLS_CERT', certFile],
      ['REDIS_TLS_KEY', keyFile],
    ] as const
  )
    .filter(([, v]) => v !== undefined)
    .map(([name]) => name);
  const tls =
    undecodable.length > 0 || seedsMixed !== undefined
      ? undefined
      : tlsTargetProblem(
          tlsSet,
          nodes.length > 0
            ? {
                seeds: nodes,
                seedsName: nodesName,
              }
            : configured !== undefined
              ? { url: configured, urlName }
              : {},
        );
  check.check(tls === undefined, tls ?? '');
  check.check(
    (certFile === undefined) === (keyFile === undefined),
    'REDIS_TLS_CERT, REDIS_TLS_KEY: give both or neither',
  );
  const security = {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    tls: {
      ...(caFile ? { caFile } : {}),
      ...(certFile ? { certFile } : {}),
      ...(keyFile ? { keyFile } : {}),
    },
  };
  if (own !== undefined)
    return {
      target: { url: own, tls: {} },
      label: `the private Redis of npm start (${mask(own)}, ${dataDir})`,
    };
  return nodes.length > 0
    ? { target: { clusterNodes: nodes, ...security }, label: `cluster ${mask(nodes.join(','))}` }
    : {
        target: { url: url ?? '', ...security },
        label: mask(url ?? ''),
        urlName,
      };
}

/**
 * The archive directory: `--archive-dir`, else $ARCHIVE_DIR, else <$DATA_DIR or ./data>/archive.
 * One that exists must be a directory (none yet is an empty archive).
 */
export function archiveDirOf(
  value: string | undefined,
  env: NodeJS.ProcessEnv,
  check: OptionChecker,
): string {
  const dir = value ?? (env.ARCHIVE_DIR?.trim() || `${env.DATA_DIR?.trim() || './data'}/archive`);
  const source = archiveSourceOf(value, env);
  check.check(
    dir !== '' && (!existsSync(dir) || statSync(dir).isDirectory()),
    `${source}: the archive must be a directory (got "${dir}")`,
  );
  return dir;
}

/** Where the archive directory came from, for messages: the flag or the variable. */
export function archiveSourceOf(value: string | undefined, env: NodeJS.ProcessEnv): string {
  return value !== undefined ? '--archive-dir' : env.ARCHIVE_DIR?.trim() ? 'ARCHIVE_DIR' : 'DATA_DIR';
}

/**
 * An archive directory that does not exist is an empty archive: right for a workspace never
 * archived. For one whose streams the archiver trimmed (its mark in Redis, src/archive/chain.ts) it
 * is not the archive (a typo, or the archiver's ARCHIVE_DIR not given): what to say (the tool exits
 * 2), rather than read a log without its archived prefix and report everything that follows from it
 * (the audit's violations, the rebuild's differences). So is a directory with no folder of the
 * workspace (another one than the archiver's, or a folder inside it). One that has the workspace's
 * folder is read as it is: segments missing from it are reported by the tool.
 */
export async function archiveNotThere(
  redis: RedisClient,
  workspace: string,
  archiveDir: string,
  source: string,
): Promise<string | undefined> {
  // The workspace's folder (or the one of its very name an older archive kept): a directory with
  // neither is not the archiver's for it (another one, or a folder inside the archive), and read as
  // an empty archive every document would differ.
  const there = existsSync(archiveDir);
  if (
    there &&
    (existsSync(path.join(archiveDir, workspaceFolder(workspace))) ||
      existsSync(path.join(archiveDir, workspace)))
  )
    return undefined;
  const k = workspaceKeys(workspace);
  const marks = (await redis.hmget(k.archive, 'commands', 'events')).map(parseAnchor);
  const i = marks.findIndex((m) => m !== undefined);
  const mark = marks[i];
  if (mark === undefined) return undefined;
  const absolute = path.resolve(archiveDir);
  const shown = absolute === archiveDir ? `"${archiveDir}"` : `"${archiveDir}" (${absolute})`;
  return `${source}: ${there ? `no archive of workspace "${workspace}" in ${shown} (no folder ${workspaceFolder(workspace)} there)` : `no archive at ${shown}`}, yet the ${i === 0 ? 'commands' : 'events'} stream of workspace "${workspace}" was trimmed up to ${mark.last} after its first ${mark.total} entries were archived (segments 0..${mark.index}): give --archive-dir the directory the archiver writes to (its ARCHIVE_DIR)${there ? `; if it is that directory, the workspace's folder is lost: restore it from a copy` : ''}`;
}

/** `--workspace`, required and a valid workspace id; `purpose` says what the tool does with it. */
export function workspaceOption(value: string | undefined, check: OptionChecker, purpose: string): string {
  const workspace = value ?? '';
  check.check(workspace !== '', `--workspace: required (the workspace to ${purpose})`);
  check.check(
    workspace === '' || WorkspaceId.is(workspace),
    `--workspace: must be 1..64 characters of [A-Za-z0-9_-] (got "${workspace}")`,
  );
  return workspace;
}

/** How long a tool waits for its Redis to answer at all. */
const REACH_TIMEOUT_MS = 10_000;
/** How long the probe of a cluster seed (below) waits for its connection and its PING. */
const SEED_PROBE_MS = 2000;

/** What the probe of a cluster seed (below) found there, when it was not an answer. */
type SeedProbe = { readonly notRedis: string } | { readonly refused: string } | undefined;

/**
 * What a seed of a Redis Cluster answers a PING with, on a connection of its own that does not
 * retry: ioredis's protocol error when what answers there is not Redis, the connection's error
 * when nothing listens there (ECONNREFUSED), else undefined (a PONG, a refusal of the command, a
 * connection closed, no answer). The cluster client cannot tell: its slots refresh sees only
 * "Connection is closed." from such a seed, and retries it until the bound.
 */
function probeSeed(cluster: RedisClient, seed: string): Promise<SeedProbe> {
  const parsed = parseSeed(seed);
  if (typeof parsed === 'string' || !isCluster(cluster)) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const probe = new Redis({
      // The nodes' login and TLS, as the cluster client connects with them.
      ...cluster.options.redisOptions,
      host: parsed.host,
      port: parsed.port,
      lazyConnect: false,
      enableReadyCheck: false,
      enableOfflineQueue: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: SEED_PROBE_MS,
      commandTimeout: SEED_PROBE_MS,
    });
    let found: SeedProbe;
    // The protocol error comes as the connection's error (its AUTH or its PING's reply); a
    // connection refused, as the connection's error too.
    probe.on('error', (err: Error & { code?: string }) => {
      if (found !== undefined) return;
      if (notRedisReply(err.message) !== undefined) found = { notRedis: err.message };
      else if (err.code === 'ECONNREFUSED') found = { refused: err.message };
    });
    const done = (err?: Error) => {
      probe.disconnect();
      resolve(
        found ?? (err && notRedisReply(err.message) !== undefined ? { notRedis: err.message } : undefined),
      );
    };
    probe.ping().then(
      () => done(),
      (err: Error) => done(err),
    );
  });
}

/** Seeds of which none can answer as a cluster: each is not Redis or refuses the connection. */
class SeedsUnusable extends Error {}

/**
 * A client of the tool's Redis once it answers, and with `workspace`, once that workspace's log is
 * there; else the tool's exit code (3: Redis does not answer or refuses the read, 2: no such
 * workspace, or a URL naming one node of a Redis Cluster) after saying why on stderr. The caller
 * disconnects the client.
 */
export async function reachRedis(
  tool: string,
  { target, label, urlName }: ParsedTarget,
  commandTimeout: number,
  workspace?: string,
): Promise<RedisClient | 2 | 3> {
  const redis = connectRedis(target, { commandTimeout });
  // A cluster client retries its seeds for ever and holds the commands meanwhile: the first answer
  // is awaited for a bounded time, and the last connection error named.
  let lastError: string | undefined;
  const noted = (err: Error & { lastNodeError?: Error }) => {
    lastError = err.lastNodeError ? `${err.message} ${err.lastNodeError.message}` : err.message;
  };
  // A seed the cluster client could not read the slots from is probed (once, every seed): when
  // what answers at each is not Redis, the tool says so at once instead of waiting for the bound;
  // and when each is either not Redis or refuses the connection (nothing listens there), no seed
  // can answer as a cluster: said at once too, naming which is which. Seeds that all refuse are
  // waited for (a cluster may be starting), as seeds that do not answer at all are.
  let seedsNotRedis: (err: Error) => void = () => undefined;
  const notRedisSeeds = new Promise<never>((_, reject) => {
    seedsNotRedis = reject;
  });
  let probed = false;
  let notRedisAt: string[] = [];
  const probeSeeds = () => {
    if (probed || !target.clusterNodes) return;
    probed = true;
    const seeds = target.clusterNodes;
    void Promise.all(seeds.map((seed) => probeSeed(redis, seed))).then((found) => {
      const notRedis = found.map((f) => (f && 'notRedis' in f ? f.notRedis : undefined));
      const first = notRedis[0];
      if (first !== undefined && notRedis.every((f) => f !== undefined)) {
        seedsNotRedis(new Error(first));
        return;
      }
      notRedisAt = seeds
        .filter((_, i) => notRedis[i] !== undefined)
        .map((seed) => `${mask(seed)} is not Redis`);
      if (notRedisAt.length > 0 && found.every((f) => f !== undefined)) {
        const each = found.map((f, i) =>
          f && 'notRedis' in f
            ? `${mask(seeds[i]!)} is not Redis (${notRedisReply(f.notRedis)})`
            : `${mask(seeds[i]!)} refused the connection (${f?.refused}: nothing listens there)`,
        );
        seedsNotRedis(
          new SeedsUnusable(`no seed of ${label} can answer as a Redis Cluster: ${each.join(', ')}`),
        );
      }
      // Else the cluster may still answer through the others; if not, the ones not Redis are named.
    });
  };
  redis.on('error', noted);
  redis.on('node error', noted);
  redis.on('node error', probeSeeds);
  let timer: NodeJS.Timeout | undefined;
  const noAnswer = () =>
    `no answer within ${REACH_TIMEOUT_MS / 1000} s${lastError ? ` (${lastError})` : ''}${notRedisAt.length > 0 ? `; ${notRedisAt.join(', ')}: check --cluster-nodes (or REDIS_CLUSTER_NODES)` : ''}`;
  let clusterNode = false;
  try {
    // A single Redis is asked too whether it is a node of a Redis Cluster: one node answers only
    // for its own slots, so the tool would fail on a bare MOVED (or read nothing) further on.
    [, clusterNode] = await Promise.race([
      Promise.all([redis.ping(), isCluster(redis) ? false : isClusterNode(redis)]),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(noAnswer())), REACH_TIMEOUT_MS);
      }),
      notRedisSeeds,
    ]);
  } catch (err) {
    redis.disconnect();
    // The PING's own timeout (a command timeout as long as the bound, or the cluster client's
    // while it has no connection) says the same as the bound, with the same reason.
    // ioredis's own giving up ("Reached the max retries per request limit") does not say why: the
    // last connection error does (ECONNREFUSED, a TLS handshake refused, a login refused).
    const { message: given } = err as Error;
    if (err instanceof SeedsUnusable) {
      process.stderr.write(
        `${tool}: ${given}: check --cluster-nodes (or REDIS_CLUSTER_NODES), that it names the host and port of the cluster's nodes, then run again\n`,
      );
      return 3;
    }
    // Something that is not Redis answers there (an HTTP server, another service): ioredis says
    // "Protocol error ... Please report this.", which is no bug to report; say what to check.
    const notRedis = [given, lastError]
      .map((m) => (m === undefined ? undefined : notRedisReply(m)))
      .find((m) => m !== undefined);
    if (notRedis !== undefined) {
      const check =
        urlName ??
        (isCluster(redis)
          ? '--cluster-nodes (or REDIS_CLUSTER_NODES)'
          : 'the file of the private Redis npm start runs, or give --redis-url');
      process.stderr.write(
        `${tool}: what answers at ${label} is not Redis (${notRedis}): check ${check}, that it names the host and port of a Redis, then run again\n`,
      );
      return 3;
    }
    const message = /^Command timed out/.test(given)
      ? noAnswer()
      : /^Reached the max retries/.test(given) && lastError !== undefined
        ? lastError
        : given;
    process.stderr.write(`${tool}: cannot reach Redis at ${label}: ${message}\n`);
    return 3;
  } finally {
    clearTimeout(timer);
    redis.off('error', noted);
    redis.off('node error', noted);
    redis.off('node error', probeSeeds);
  }
  if (clusterNode) {
    redis.disconnect();
    const instead =
      urlName === 'REDIS_URL'
        ? "set REDIS_CLUSTER_NODES to the cluster's nodes, host:port,... (or give --cluster-nodes) instead of REDIS_URL"
        : "give the cluster's nodes with --cluster-nodes host:port,... (or REDIS_CLUSTER_NODES) instead of --redis-url";
    process.stderr.write(
      `${tool}: ${label} is a node of a Redis Cluster (cluster_enabled:1), not a single Redis: it answers only for its own slots (MOVED for the others); ${instead}\n`,
    );
    return 2;
  }
  if (workspace === undefined) return redis;
  const k = workspaceKeys(workspace);
  let found: number;
  try {
    found = await redis.exists(k.commands, k.events);
  } catch (err) {
    redis.disconnect();
    process.stderr.write(
      `${tool}: cannot read workspace "${workspace}" at ${label}: ${(err as Error).message}\n`,
    );
    return 3;
  }
  if (found === 0) {
    redis.disconnect();
    process.stderr.write(
      `${tool}: no workspace "${workspace}" at ${label} (neither ${k.commands} nor ${k.events})\n`,
    );
    return 2;
  }
  return redis;
}

/**
 * Why a tool's work failed, for its stderr, in plain lines and never a stack: a command Redis
 * refused as Redis said it (a missing permission with the user to run as); a Redis that stopped
 * answering or a connection lost, with what to do; anything else by its message.
 */
export function failureOf(err: unknown): string {
  if (!(err instanceof ReplyError)) return plainFailure(err);
  const { message } = err as Error;
  return message.includes('NOPERM')
    ? `Redis refused a command: ${message} (run it as the Switchboard ACL user, docs/SECURITY.md)`
    : `Redis refused a command: ${message}`;
}
