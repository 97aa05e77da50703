/**
 * `bench all --redis-url` asks that Redis once before any workload, as a single workload does
 * (bench-not-redis.test.ts): something that is not Redis there (here an HTTP server), or nothing
 * listening, stops the run at once with one line on stderr and exit 1, rather than each workload
 * failing in turn on it. No workload runs and nothing is written to --out.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { localServer } from '../support/local-server.ts';
import { timed } from './run-cli.ts';

const redisUrlOf = (httpUrl: string, login = '') => httpUrl.replace('http://', `redis://${login}`);

/** A directory --out may name that does not exist yet (its parent does, and is writable). */
function outDir(): string {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'bench-all-not-redis-'));
  onTestFinished(() => rmSync(parent, { recursive: true, force: true }));
  return path.join(parent, 'out');
}

/** A loopback port with nothing listening on it (one just closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('bench all with a --redis-url that is not a Redis it can use', () => {
  it('not Redis: one line, exit 1, at once, no workload run, nothing in --out', async () => {
    const http = await localServer((_req, res) => res.end('hello'));
    const url = redisUrlOf(http.url, ':s3cret@');
    const out = outDir();
    const run = await timed('bench', ['all', '--tiny', '--redis-url', url, '--out', out]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `^bench: what answers at ${redisUrlOf(http.url, ':\\*\\*\\*@')} is not Redis \\(Protocol error[^\\n]*\\): check --redis-url, that it names the host and port of a Redis`,
      ),
    );
    expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
    expect(run.stderr).not.toMatch(/failed:|bench all:|Please report this|s3cret|\n\s+at /);
    expect(run.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    expect(run.seconds, run.stderr).toBeLessThan(10);
  });

  it('nothing listening: one line, exit 1, at once, as a single workload says it', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const out = outDir();
    const run = await timed('bench', ['all', '--tiny', '--redis-url', url, '--out', out]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^bench: cannot reach Redis at ${url}: [^\\n]*ECONNREFUSED`));
    expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
    expect(run.stderr).not.toMatch(/failed:|bench all:|\n\s+at /);
    expect(run.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    expect(run.seconds, run.stderr).toBeLessThan(10);
  });
});
