/**
 * `npm run keys -- <create|list|revoke> --workspace <ws> [options]`: the API keys of a workspace,
 * straight in Redis (src/adapters/redis/api-keys.ts), for when no admin key is at hand. With an
 * admin key, the same is `POST/GET /v1/workspaces/{ws}/keys` and `DELETE .../keys/{keyId}`.
 *
 * Exit codes: 0 done, 1 no such key (revoke), 2 bad arguments, 3 it could not run (Redis unreachable).
 */
import {
  API_KEY_ROLES,
  ApiKeyInputError,
  type ApiKeyRole,
  createApiKey,
  keyNameProblem,
  MAX_KEY_NAME,
  readApiKeys,
  revokeApiKey,
} from '../adapters/redis/api-keys.ts';
import { workspaceKeys } from '../adapters/redis/keys.ts';
import { failureOf, parseRedisTarget, reachRedis, workspaceOption } from './redis-target.ts';
import { OptionChecker, parseOrUsage, runCommand } from './sim/options.ts';

const USAGE = `Usage: npm run keys -- <command> --workspace <ws> [options]

  create --workspace <ws> --role <role> [--agent <id>] [--name <text>]
      makes a key and prints it once (store it: only its SHA-256 is kept). Roles: ${API_KEY_ROLES.join(', ')};
      --agent names the agent of a key of role agent (required for it, refused for others);
      --name is one line: 1..${MAX_KEY_NAME} characters, no control characters nor bidirectional
      controls (U+202A..U+202E, U+2066..U+2069)
  list --workspace <ws>
      the workspace's keys: id, role, agent, created, revoked, name (never a secret); a name's
      control characters and bidirectional controls are shown escaped (\\n, \\u001b, \\u202e; a
      backslash as \\\\)
  revoke --workspace <ws> --key-id <id>
      the key stops working on every instance within a second

  --redis-url <url>        the Redis (default $REDIS_URL, else the private Redis npm start runs for
                           <$DATA_DIR or ./data>)
  --cluster-nodes <list>   host:port,... seeds of a Redis Cluster instead (default $REDIS_CLUSTER_NODES)
  --json                   print JSON
  --help                   this text

Exit codes: 0 done, 1 no such key, 2 bad arguments, 3 it could not run.
`;

const ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/**
 * A key's name as one line of the table: control characters, line breaks and bidirectional
 * controls escaped as in JSON (`\n`, `\u001b`, `\u202e`: one would print the rest of the line in
 * another order than it is), and a backslash doubled, so what is shown reads back to one name.
 * Names are checked when a key is made; a record written before that may still hold any.
 */
function shownName(name: string): string {
  return name.replace(
    /[\p{Cc}\u2028\u2029\p{Bidi_Control}\\]/gu,
    (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

async function main(): Promise<number> {
  const { values, positionals } = parseOrUsage({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: true,
    options: {
      workspace: { type: 'string' },
      role: { type: 'string' },
      agent: { type: 'string' },
      name: { type: 'string' },
      'key-id': { type: 'string' },
      'redis-url': { type: 'string' },
      'cluster-nodes': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const check = new OptionChecker();
  const [command, ...rest] = positionals;
  check.check(
    command === 'create' || command === 'list' || command === 'revoke',
    `the command must be create, list or revoke (got "${command ?? ''}")`,
  );
  check.check(rest.length === 0, `unexpected argument(s): ${rest.join(' ')}`);
  const workspace = workspaceOption(values.workspace, check, 'manage keys of');
  // An option of another command would be ignored (list --role filters nothing): named instead.
  const belongs: Record<string, readonly string[]> = {
    create: ['role', 'agent', 'name'],
    list: [],
    revoke: ['key-id'],
  };
  if (command !== undefined && command in belongs)
    for (const option of ['role', 'agent', 'name', 'key-id'] as const)
      check.check(
        values[option] === undefined || belongs[command]!.includes(option),
        `--${option}: not an option of ${command}`,
      );
  if (command === 'create') {
    check.check(
      (API_KEY_ROLES as readonly string[]).includes(values.role ?? ''),
      `--role: required, one of ${API_KEY_ROLES.join(', ')} (got "${values.role ?? ''}")`,
    );
    check.check(
      values.role !== 'agent' || values.agent !== undefined,
      '--agent: required for role agent (the agent the key acts for)',
    );
    check.check(values.role === 'agent' || values.agent === undefined, '--agent: only for role agent');
    const nameProblem = values.name === undefined ? undefined : keyNameProblem(values.name);
    check.check(nameProblem === undefined, `--name: ${nameProblem}`);
  }
  if (command === 'revoke')
    check.check(
      /^[0-9a-f]{16}$/.test(values['key-id'] ?? ''),
      values['key-id'] === undefined
        ? '--key-id: required, the 16 hex digits `list` shows'
        : `--key-id: must be the 16 hex digits \`list\` shows (got "${values['key-id']}")`,
    );
  const parsed = parseRedisTarget(values, process.env, check);
  check.done();

  const redis = await reachRedis('keys', parsed, 10_000);
  if (typeof redis === 'number') return redis;
  try {
    if (command === 'create') {
      const { key, info } = await createApiKey(redis, {
        workspace,
        role: values.role as ApiKeyRole,
        ...(values.agent !== undefined ? { agentId: values.agent } : {}),
        ...(values.name !== undefined ? { name: values.name } : {}),
      });
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ ...info, key })}\n`
          : `Created key ${info.keyId} (role ${info.role}${info.agentId ? `, agent ${info.agentId}` : ''}) in workspace "${workspace}". It is shown this once:\n\n${key}\n`,
      );
      return 0;
    }
    if (command === 'list') {
      const { keys, damaged } = await readApiKeys(redis, workspace);
      // A damaged record is named, not listed, and does not hide the others.
      for (const d of damaged)
        process.stderr.write(
          `keys: key ${d.keyId} of workspace "${workspace}": its record ${d.problem}, so it is left out (revoke cannot read it either): delete the record (redis-cli HDEL ${workspaceKeys(workspace).apiKeys} ${d.keyId}) and make a new key for whoever used it (npm run keys -- create)\n`,
        );
      if (values.json)
        process.stdout.write(`${JSON.stringify(damaged.length > 0 ? { keys, damaged } : { keys })}\n`);
      else {
        const lines = keys.map(
          (k) =>
            `${k.keyId}  ${k.role.padEnd(11)}  ${(k.agentId ?? '-').padEnd(12)}  ${k.createdAt}  ${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}${k.name ? `  ${shownName(k.name)}` : ''}`,
        );
        process.stdout.write(
          keys.length === 0 ? `No keys in workspace "${workspace}".\n` : `${lines.join('\n')}\n`,
        );
      }
      return 0;
    }
    const keyId = values['key-id']!;
    const revoked = await revokeApiKey(redis, workspace, keyId);
    if (!revoked) {
      process.stderr.write(`keys: no key ${keyId} in workspace "${workspace}"\n`);
      return 1;
    }
    process.stdout.write(
      values.json ? `${JSON.stringify(revoked)}\n` : `Revoked key ${keyId} at ${revoked.revokedAt}.\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ApiKeyInputError) {
      // Said as every other refusal of an option is (runCommand's UsageError).
      process.stderr.write(
        `keys: --${err.path === 'agentId' ? 'agent' : err.path}: ${err.message}\nRun with --help for the options.\n`,
      );
      return 2;
    }
    process.stderr.write(`keys: could not run: ${failureOf(err)}\n`);
    return 3;
  } finally {
    redis.disconnect();
  }
}

runCommand('keys', main, 3);
