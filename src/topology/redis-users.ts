/**
 * The users of a Redis that Switchboard starts itself (the private redis-server, the cluster
 * launcher, the topology): written to an ACL file (`--aclfile`) holding only SHA-256 hashes of
 * the passwords, with owner-only permissions; the passwords themselves are kept in a credentials
 * file (0600) under the data directory, for the processes that connect. Nothing secret goes on a
 * command line, where `ps` would show it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { APP_ACL_RULES, APP_USER } from '../adapters/redis/acl.ts';
import { asideName } from './pid-file.ts';

export interface AclUser {
  name: string;
  password: string;
  /** ACL rules, e.g. ['+ping', '+auth', '+quit'] or ['~*', '&*', '+@all']. */
  rules: readonly string[];
}

/** A user name and password to connect with. */
export interface RedisLogin {
  readonly user: string;
  readonly password: string;
}

/** The `default` user with every right: administration (CONFIG, ACL, redis-cli --cluster). */
export const ADMIN_RULES = ['~*', '&*', '+@all'];

/** The user replicas log in to their master with (masteruser): replication only. */
export const REPLICA_USER = 'replica';
export const REPLICA_RULES = ['resetkeys', 'resetchannels', '-@all', '+psync', '+replconf', '+ping'];

export function newPassword(): string {
  return randomBytes(24).toString('hex');
}

export function checkUser(u: AclUser): void {
  if (!/^[A-Za-z0-9_.:-]+$/.test(u.name)) throw new Error(`invalid ACL user name ${u.name}`);
  if (/[\s"'\\]/.test(u.password) || u.password.length === 0) {
    throw new Error(`ACL password of ${u.name} must be non-empty without spaces, quotes or backslashes`);
  }
}

/** One aclfile line: the password as its SHA-256 hash (`#<hex>`), never in clear. */
export function aclFileLine(u: AclUser): string {
  checkUser(u);
  const hash = createHash('sha256').update(u.password).digest('hex');
  return ['user', u.name, 'on', `#${hash}`, ...u.rules].join(' ');
}

/**
 * Writes `text` readable and writable by the owner only (also when the file existed with other
 * modes): written aside and moved into place, so the file is whole or as it was. Written in place,
 * a full disk (or a process killed while writing) left it empty: the passwords of a private
 * redis-server empty, every later start was refused until the file was removed by hand.
 */
export function writePrivateFile(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const aside = asideName(file, '.new');
  try {
    writeFileSync(aside, text, { mode: 0o600, flag: 'wx' });
    chmodSync(aside, 0o600);
    renameSync(aside, file);
  } catch (err) {
    rmSync(aside, { force: true });
    throw err;
  }
}

/**
 * The users an ACL file defines. A `default` user is always written: with `adminPassword` it
 * needs that password (`requirepass`), without it it stays as Redis starts it (no password:
 * only for throw-away test servers on loopback).
 */
export function aclFileText(users: readonly AclUser[], adminPassword?: string): string {
  const lines = users.filter((u) => u.name !== 'default').map(aclFileLine);
  const admin =
    adminPassword === undefined
      ? ['user', 'default', 'on', 'nopass', ...ADMIN_RULES].join(' ')
      : aclFileLine({ name: 'default', password: adminPassword, rules: ADMIN_RULES });
  return `${[admin, ...lines].join('\n')}\n`;
}

/** Passwords of a Redis Switchboard started: the app user's, the admin's (default), the replicas'. */
export interface RedisCredentials {
  readonly app: RedisLogin;
  readonly admin: RedisLogin;
  readonly replica: RedisLogin;
}

export function newCredentials(): RedisCredentials {
  return {
    app: { user: APP_USER, password: newPassword() },
    admin: { user: 'default', password: newPassword() },
    replica: { user: REPLICA_USER, password: newPassword() },
  };
}

/**
 * Why `text`, a credentials file's, gives no passwords to use (not JSON, not an object, a login
 * without its user or password), or undefined.
 */
export function credentialsTextProblem(text: string): string | undefined {
  let saved: unknown;
  try {
    saved = JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  if (typeof saved !== 'object' || saved === null || Array.isArray(saved)) return 'not a JSON object';
  const logins = saved as Record<string, { user?: unknown; password?: unknown } | undefined>;
  const lacking = (field: 'user' | 'password') =>
    (['app', 'admin', 'replica'] as const).filter((name) => {
      const value = logins[name]?.[field];
      return typeof value !== 'string' || value === '';
    });
  const problems = [
    ...(lacking('password').length > 0 ? [`no password for ${lacking('password').join(', ')}`] : []),
    ...(lacking('user').length > 0 ? [`no user for ${lacking('user').join(', ')}`] : []),
  ];
  return problems.length > 0 ? problems.join('; ') : undefined;
}

/**
 * The credentials kept in `file` (JSON, 0600), made on first use. A later start reads the same
 * passwords, so clients configured with them keep working across restarts. A file that does not
 * give them all (damaged, or a password missing) is named with what to do, never replaced: the
 * passwords a client was given would no longer match.
 */
export function loadOrCreateCredentials(file: string): RedisCredentials {
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    const problem = credentialsTextProblem(text);
    if (problem !== undefined)
      throw new Error(
        `${file} cannot be read as the passwords of the Redis it is kept for (${problem}); remove it and start again to have new passwords made (the Redis is started with them, its data kept; a client given the old ones needs the new), or put back a copy of it`,
      );
    chmodSync(file, 0o600);
    return JSON.parse(text) as RedisCredentials;
  }
  const made = newCredentials();
  writePrivateFile(file, `${JSON.stringify(made, null, 2)}\n`);
  return made;
}

/** Every user of a Switchboard-made Redis: the app user with its ACL, the replication user, and more. */
export function switchboardUsers(c: RedisCredentials, more: readonly AclUser[] = []): AclUser[] {
  return [
    { name: c.app.user, password: c.app.password, rules: APP_ACL_RULES },
    { name: c.replica.user, password: c.replica.password, rules: REPLICA_RULES },
    ...more,
  ];
}

/** `redis://user:password@host:port` (or rediss://). */
export function loginUrl(login: RedisLogin, host: string, port: number, scheme = 'redis'): string {
  return `${scheme}://${encodeURIComponent(login.user)}:${encodeURIComponent(login.password)}@${host}:${port}`;
}
