/**
 * Settings only some roles read, set for a process that runs none of them. ADVERTISE_ADDRESS on
 * a process without the api role (ROLES=projector,dispatcher) was passed over without a word: the
 * user expected the instance in the load balancer and nothing registered. It is now refused at
 * start, naming ROLES and what to do, as other settings that would do nothing are refused
 * (RATE_LIMIT_BURST with RATE_LIMIT=off, REDIS_TLS_* without rediss://). The tuning settings of a
 * role (LB_DRAIN_MS, WS_*, LEASE_TTL_MS without a role that leases, ...) are often shared by every
 * process of a deployment, so they are not refused: the start warns once, naming each of them,
 * the roles that read it and ROLES.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONFIG_ENTRIES,
  parseConfig,
  ROLE_SETTINGS,
  type Role,
  unreadSettings,
} from '../../src/app/config.ts';
import { killAllProcesses, startProcess } from '../support/processes.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';

const problems = (env: Record<string, string>) => {
  const parsed = parseConfig(env);
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

describe('ADVERTISE_ADDRESS on a process without the api role', () => {
  it('is refused, naming ROLES and what to do', () => {
    expect(problems({ ROLES: 'projector,dispatcher', ADVERTISE_ADDRESS: 'api-1.internal:8080' })).toBe(
      'ADVERTISE_ADDRESS: registers an API instance for the load balancer, but ROLES (projector,dispatcher) has no api: this process serves no API and would register nothing; add api to ROLES, or unset ADVERTISE_ADDRESS here',
    );
    expect(problems({ ROLES: 'archiver', ADVERTISE_ADDRESS: 'auto', HOST: '10.0.0.5' })).toMatch(
      /^ADVERTISE_ADDRESS: .*ROLES \(archiver\) has no api/,
    );
  });

  it('is still taken with the api role, alone or with others', () => {
    expect(problems({ ROLES: 'api', ADVERTISE_ADDRESS: 'api-1.internal:8080' })).toBe('');
    expect(problems({ ROLES: 'dispatcher,api', ADVERTISE_ADDRESS: 'auto' })).toBe('');
    expect(problems({ ADVERTISE_ADDRESS: 'auto' })).toBe('');
    expect(problems({ ROLES: 'projector' })).toBe('');
  });
});

describe('the tuning settings of a role the process does not run', () => {
  it('are named with the roles that read them', () => {
    expect(
      unreadSettings(
        { LB_DRAIN_MS: '2500', WS_MAX_PER_KEY: 'off', PROJECT_BATCH: '100', LEASE_TTL_MS: '1000' },
        ['projector'],
      ),
    ).toEqual([
      { name: 'LB_DRAIN_MS', readBy: ['api'] },
      { name: 'WS_MAX_PER_KEY', readBy: ['api'] },
    ]);
    expect(
      unreadSettings({ DISPATCH_LEASES: 'false', LOG_RETENTION: '1h', TRUST_PROXY: '10.0.0.1' }, ['api']),
    ).toEqual([
      { name: 'DISPATCH_LEASES', readBy: ['dispatcher'] },
      { name: 'LOG_RETENTION', readBy: ['archiver'] },
    ]);
  });

  it('none when a role reads each, or when they are blank (unset)', () => {
    expect(unreadSettings({ LB_DRAIN_MS: '0', PROJECT_BATCH: '5' }, ['api', 'projector'])).toEqual([]);
    expect(unreadSettings({ LB_DRAIN_MS: ' ', HOST: '0.0.0.0', PORT: '8080' }, ['dispatcher'])).toEqual([]);
  });

  it('name only variables Switchboard reads, and roles there are', () => {
    for (const [name, roles] of Object.entries(ROLE_SETTINGS)) {
      expect(CONFIG_ENTRIES.map((e) => e.name)).toContain(name);
      expect(roles.length).toBeGreaterThan(0);
      for (const r of roles) expect(['api', 'projector', 'dispatcher', 'archiver'] as Role[]).toContain(r);
    }
  });
});

describe('a worker started with an API setting', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  }, 30_000);
  afterAll(async () => {
    await killAllProcesses();
    await redis?.stop();
  });

  it('warns once at start, naming the variable, the role that reads it and ROLES', async () => {
    const p = await startProcess({
      roles: ['dispatcher'],
      redis,
      env: {
        LOG_LEVEL: 'info',
        WORKSPACES: 'roles-edges',
        DISCOVER_WORKSPACES: 'false',
        WS_MAX_PER_KEY: '10',
      },
    });
    const until = Date.now() + 5000;
    while (Date.now() < until && !/WS_MAX_PER_KEY/.test(p.logText())) await sleep(50);
    const log = p.logText();
    await p.stop();
    const lines = log.split('\n').filter((l) => l.includes('WS_MAX_PER_KEY'));
    expect(lines, log).toHaveLength(1);
    const line = JSON.parse(lines[0]!.slice(lines[0]!.indexOf('{'))) as { level: number; msg: string };
    expect(line.level).toBe(40); // warn
    expect(line.msg).toMatch(/WS_MAX_PER_KEY \(api\).*ROLES \(dispatcher\)/);
    // The harness's own settings for API processes (AUTH, LB_DRAIN_MS) are not set on a worker.
    expect(line.msg).not.toMatch(/LB_DRAIN_MS|AUTH/);
  }, 30_000);
});
