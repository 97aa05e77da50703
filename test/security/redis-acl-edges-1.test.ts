/**
 * A Redis user that lacks a command Switchboard needs (made by hand on one's own Redis, with a rule
 * older than the running version) was told to "check that Redis is up and reachable", most often
 * that Redis does not answer: it answers, and refuses. Every retrying loop's line now names the
 * cause, the ACL rule the user needs, and where it is, whether the command is refused directly
 * (NOPERM) or inside a Lua step ("The user executing the script can't run this command").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ACL_RULES } from '../../src/adapters/redis/acl.ts';
import { ifItGoesOn, redisAdvice } from '../../src/adapters/redis/advice.ts';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

let redis: TestRedis;
let admin: RedisClient;
const started: SwitchboardProcess[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  admin = redis.adminClient();
}, 60_000);

afterAll(async () => {
  for (const p of started) await p.stop();
  admin?.disconnect();
  await redis?.stop();
});

/** A process logged in as a user with Switchboard's rule but one command taken away. */
async function startLacking(user: string, command: string): Promise<SwitchboardProcess> {
  await admin.call('ACL', 'SETUSER', user, 'reset', 'on', '>pw', ...APP_ACL_RULES, `-${command}`);
  const p = await startProcess({
    roles: 'projector,dispatcher',
    redisUrl: `redis://${user}:pw@${redis.host}:${redis.port}`,
    env: { LOG_LEVEL: 'info', WORKSPACES: `acl-lack-${command}`, DISCOVER_WORKSPACES: 'false' },
  });
  started.push(p);
  return p;
}

describe('a Redis user lacking a command', () => {
  for (const command of ['xreadgroup', 'hget']) {
    it(`is named as the cause, with the rule to give it (${command} refused)`, async () => {
      const p = await startLacking(`lack-${command}`, command);
      const denied = () =>
        p.logs.filter((l) => /NOPERM|can't run this command/.test(l) && /failed|cannot/.test(l));
      await waitFor('a line about the refused command', () => denied().length > 0, { timeoutMs: 15_000 });
      for (const line of denied()) {
        expect(line).toContain('APP_ACL_RULE');
        expect(line).not.toContain('most often Redis does not answer');
        expect(line).not.toContain('Check that Redis is up');
      }
    });
  }

  it('is told apart from the other failures', () => {
    const inScript = new Error(
      "ERR The user executing the script can't run this command or subcommand script: 4646d8, on @user_script:1727.",
    );
    for (const err of [
      new Error("NOPERM this user has no permissions to run the 'xreadgroup' command"),
      new Error('NOPERM this user has no permissions to access one of the keys used as arguments'),
      inScript,
      Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), {
        previousErrors: [inScript],
      }),
    ]) {
      expect(redisAdvice(err)).toContain('APP_ACL_RULE');
      expect(ifItGoesOn(err)).toContain('APP_ACL_RULE');
    }
    expect(redisAdvice(new Error('Connection is closed.'))).toContain('Check that Redis is up');
  });
});
