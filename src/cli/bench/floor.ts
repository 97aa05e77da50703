/**
 * `floor`: the hardware floor, one hand-written Lua step per assignment (lua/floor-any.lua: pop a
 * contact, ZINTER two availability sets, remove the agent, record, append one stream entry) from
 * `clients` connections, `count` steps in all. Its keys are a hash tag of its own, removed after.
 */
import { Redis } from 'ioredis';
import { KEY_ROOT } from '../../adapters/redis/keys.ts';
import { luaScript, runLua } from '../../adapters/redis/scripts.ts';
import { EXPERTISE, LANGUAGES, seededRandom, seedSkills } from '../sim/random.ts';
import { mean, nowNs, percentile, round, seconds } from '../sim/stats.ts';
import { mainThreadCpuUs } from './redis-time.ts';
import { type Note, seedAgents } from './workspace.ts';

/** The step itself, declared with the project's other Lua steps. */
export const FLOOR = luaScript('benchFloor', new URL('./lua/floor-any.lua', import.meta.url));

export interface FloorOptions {
  readonly agents: number;
  /** Connections, each running one step at a time. */
  readonly clients: number;
  /** Steps in all. */
  readonly count: number;
  readonly seed: number;
}

export interface FloorFigures {
  readonly opsPerS: number;
  readonly ops: number;
  readonly assigned: number;
  readonly meanLatencyUs: number | null;
  readonly p99LatencyUs: number | null;
  readonly seconds: number;
  /**
   * Redis main-thread CPU µs per step (INFO cpu) over the steps alone: each step's script, and
   * its connection's read and reply around it; not the set-up.
   */
  readonly redisCpuUsPerStep: number | null;
}

/** The floor step's keys (a hash tag of their own) and its arguments, filled; `drop` removes them. */
export interface FloorKeys {
  readonly keys: readonly string[];
  readonly skills: readonly string[];
  drop(): Promise<void>;
}

/** Makes `agents` agents available and queues `count` contacts for the floor step on `admin`'s Redis. */
export async function floorSetUp(
  admin: Redis,
  o: { readonly agents: number; readonly count: number; readonly seed: number },
): Promise<FloorKeys> {
  const tag = `{bench-floor-${Date.now()}}`;
  const queue = `${KEY_ROOT}:${tag}:queue`;
  const assignments = `${KEY_ROOT}:${tag}:assignments`;
  const stream = `${KEY_ROOT}:${tag}:events`;
  const skills = [...LANGUAGES, ...EXPERTISE].sort();
  const availability = new Map<string, string>(skills.map((s) => [s, `${KEY_ROOT}:${tag}:avail:${s}`]));
  const availKeys = [...availability.values()];
  const drop = async () => {
    await admin.unlink(queue, assignments, stream, ...availKeys).catch(() => {});
  };
  try {
    const rng = seededRandom(o.seed);
    const agents = seedAgents(o.agents, rng);
    const setup = admin.pipeline();
    agents.forEach((a, i) => {
      for (const s of a.skills) setup.zadd(availability.get(s)!, i, a.id);
    });
    await setup.exec();
    for (let i = 0; i < o.count; i += 10_000) {
      const args: (string | number)[] = [];
      for (let j = i; j < Math.min(o.count, i + 10_000); j++) {
        const [s1, s2] = seedSkills(rng);
        args.push(j, `contact-${j + 1}|${s1}|${s2}`);
      }
      await admin.zadd(queue, ...args);
    }
    await admin.script('LOAD', FLOOR.lua); // so no client's first call falls back to EVAL
  } catch (err) {
    await drop();
    throw err;
  }
  return { keys: [queue, assignments, stream, ...availKeys], skills, drop };
}

export async function floorWorkload(url: string, o: FloorOptions, note: Note): Promise<FloorFigures> {
  const admin = new Redis(url, { maxRetriesPerRequest: 2 });
  const clients: Redis[] = [];
  let floor: FloorKeys | undefined;
  try {
    note(`setting up ${o.agents} agents and ${o.count} contacts`);
    floor = await floorSetUp(admin, o);
    const { keys, skills } = floor;
    for (let i = 0; i < o.clients; i++)
      clients.push(new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: false }));
    await Promise.all(clients.map((c) => c.ping()));

    note(`running ${o.count} steps from ${o.clients} clients`);
    let started = 0;
    let assigned = 0;
    const latencies: number[] = [];
    const cpu0 = await mainThreadCpuUs(admin);
    const t0 = nowNs();
    await Promise.all(
      clients.map(async (c) => {
        while (started < o.count) {
          started++;
          const s = nowNs();
          const r = await runLua(c, FLOOR, keys, skills);
          latencies.push(Number(nowNs() - s) / 1000);
          if (r === 1) assigned++;
        }
      }),
    );
    const elapsed = seconds(nowNs() - t0);
    const cpuUs = (await mainThreadCpuUs(admin)) - cpu0;
    return {
      opsPerS: Math.round(o.count / elapsed),
      ops: o.count,
      assigned,
      meanLatencyUs: round(mean(latencies)),
      p99LatencyUs: round(percentile(latencies, 99)),
      seconds: round(elapsed, 3) ?? 0,
      redisCpuUsPerStep: round(cpuUs / o.count, 1),
    };
  } finally {
    await floor?.drop();
    admin.disconnect();
    for (const c of clients) c.disconnect();
  }
}
