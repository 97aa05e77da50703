// The command-line tools that read a workspace from Redis (audit, rebuild, keys) say so and exit 3
// when Redis does not answer or refuses the read, and exit 2 naming the workspace when its log is
// not there.
import { describe, it } from 'vitest';
import { appendCommand } from '../../src/adapters/redis/command-log.ts';
import { ensureGroup, projectPending } from '../../src/projections/projector.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { suiteRedis } from '../support/redis.ts';
import { runCli } from './run-cli.ts';

// The tests run at once: one waits out the tools' 10 s for a cluster seed to answer, and each
// meets Redis as a user of its own (or no Redis at all), which the others leave alone.
describe.concurrent('a tool whose Redis does not answer, or has no such workspace', () => {
  const suite = suiteRedis();

  it('audit, rebuild and keys: exit 3 naming the Redis they could not reach', async ({ expect }) => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const runs = await Promise.all([
      runCli('audit', ['--workspace', 'w', '--redis-url', url]),
      runCli('rebuild', ['--workspace', 'w', '--redis-url', url]),
      runCli('keys', ['list', '--workspace', 'w', '--redis-url', url]),
    ]);
    for (const [tool, run] of [
      ['audit', runs[0]!],
      ['rebuild', runs[1]!],
      ['keys', runs[2]!],
    ] as const) {
      expect(run.code, `${tool}: ${run.stderr}`).toBe(3);
      expect(run.stderr).toMatch(
        new RegExp(`^${tool}: cannot reach Redis at redis://127\\.0\\.0\\.1:\\d+: `, 'm'),
      );
    }
  });

  it('audit, rebuild and keys: exit 3 when no seed of a cluster answers as one, instead of waiting for ever', async ({
    expect,
  }) => {
    // One seed where nothing listens, one a Redis that is no cluster (and asks for a login).
    const seeds = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${suite.server.port}`];
    // The three tools share the wait (reachRedis); each meets one seed or the other.
    const runs = await Promise.all([
      runCli('audit', ['--workspace', 'w', '--cluster-nodes', seeds[0]!]),
      runCli('rebuild', ['--workspace', 'w', '--cluster-nodes', seeds[1]!]),
      runCli('keys', ['list', '--workspace', 'w', '--cluster-nodes', seeds[0]!]),
    ]);
    for (const [i, run] of runs.entries()) {
      const tool = ['audit', 'rebuild', 'keys'][i]!;
      expect(run.code, `${tool}: ${run.stderr}`).toBe(3);
      expect(run.stderr).toMatch(
        new RegExp(
          `^${tool}: cannot reach Redis at cluster 127\\.0\\.0\\.1:\\d+: no answer within 10 s`,
          'm',
        ),
      );
    }
    // The last connection error says why.
    for (const run of runs) expect(run.stderr).toMatch(/no answer within 10 s \(.+\)/);
  }, 45_000);

  it('audit and rebuild: exit 3 when Redis answers but refuses to read the workspace', async ({ expect }) => {
    // A user who may PING and nothing else: the workspace's keys cannot be read.
    await suite.admin.call('ACL', 'SETUSER', 'ping-only', 'on', '>ping-only-pw', '+ping', '+auth', '+hello');
    const url = new URL(suite.server.url);
    url.username = 'ping-only';
    url.password = 'ping-only-pw';
    try {
      for (const tool of ['audit', 'rebuild'] as const) {
        const run = await runCli(tool, ['--workspace', 'w', '--redis-url', url.toString()]);
        expect(run.code, run.stderr).toBe(3);
        expect(run.stderr).toMatch(new RegExp(`^${tool}: cannot read workspace "w" at .*NOPERM`, 'm'));
      }
    } finally {
      await suite.admin.call('ACL', 'DELUSER', 'ping-only');
    }
  });

  it('audit, rebuild and keys: a command Redis refuses later is named as Redis said it, without a stack trace', async ({
    expect,
  }) => {
    // A user who may read the workspace (so it is found) and nothing else.
    await suite.admin.call(
      'ACL',
      'SETUSER',
      'read-only',
      'on',
      '>read-only-pw',
      '~*',
      '+@read',
      '+ping',
      '+info',
    );
    await suite.admin.xadd('sb:{ro}:commands', '*', 'type', 'x');
    const url = new URL(suite.server.url);
    url.username = 'read-only';
    url.password = 'read-only-pw';
    try {
      const runs = await Promise.all([
        runCli('audit', ['--workspace', 'ro', '--redis-url', url.toString()]),
        runCli('rebuild', ['--workspace', 'ro', '--redis-url', url.toString()]),
        runCli('keys', ['create', '--workspace', 'ro', '--role', 'admin', '--redis-url', url.toString()]),
      ]);
      for (const [i, run] of runs.entries()) {
        const tool = ['audit', 'rebuild', 'keys'][i]!;
        expect(run.code, run.stderr).toBe(3);
        expect(run.stderr).toMatch(
          new RegExp(
            `^${tool}: .*could not run: Redis refused a command: .*NOPERM.* \\(run it as the Switchboard ACL user`,
            'm',
          ),
        );
        expect(run.stderr).not.toMatch(/^\s+at /m);
      }
    } finally {
      await suite.admin.call('ACL', 'DELUSER', 'read-only');
    }
  });

  it('rebuild: exits 3 when Redis refuses part of the copy into the shadow, not a comparison of a short one', async ({
    expect,
  }) => {
    // A user who may do everything but append to a stream: the shadow gets no command.
    await suite.admin.call('ACL', 'SETUSER', 'no-xadd', 'on', '>no-xadd-pw', '~*', '+@all', '-xadd');
    await ensureGroup(suite.redis, 'short');
    await appendCommand(suite.redis, {
      workspace: 'short',
      command: { type: 'RegisterAgent', agentId: 'a', skills: ['A'], capacity: 1 },
    });
    await projectPending(suite.redis, 'short');
    const url = new URL(suite.server.url);
    url.username = 'no-xadd';
    url.password = 'no-xadd-pw';
    try {
      const run = await runCli('rebuild', ['--workspace', 'short', '--redis-url', url.toString()]);
      expect(run.code, run.stdout).toBe(3);
      expect(run.stderr).toMatch(
        /^rebuild: the rebuild could not run: Redis refused a command: NOPERM.*'xadd'/m,
      );
    } finally {
      await suite.admin.call('ACL', 'DELUSER', 'no-xadd');
    }
  });

  it('audit and rebuild: exit 2 naming a workspace with no log', async ({ expect }) => {
    const url = suite.server.url;
    for (const tool of ['audit', 'rebuild'] as const) {
      const run = await runCli(tool, ['--workspace', 'nobody-here', '--redis-url', url]);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(
        new RegExp(`^${tool}: no workspace "nobody-here" at .* \\(neither .* nor .*\\)$`, 'm'),
      );
    }
  });
});
