/**
 * `npm run topology -- --check` with API keys on (the default): the one command it sends through
 * HAProxy carries the admin key the first API instance stored in the data directory, so it is
 * accepted (201), the JSON line says ok and the launcher exits 0 once everything stopped.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockFile } from '../../src/topology/local/data-dir-lock.ts';
import { LAUNCHER, oneOfEachArgs, tempDir } from './helpers.ts';

const dirs: { remove(): Promise<void> }[] = [];
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

describe('npm run topology -- --check', () => {
  it('sends its command with the admin key (API keys on): 201, ok, exit 0', async () => {
    const d = await tempDir('topology-check');
    dirs.push(d);
    const env: NodeJS.ProcessEnv = { ...process.env, AUTH: 'on' };
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', LAUNCHER, '--no-vrrp', '--check', '--data-dir', d.dir, ...oneOfEachArgs()],
        // SIGINT: the launcher's clean stop, should it hang.
        { env, timeout: 120_000, killSignal: 'SIGINT' },
        (err, stdout, stderr) => {
          const code = err ? (err as { code?: number | null }).code : 0;
          resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
        },
      );
    });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    const result = JSON.parse(line) as { ok: boolean; status: number };
    expect(result, `${r.stdout}\n${r.stderr}`).toMatchObject({ ok: true, status: 201 });
    expect(r.code).toBe(0);
    expect(existsSync(path.join(d.dir, 'admin-key'))).toBe(true);
    expect(existsSync(lockFile(d.dir))).toBe(false);
  }, 150_000);
});
