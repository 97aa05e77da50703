/**
 * A Redis that stops answering without closing a connection (a frozen or cut-off host), for as
 * long as a test needs and no longer: `freezeRedis(admin)` stops the redis-server process
 * (SIGSTOP) and `thaw()` continues it (SIGCONT) at once. CLIENT PAUSE <ms> ALL cannot be ended
 * early: CLIENT UNPAUSE waits for the pause like every other command.
 *
 * The same for the clients as a pause: the port stays open, connections are accepted (by the
 * kernel) and nothing is answered until the thaw. Unlike a pause, the server's clock runs on: a key
 * whose TTL passes meanwhile expires when the server goes on.
 *
 * A single server only: a Redis Cluster node stopped longer than cluster-node-timeout is failed
 * over, so cluster suites pause their nodes instead. The server must run on this machine; one
 * elsewhere (SWITCHBOARD_TEST_REDIS_URL, a container) is paused with CLIENT PAUSE for `atMostMs`
 * instead, and `thaw()` then waits for the pause to end.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { RedisClient } from '../../src/adapters/redis/scripts.ts';

const execFileP = promisify(execFile);

export interface FreezeOptions {
  /** Thawed after this long even if the test never calls `thaw()` (a bound, not the expected length). */
  readonly atMostMs: number;
}

export interface Frozen {
  /** Lets the server answer again; resolves once it does. Safe to call twice. */
  thaw(): Promise<void>;
}

/**
 * The pid of the redis-server `admin` is connected to, when that process runs on this machine:
 * its process title names the port it listens on.
 */
async function localPid(admin: RedisClient): Promise<number | undefined> {
  const info = String(await admin.call('INFO', 'server'));
  const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
  const port = /^tcp_port:(\d+)/m.exec(info)?.[1];
  if (!Number.isInteger(pid) || pid <= 0 || !port) return undefined;
  // Linux's /proc, else ps (a process start, slower on a loaded machine).
  const title = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    .catch(() => execFileP('ps', ['-o', 'args=', '-p', String(pid)]).then((r) => r.stdout))
    .catch(() => ''); // no such process here
  return /redis-server/.test(title) && title.includes(`:${port}`) ? pid : undefined;
}

/** Makes the single Redis `admin` is connected to stop answering until `thaw()` (or `atMostMs`). */
export async function freezeRedis(admin: RedisClient, opts: FreezeOptions): Promise<Frozen> {
  const pid = await localPid(admin);
  if (pid === undefined) {
    await admin.call('CLIENT', 'PAUSE', String(opts.atMostMs), 'ALL');
    return { thaw: async () => void (await admin.call('CLIENT', 'UNPAUSE').catch(() => {})) };
  }
  let frozen = true;
  const cont = () => {
    if (!frozen) return;
    frozen = false;
    clearTimeout(bound);
    process.off('exit', cont);
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  };
  // Never left stopped: not past the bound, not past this process.
  const bound = setTimeout(cont, opts.atMostMs);
  process.once('exit', cont);
  process.kill(pid, 'SIGSTOP');
  return {
    thaw: async () => {
      cont();
      // Answering again: the one PING that waits for it.
      await admin.ping().catch(() => {});
    },
  };
}
