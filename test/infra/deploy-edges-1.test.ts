/**
 * The load balancer's entrypoint (infra/lb/switchboard-lb.sh) refuses a setting it cannot render.
 * A user who set LB_ROUTER_ID, CHECK_SCRIPT or HAPROXY_PIDFILE to a value with a space saw the
 * script print `bad LB_ROUTER_ID` and go on: the value was checked inside the `declare -A` that
 * holds the template's values, whose status hides the check's, so keepalived.conf was written
 * with an empty `router_id` or an empty check `script` (render-keepalived exited 0, and `run`
 * failed later on `keepalived -t` instead). Now the script stops at the bad value, with its name,
 * and writes no file.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../support/processes.ts';
import { tempDir } from '../topology/helpers.ts';

const execFileP = promisify(execFile);
const INFRA = path.join(PROJECT_ROOT, 'infra');
const LB_SCRIPT = path.join(INFRA, 'lb', 'switchboard-lb.sh');
const CHECK_SCRIPT = path.join(INFRA, 'keepalived', 'check_haproxy.sh');

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
const compose = parse(readFileSync(path.join(INFRA, 'docker-compose.yml'), 'utf8'), { merge: true }) as any;

let tmp: { dir: string; remove(): Promise<void> };
let secretsDir: string;

beforeAll(async () => {
  tmp = await tempDir('deploy-edges-1');
  secretsDir = path.join(tmp.dir, 'secrets');
  await mkdir(secretsDir);
  await writeFile(path.join(secretsDir, 'vrrp_password'), 'Vr4-x_9\n');
});

afterAll(async () => {
  await tmp?.remove();
});

async function run(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileP(LB_SCRIPT, args, {
      env: { ...process.env, ...env },
      timeout: 20_000,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function anInterface(): string {
  const names = existsSync('/sys/class/net') ? readdirSync('/sys/class/net') : [];
  if (names.includes('eth0')) return 'eth0';
  return names.find((n) => n !== 'lo') ?? 'lo';
}

const lbEnv = (): Record<string, string> => ({
  ...(compose.services['lb-1'].environment as Record<string, string>),
  SECRETS_DIR: secretsDir,
  KEEPALIVED_TMPL: path.join(INFRA, 'keepalived', 'keepalived.conf.tmpl'),
  CHECK_SCRIPT,
  LB_INTERFACE: anInterface(),
});

describe('switchboard-lb render-keepalived', () => {
  it('renders the compose settings (the baseline: exit 0, a router_id and both check scripts)', async () => {
    const file = path.join(tmp.dir, 'good.conf');
    const r = await run(['render-keepalived', file], lbEnv());
    expect(r.code, r.out).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/router_id haproxy_1\n/);
    expect(text).toContain(`script "${CHECK_SCRIPT} /var/run/haproxy/haproxy.pid 127.0.0.1:8404"`);
  });

  for (const [name, value] of [
    ['LB_ROUTER_ID', 'haproxy 1'],
    ['CHECK_SCRIPT', '/etc/keepalived/check haproxy.sh'],
    ['HAPROXY_PIDFILE', '/var/run/haproxy/haproxy pid'],
  ] as const) {
    it(`stops on a bad ${name}, naming it, and writes no keepalived.conf`, async () => {
      const file = path.join(tmp.dir, `bad-${name}.conf`);
      const r = await run(['render-keepalived', file], { ...lbEnv(), [name]: value });
      expect(r.out).toContain(`bad ${name}`);
      expect(r.code, `exit code; output: ${r.out}`).not.toBe(0);
      expect(existsSync(file), 'a keepalived.conf was written').toBe(false);
    });
  }
});
