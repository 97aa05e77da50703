/** What a bench run prints: one JSON line, or the same figures as an aligned table. */
import os from 'node:os';
import type { RedisClient } from '../../adapters/redis/scripts.ts';

export interface Machine {
  readonly cpus: number;
  readonly model: string;
  readonly node: string;
  readonly redis: string;
}

export async function machine(redis: RedisClient): Promise<Machine> {
  const info = (await redis.info('server')) as string;
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
  };
}

export interface BenchResult {
  readonly workload: string;
  readonly parameters: Record<string, unknown>;
  readonly machine: Machine;
  readonly figures: object;
  readonly at: string;
}

export function formatResult(result: BenchResult, json: boolean): string {
  return json ? `${JSON.stringify(result)}\n` : `Switchboard bench: ${result.workload}\n${table(result)}`;
}

/** One line per leaf value, named by its path (`figures.runs.1000.steps`). */
function table(result: BenchResult): string {
  const lines: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
    } else lines.push(`${prefix}\t${Array.isArray(v) ? v.join(',') : String(v)}`);
  };
  walk('', result);
  const width = Math.max(...lines.map((l) => l.split('\t')[0]!.length));
  return `${lines
    .map((l) => {
      const [k, v] = l.split('\t');
      return `  ${k!.padEnd(width)}  ${v}`;
    })
    .join('\n')}\n`;
}
