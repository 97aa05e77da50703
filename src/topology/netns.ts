/**
 * Linux network namespaces for the local topology (`npm run topology -- --vrrp`) and tests.
 *
 * A "star": one namespace per host (each with one interface and a private IPv4 address) joined
 * by a bridge that lives in a namespace of its own. Nothing is ever created in the root
 * namespace: veth pairs are made inside the bridge namespace with their peer placed directly
 * into the host namespace, so deleting the namespaces removes every interface, address and
 * route with them. Every name carries a short random run id (`sb-<id>-lb1`, bridge `br<id>`,
 * ports `v<id><host>`), so concurrent runs never collide; interface names stay within the
 * kernel's 15 characters.
 *
 *   const star = new NetnsStar({ subnet: '10.231.1', hosts: [{ name: 'app', octet: 10 }] });
 *   await star.create();              // throws (after undoing what it made) on failure
 *   spawn('ip', [...netnsExec(star.host('app').ns), 'redis-server']);
 *   await star.destroy();             // kills what still runs inside, deletes the namespaces
 *
 * destroy() may be called at any time, also while create() is still running: creation stops at
 * its next step and everything made so far is removed. An exit hook removes the namespaces
 * synchronously if the process ends without calling destroy() (uncaught exception,
 * process.exit). Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2; see probeNetns().
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Every `ip` call is bounded. */
const IP_TIMEOUT_MS = 10_000;
/** IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;
const NAME_RE = /^[A-Za-z0-9_.-]+$/;

/** `ip <args...>`; rejects with ip's stderr on failure. */
export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP('ip', args, { timeout: IP_TIMEOUT_MS });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

function ipSync(args: string[]): string {
  return execFileSync('ip', args, {
    timeout: IP_TIMEOUT_MS,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

/** A short random id (6 hex digits) for naming one run's namespaces and interfaces. */
export function shortId(): string {
  return randomBytes(3).toString('hex');
}

/** Command prefix that runs a program inside namespace `ns`: `[...netnsExec(ns), 'haproxy', ...]`. */
export function netnsExec(ns: string): string[] {
  return ['ip', 'netns', 'exec', ns];
}

export interface NetnsSupport {
  ok: boolean;
  /** Why namespaces cannot be used here ('' when ok). */
  reason: string;
}

/**
 * Can this process create network namespaces? Linux, root, `ip` (and `binaries`) installed, and
 * `ip netns add` really works (a throw-away namespace is created and deleted: containers often
 * run as root without CAP_SYS_ADMIN, or with a read-only /run).
 */
export function probeNetns(opts: { binaries?: string[] } = {}): NetnsSupport {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'not root (network namespaces need CAP_SYS_ADMIN)' };
  for (const bin of ['ip', ...(opts.binaries ?? [])]) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', bin], { stdio: 'ignore', timeout: 5000 });
    } catch {
      return { ok: false, reason: `${bin} is not installed` };
    }
  }
  const probe = `sb-probe-${shortId()}`;
  try {
    ipSync(['netns', 'add', probe]);
  } catch {
    return {
      ok: false,
      reason: '`ip netns add` does not work here (no CAP_SYS_ADMIN, or /run/netns is not writable)',
    };
  }
  try {
    ipSync(['netns', 'del', probe]);
  } catch {
    return { ok: false, reason: `could not delete the probe namespace ${probe}` };
  }
  return { ok: true, reason: '' };
}

/** Names of all network namespaces (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

function parsePids(out: string): number[] {
  return out
    .split(/\s+/)
    .filter((p) => /^\d+$/.test(p))
    .map(Number);
}

/** Processes whose network namespace is `ns` ([] when the namespace does not exist). */
export async function namespacePids(ns: string): Promise<number[]> {
  return parsePids(await ip('netns', 'pids', ns).catch(() => ''));
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

export interface KillOptions {
  /** Pids to leave alone (e.g. the calling process when it runs inside the namespace). */
  spare?: number[];
  /** SIGTERM first and wait this long before SIGKILL. Default 1000 ms; 0 = SIGKILL at once. */
  graceMs?: number;
}

/** End every process inside `ns` (SIGTERM, then SIGKILL); bounded. Returns the pids still alive. */
export async function killNamespaceProcesses(ns: string, opts: KillOptions = {}): Promise<number[]> {
  const spare = new Set(opts.spare ?? []);
  const pids = async () => (await namespacePids(ns)).filter((p) => !spare.has(p));
  const graceMs = opts.graceMs ?? 1000;
  let left = await pids();
  if (left.length === 0) return [];
  if (graceMs > 0) {
    signal(left, 'SIGTERM');
    for (let waited = 0; waited < graceMs && left.length > 0; waited += 100) {
      await sleep(100);
      left = await pids();
    }
  }
  for (let i = 0; i < 30 && left.length > 0; i++) {
    signal(left, 'SIGKILL');
    await sleep(100);
    left = await pids();
  }
  return left;
}

/** Create namespace `ns` with its loopback up. */
export async function addNamespace(ns: string): Promise<void> {
  if (!NAME_RE.test(ns)) throw new Error(`netns: invalid namespace name "${ns}"`);
  await ip('netns', 'add', ns);
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
}

/** Kill what runs inside `ns`, then delete it. Resolves false if it could not be deleted. */
export async function deleteNamespace(ns: string, opts: KillOptions = {}): Promise<boolean> {
  await killNamespaceProcesses(ns, opts);
  await ip('netns', 'del', ns).catch(() => undefined);
  return !(await listNamespaces().catch(() => [ns])).includes(ns);
}

/** Synchronous variant for exit hooks: SIGKILL everything inside, then delete. Never throws. */
export function deleteNamespaceSync(ns: string, opts: { spare?: number[] } = {}): void {
  const spare = new Set(opts.spare ?? []);
  try {
    signal(
      parsePids(ipSync(['netns', 'pids', ns])).filter((p) => !spare.has(p)),
      'SIGKILL',
    );
  } catch {
    /* no such namespace */
  }
  try {
    ipSync(['netns', 'del', ns]);
  } catch {
    /* already gone */
  }
}

export interface StarHostSpec {
  /** Short role name, e.g. `lb1` (at most 8 characters: it goes into interface names). */
  name: string;
  /** Last octet of the host's address in the /24. */
  octet: number;
}

export interface StarHost {
  name: string;
  /** Namespace name, `<prefix>-<id>-<name>`. */
  ns: string;
  /** The host's interface inside its namespace (`sb<id>`). */
  iface: string;
  /** The bridge port (in the bridge namespace) the host is attached to. */
  port: string;
  /** IPv4 address, e.g. 10.231.1.10. */
  address: string;
  /** Address with prefix length, e.g. 10.231.1.10/24. */
  cidr: string;
}

export interface NetnsStarOptions {
  /** Run id (default: shortId()). Letters and digits, at most 6 characters. */
  id?: string;
  /** Namespace name prefix. Default `sb`. */
  prefix?: string;
  /** First three octets of a private /24, e.g. `10.231.1`. */
  subnet: string;
  hosts: StarHostSpec[];
  /** Remove the namespaces synchronously when the process exits without destroy(). Default true. */
  exitHook?: boolean;
}

/** Namespaces joined by a bridge in a namespace of its own (see the file comment). */
export class NetnsStar {
  readonly id: string;
  readonly subnet: string;
  /** Namespace holding the bridge. */
  readonly bridgeNs: string;
  readonly bridge: string;
  readonly hosts: readonly StarHost[];
  private readonly made: string[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private destroying = false;
  private spare: number[] = [];
  private readonly exitHook: (() => void) | undefined;

  constructor(opts: NetnsStarOptions) {
    this.id = opts.id ?? shortId();
    if (!/^[a-z0-9]{1,6}$/.test(this.id))
      throw new Error(`netns: run id must be 1-6 [a-z0-9], got "${this.id}"`);
    const prefix = opts.prefix ?? 'sb';
    if (!/^[a-z][a-z0-9]{0,7}$/.test(prefix)) throw new Error(`netns: invalid prefix "${prefix}"`);
    const octets = opts.subnet.split('.');
    if (octets.length !== 3 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255))
      throw new Error(`netns: subnet must be three octets like 10.231.1, got "${opts.subnet}"`);
    this.subnet = opts.subnet;
    this.bridgeNs = `${prefix}-${this.id}-br`;
    this.bridge = `br${this.id}`;
    const seen = new Set<string>();
    this.hosts = opts.hosts.map((h) => {
      if (!/^[a-z][a-z0-9]{0,7}$/.test(h.name)) throw new Error(`netns: invalid host name "${h.name}"`);
      if (!Number.isInteger(h.octet) || h.octet < 1 || h.octet > 254)
        throw new Error(`netns: octet of ${h.name} must be 1..254`);
      if (seen.has(h.name) || seen.has(String(h.octet))) throw new Error(`netns: duplicate host ${h.name}`);
      seen.add(h.name);
      seen.add(String(h.octet));
      const address = `${opts.subnet}.${h.octet}`;
      return {
        name: h.name,
        ns: `${prefix}-${this.id}-${h.name}`,
        iface: `sb${this.id}`,
        port: `v${this.id}${h.name}`,
        address,
        cidr: `${address}/24`,
      };
    });
    for (const name of [this.bridge, ...this.hosts.flatMap((h) => [h.iface, h.port])]) {
      if (name.length > MAX_IFNAME)
        throw new Error(`netns: interface name ${name} longer than ${MAX_IFNAME}`);
    }
    if (opts.exitHook ?? true) {
      this.exitHook = () => this.destroySync();
      process.once('exit', this.exitHook);
    }
  }

  /** All namespace names of this run (bridge first). */
  get namespaces(): string[] {
    return [this.bridgeNs, ...this.hosts.map((h) => h.ns)];
  }

  host(name: string): StarHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`netns: no host ${name}`);
    return h;
  }

  /** `ip netns exec <ns of host>` prefix. */
  exec(name: string): string[] {
    return netnsExec(this.host(name).ns);
  }

  /**
   * Leave these pids alone in destroy() (the calling process, when it runs inside one of the
   * namespaces and cleans up after a parent that died).
   */
  spareOnDestroy(pids: number[]): void {
    this.spare = pids;
  }

  /**
   * Take charge of namespaces another process created with the same id (e.g. a child that must
   * clean up after its parent died): destroy() will then delete all of them.
   */
  adopt(): void {
    this.made.splice(0, this.made.length, ...this.namespaces);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Build the namespaces, bridge, veth pairs and addresses. On failure everything made is removed. */
  create(): Promise<void> {
    return this.serial(async () => {
      const step = async (...args: string[]) => {
        if (this.destroying) throw new Error('netns: creation aborted (destroy() was called)');
        await ip(...args);
      };
      const ns = async (name: string) => {
        if (this.destroying) throw new Error('netns: creation aborted (destroy() was called)');
        if (!NAME_RE.test(name)) throw new Error(`netns: invalid namespace name "${name}"`);
        await ip('netns', 'add', name);
        // Recorded only once it exists: a failed add (name taken) must not delete someone else's.
        this.made.push(name);
        await ip('-n', name, 'link', 'set', 'lo', 'up');
      };
      try {
        await ns(this.bridgeNs);
        await step('-n', this.bridgeNs, 'link', 'add', this.bridge, 'type', 'bridge');
        await step('-n', this.bridgeNs, 'link', 'set', this.bridge, 'up');
        for (const h of this.hosts) {
          await ns(h.ns);
          // Both ends are made in the bridge namespace's netlink context; the peer is created
          // directly inside the host namespace (no interface ever appears in the root namespace).
          await step(
            '-n',
            this.bridgeNs,
            'link',
            'add',
            h.port,
            'type',
            'veth',
            'peer',
            'name',
            h.iface,
            'netns',
            h.ns,
          );
          await step('-n', this.bridgeNs, 'link', 'set', h.port, 'master', this.bridge);
          await step('-n', this.bridgeNs, 'link', 'set', h.port, 'up');
          await step('-n', h.ns, 'addr', 'add', h.cidr, 'dev', h.iface);
          await step('-n', h.ns, 'link', 'set', h.iface, 'up');
        }
      } catch (err) {
        await this.teardown();
        throw err;
      }
    });
  }

  /**
   * Kill every process still running in the namespaces and delete them (hosts first, then the
   * bridge). Safe to call more than once and while create() runs. Resolves to the namespaces
   * that could not be deleted (normally none).
   */
  destroy(opts: { graceMs?: number } = {}): Promise<string[]> {
    this.destroying = true;
    return this.serial(() => this.teardown(opts.graceMs));
  }

  private async teardown(graceMs?: number): Promise<string[]> {
    const order = [...this.made].reverse();
    // Processes first, all namespaces in parallel (bounded per namespace), then the namespaces.
    await Promise.all(order.map((n) => killNamespaceProcesses(n, { spare: this.spare, graceMs })));
    const left: string[] = [];
    for (const n of order) {
      if (!(await deleteNamespace(n, { spare: this.spare, graceMs: 0 }))) left.push(n);
    }
    this.made.length = 0;
    if (this.exitHook && left.length === 0) process.off('exit', this.exitHook);
    return left;
  }

  /** Synchronous last-resort cleanup (exit hooks). */
  destroySync(): void {
    this.destroying = true;
    for (const n of [...this.made].reverse()) deleteNamespaceSync(n, { spare: this.spare });
    this.made.length = 0;
  }
}
