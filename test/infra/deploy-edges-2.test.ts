/**
 * `docker compose stop` (a deploy, a scale-down) leaves each Switchboard container the time its
 * process may take to stop. A process stops within SHUTDOWN_TIMEOUT_MS (10 s), and an API
 * instance drains first for LB_DRAIN_MS, up to twice that while requests still arrive (src/main.ts
 * forces its exit past SHUTDOWN_TIMEOUT_MS + 2 × LB_DRAIN_MS: 15 s for the compose file's api).
 * Docker waits `stop_grace_period` (10 s unless set) and then SIGKILLs: a user saw an api replica
 * killed mid-stop (in-flight requests cut, no `stopped cleanly`) and the workers' stop racing the
 * kill at the same 10 s. Now the compose file gives each service more than its process's bound.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_ENTRIES } from '../../src/app/config.ts';
import { PROJECT_ROOT } from '../support/processes.ts';

const composeText = readFileSync(path.join(PROJECT_ROOT, 'infra', 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Record<string, unknown>> };
const services = compose.services;

/** A compose duration (`20s`, `1m30s`, `500ms`) in ms; Docker's default 10 s when unset. */
function durationMs(value: unknown): number {
  if (value === undefined) return 10_000;
  const text = String(value);
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  let total = 0;
  let rest = text;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)) {
    total += Number(m[1]) * (units[m[2] ?? 's'] ?? 0);
    rest = rest.replace(m[0], '');
  }
  if (rest !== '') throw new Error(`not a compose duration: ${text}`);
  return total;
}

const defaultOf = (name: string): number => Number(CONFIG_ENTRIES.find((e) => e.name === name)?.default);

describe('docker-compose.yml stop grace periods', () => {
  it('reads durations as compose does', () => {
    expect(durationMs(undefined)).toBe(10_000);
    expect(durationMs('20s')).toBe(20_000);
    expect(durationMs('1m30s')).toBe(90_000);
    expect(() => durationMs('20')).toThrow();
  });

  it("gives every Switchboard service longer than its process's own stop bound", () => {
    const app = Object.entries(services).filter(([, s]) => s.image === 'switchboard:local');
    expect(app.map(([name]) => name).sort()).toEqual(['api', 'workers']);
    for (const [name, s] of app) {
      const env = (s.environment ?? {}) as Record<string, string>;
      const roles = (env.ROLES ?? 'api').split(',').map((r) => r.trim());
      const shutdown = Number(env.SHUTDOWN_TIMEOUT_MS ?? defaultOf('SHUTDOWN_TIMEOUT_MS'));
      const drain = roles.includes('api') ? Number(env.LB_DRAIN_MS ?? defaultOf('LB_DRAIN_MS')) : 0;
      const bound = shutdown + 2 * drain;
      expect(Number.isFinite(bound) && bound > 0, name).toBe(true);
      // A second to spare, so the process's own bound (with its log line) ends a slow stop first.
      expect({ service: name, graceMs: durationMs(s.stop_grace_period) }).toEqual({
        service: name,
        graceMs: expect.toSatisfy((g: number) => g >= bound + 1000, `at least ${bound + 1000} ms`),
      });
    }
  });
});
