/**
 * The auditor flags a second command appended with the same Idempotency-Key within the key's
 * lifetime (`idempotency`). That lifetime is the server's `IDEMPOTENCY_TTL_S` (60 s to 30 days),
 * but `npm run audit` held every key to 24 h: with a shorter lifetime, a client that rightly
 * reused its key after the record expired (the server appends a new command, as designed) was
 * reported and the audit exited 1; with a longer one, a real double-apply after 24 h went
 * unreported. The audit takes the lifetime now: `--idempotency-ttl-s`, by default
 * `$IDEMPOTENCY_TTL_S` (else 86400), in the server's range, anything else refused with exit 2.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { stepAppend } from '../../src/adapters/redis/command-log.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import type { Command } from '../../src/domain/commands.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

describe('npm run audit --idempotency-ttl-s', () => {
  const suite = suiteRedis();
  const ws = `audit-idem-ttl-${Date.now().toString(36)}`;

  /** The environment without IDEMPOTENCY_TTL_S (nor REDIS_URL), with `more`. */
  const env = (more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: '', ...more };
    if (more.IDEMPOTENCY_TTL_S === undefined) delete e.IDEMPOTENCY_TTL_S;
    delete e.VITEST;
    return e;
  };
  const audit = (args: readonly string[], more?: NodeJS.ProcessEnv) =>
    runCli(
      'audit',
      ['--workspace', ws, '--redis-url', suite.server.url, '--no-state', '--json', ...args],
      env(more),
    );
  const kindsOf = (stdout: string) =>
    (JSON.parse(stdout) as { violations: { kind: string }[] }).violations.map((v) => v.kind);

  const first = Date.now() - 10 * 60_000;

  // Two commands with the same key, 61 s apart by position: the second one appended after a 60 s
  // record expired, as the server does, with the fields the append step writes.
  beforeAll(async () => {
    await ensureGroup(suite.redis, ws);
    const commands: [number, Command][] = [
      [first, { type: 'RegisterAgent', agentId: 'a1', skills: ['Alpha'], capacity: 1 }],
      [first + 61_000, { type: 'RegisterAgent', agentId: 'a2', skills: ['Alpha'], capacity: 1 }],
    ];
    for (const [ms, command] of commands)
      await suite.redis.xadd(
        workspaceKeys(ws).commands,
        `${ms}-0`,
        ...stepAppend({ workspace: ws, command, idempotencyKey: 'register-again' }).entry,
      );
    expect(await projectPending(suite.redis, ws)).toBe(2);
  });

  it('--idempotency-ttl-s 60: the key had expired when the second command came; exit 0', async () => {
    const run = await audit(['--idempotency-ttl-s', '60']);
    expect(run.code, run.stderr).toBe(0);
    expect(kindsOf(run.stdout)).not.toContain('idempotency');
    expect(JSON.parse(run.stdout)).toMatchObject({ violationCount: 0, commands: 2 });
  });

  it("IDEMPOTENCY_TTL_S=60 without the option: the same, the server's variable as the default", async () => {
    const run = await audit([], { IDEMPOTENCY_TTL_S: '60' });
    expect(run.code, run.stderr).toBe(0);
    expect(kindsOf(run.stdout)).not.toContain('idempotency');
    expect(JSON.parse(run.stdout)).toMatchObject({ violationCount: 0, commands: 2 });
  });

  it("neither: the server's default lifetime, 24 h; the second command is a double-apply, exit 1", async () => {
    const run = await audit([]);
    expect(run.code, run.stderr).toBe(1);
    expect(kindsOf(run.stdout)).toEqual(['idempotency']);
    expect(run.stdout).toContain(`Idempotency-Key \\"register-again\\" appended again (first at ${first}-0)`);
  });

  it('--idempotency-ttl-s 120 (a lifetime longer than the 61 s between them): the second command is a double apply, exit 1', async () => {
    // Seconds, not milliseconds: 120 ms would take it for a new request.
    const run = await audit(['--idempotency-ttl-s', '120']);
    expect(run.code, run.stderr).toBe(1);
    expect(kindsOf(run.stdout)).toEqual(['idempotency']);
  });

  it("refuses a lifetime out of the server's range, or not a number, with exit 2 naming the option", async () => {
    const runs = await Promise.all(
      ['59', 'abc', '2592001', '1e3'].map(async (got) => ({
        got,
        run: await audit(['--idempotency-ttl-s', got]),
      })),
    );
    for (const { got, run } of runs) {
      expect({ got, code: run.code }, run.stderr).toEqual({ got, code: 2 });
      expect(run.stderr).toMatch(
        new RegExp(
          `^audit: --idempotency-ttl-s: must be an integer from 60 to 2592000, in decimal digits \\(got "${got}"\\)$`,
          'm',
        ),
      );
    }
  });

  it('refuses an IDEMPOTENCY_TTL_S the server would refuse, with exit 2 naming it', async () => {
    const run = await audit([], { IDEMPOTENCY_TTL_S: '0x3c' });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(
      /^audit: IDEMPOTENCY_TTL_S .*must be an integer from 60 to 2592000, in decimal digits \(got "0x3c"\)$/m,
    );
  });
});
