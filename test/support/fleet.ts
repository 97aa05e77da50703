/**
 * Switchboard as it is deployed, for the e2e and failover suites: one test Redis (the fixture of
 * test/support/redis.ts), a client of it, and processes of each role started together as separate
 * OS processes (api-1, api-2, ..., projector-1, ..., dispatcher-1, ..., archiver-1, ...).
 *
 *   let fleet: Fleet;
 *   beforeAll(async () => { fleet = await Fleet.start({ api: 2, projector: 2, dispatcher: 2, env }); });
 *   afterAll(async () => { expect(await fleet?.stop()).toEqual(...); });
 */
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';
import { type ExitResult, killAllProcesses, type SwitchboardProcess, startProcess } from './processes.ts';
import { startTestRedis, type TestRedis } from './redis.ts';

export type FleetRole = 'api' | 'projector' | 'dispatcher' | 'archiver';
const ROLES: readonly FleetRole[] = ['api', 'projector', 'dispatcher', 'archiver'];

export interface FleetOptions {
  /** How many processes of each role (default 0). */
  readonly api?: number;
  readonly projector?: number;
  readonly dispatcher?: number;
  readonly archiver?: number;
  /** Environment of every process (e.g. WORKSPACES). */
  readonly env?: Readonly<Record<string, string>>;
  /** Environment of the API processes, on top of `env` (e.g. ADVERTISE_ADDRESS). */
  readonly apiEnv?: Readonly<Record<string, string>>;
  /** Environment of the archiver processes, on top of `env` (e.g. LOG_RETENTION). */
  readonly archiverEnv?: Readonly<Record<string, string>>;
}

export class Fleet {
  /** The processes of each role, in name order; `restart` swaps replacements in. */
  readonly processes: Record<FleetRole, SwitchboardProcess[]>;

  private constructor(
    readonly redis: TestRedis,
    /** A client of the fleet's Redis; closed by `stop`. */
    readonly client: RedisClient,
    private readonly opts: FleetOptions,
    processes: Record<FleetRole, SwitchboardProcess[]>,
  ) {
    this.processes = processes;
  }

  /** Starts a test Redis and every process; if one fails to start, stops the rest and throws. */
  static async start(opts: FleetOptions): Promise<Fleet> {
    const redis = await startTestRedis();
    const wanted = ROLES.flatMap((role) =>
      Array.from({ length: opts[role] ?? 0 }, (_, i) => ({ role, name: `${role}-${i + 1}` })),
    );
    const started = await Promise.allSettled(wanted.map((w) => Fleet.spawn(redis, opts, w.role, w.name)));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await killAllProcesses();
      await redis.stop();
      throw failed.reason;
    }
    const all = started.map((s) => (s as PromiseFulfilledResult<SwitchboardProcess>).value);
    const processes = Object.fromEntries(
      ROLES.map((role) => [role, all.filter((_, i) => wanted[i]!.role === role)]),
    ) as Record<FleetRole, SwitchboardProcess[]>;
    return new Fleet(redis, redis.client(), opts, processes);
  }

  private static spawn(
    redis: TestRedis,
    opts: FleetOptions,
    role: FleetRole,
    name: string,
    port?: number,
  ): Promise<SwitchboardProcess> {
    const env = {
      ...opts.env,
      ...(role === 'api' ? opts.apiEnv : {}),
      ...(role === 'archiver' ? opts.archiverEnv : {}),
    };
    return startProcess({ roles: [role], redis, env, name, ...(port !== undefined ? { port } : {}) });
  }

  get api(): SwitchboardProcess[] {
    return this.processes.api;
  }

  get projector(): SwitchboardProcess[] {
    return this.processes.projector;
  }

  get dispatcher(): SwitchboardProcess[] {
    return this.processes.dispatcher;
  }

  get archiver(): SwitchboardProcess[] {
    return this.processes.archiver;
  }

  get all(): SwitchboardProcess[] {
    return ROLES.flatMap((role) => this.processes[role]);
  }

  /**
   * Starts each of `victims` again (same role, name and port) and puts the new process in its
   * place; resolves with the replacements, in the victims' order, once they serve.
   */
  async restart(victims: readonly SwitchboardProcess[]): Promise<SwitchboardProcess[]> {
    const replacements = await Promise.all(
      victims.map((v) => Fleet.spawn(this.redis, this.opts, this.roleOf(v), v.name, v.port)),
    );
    for (const role of ROLES) {
      this.processes[role] = this.processes[role].map((p) => replacements[victims.indexOf(p)] ?? p);
    }
    return replacements;
  }

  private roleOf(p: SwitchboardProcess): FleetRole {
    const role = ROLES.find((r) => this.processes[r].includes(p));
    if (!role) throw new Error(`${p.name} is not a process of this fleet`);
    return role;
  }

  /**
   * SIGTERM every process and wait for it (SIGKILL after 15 s), kill anything left, close the
   * client and stop Redis. Resolves with each process's exit code or signal, in `all` order.
   */
  async stop(): Promise<ExitResult[]> {
    const codes = await Promise.all(this.all.map((p) => p.stop().catch((): ExitResult => -1)));
    await killAllProcesses();
    this.client.disconnect();
    await this.redis.stop();
    return codes;
  }
}
