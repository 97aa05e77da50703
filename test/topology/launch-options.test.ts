/**
 * `npm run topology` refuses options that make no sense before it starts anything: exit 2, the
 * option named, nothing written in the data directory. Two of its ports on the same number
 * (HAProxy would split the port's connections between two frontends, or fail once the cluster
 * is made) and a count or port out of range.
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { launcherEntry } from '../support/main-build.ts';
import { tempDir } from './helpers.ts';

const dirs: { remove(): Promise<void> }[] = [];
/** Every port free (a case naming a port gives it instead: `portsBut`; an option is given once). */
const ANY_PORTS = [
  '--http-port',
  '0',
  '--tls-port',
  '0',
  '--stats-port',
  '0',
  '--redis-port',
  '0',
  '--status-port',
  '0',
];
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

/** ANY_PORTS without the options `args` gives, followed by `args`. */
function portsBut(args: readonly string[]): string[] {
  const named = new Set(args.filter((a) => a.startsWith('--')));
  const rest: string[] = [];
  for (let i = 0; i < ANY_PORTS.length; i += 2)
    if (!named.has(ANY_PORTS[i]!)) rest.push(ANY_PORTS[i]!, ANY_PORTS[i + 1]!);
  return [...rest, ...args];
}

/** Runs the launcher with `args` (killed after 20 s: a launch that went ahead is a failure). */
function run(dataDir: string, args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...launcherEntry(), '--no-vrrp', '--data-dir', dataDir, ...args],
      { timeout: 20_000, killSignal: 'SIGINT' },
      (err, _stdout, stderr) => {
        const code = err ? ((err as { code?: number | null }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, stderr, ms: Date.now() - started });
      },
    );
  });
}

describe('npm run topology: options that make no sense', () => {
  it('refuses two ports on the same number, naming both options, before anything starts', async () => {
    const d = await tempDir('topology-options');
    dirs.push(d);
    const cases: [string[], RegExp][] = [
      [
        ['--http-port', '18123', '--tls-port', '18123'],
        /--tls-port 18123 is also --http-port: give each port its own number/,
      ],
      [['--stats-port', '18124', '--redis-port', '18124'], /--redis-port 18124 is also --stats-port/],
      [['--http-port', '18125', '--status-port', '18125'], /--status-port 18125 is also --http-port/],
    ];
    for (const [args, message] of cases) {
      const r = await run(d.dir, portsBut(args));
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
    }
    // Refused before the launcher wrote anything there.
    for (const f of ['cluster', 'status.json', 'logs', 'launcher.pid'])
      expect(existsSync(path.join(d.dir, f)), f).toBe(false);
  }, 90_000);

  it('refuses a data directory that cannot be made, naming --data-dir, without a stack trace', async () => {
    const d = await tempDir('topology-options-dir');
    dirs.push(d);
    const file = path.join(d.dir, 'a-file');
    writeFileSync(file, 'not a directory\n');
    const r = await run(path.join(file, 'data'), [...ANY_PORTS]);
    expect(r.stderr).toMatch(/--data-dir \S+a-file\/data cannot be used: ENOTDIR/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(2);
  }, 30_000);

  it('refuses a data directory under /proc, where mkdir answers ENOENT with its parent there (the launch hung)', async () => {
    // Node's recursive mkdirSync loops for ever there, at 100 % CPU: the launcher never answered.
    const r = await run(`/proc/sb-launch-${process.pid}/data`, [...ANY_PORTS]);
    expect(r.stderr).toMatch(/--data-dir \/proc\/\S+ cannot be used: ENOENT/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code, r.stderr).toBe(2);
  }, 30_000);

  it('refuses an empty data directory (it would be the directory the launcher runs in)', async () => {
    const d = await tempDir('topology-options-empty');
    dirs.push(d);
    // Run from the temporary directory: before, the launch went ahead there.
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [...launcherEntry(), '--no-vrrp', '--data-dir', '', ...ANY_PORTS],
        { timeout: 20_000, killSignal: 'SIGINT', cwd: d.dir },
        (err, _stdout, stderr) => {
          const code = err ? ((err as { code?: number | null }).code ?? null) : 0;
          resolve({ code: typeof code === 'number' ? code : null, stderr });
        },
      ),
    );
    expect(r.stderr).toMatch(/--data-dir must name a directory/);
    expect(r.code, r.stderr).toBe(2);
    for (const f of ['cluster', 'status.json', 'logs', 'launcher.pid'])
      expect(existsSync(path.join(d.dir, f)), f).toBe(false);
  }, 30_000);

  it('refuses counts of 0 and ports out of range, naming the option', async () => {
    const d = await tempDir('topology-options-range');
    dirs.push(d);
    for (const [args, message] of [
      [['--api', '0'], /--api must be an integer from 1 to 16 \(got "0"\)/],
      [['--http-port', '70000'], /--http-port must be an integer from 0 to 65535/],
      [['--haproxy-restart-delay', '50'], /--haproxy-restart-delay must be an integer from 100/],
    ] as const) {
      const r = await run(d.dir, portsBut(args));
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.code).toBe(2);
    }
  }, 60_000);
});
