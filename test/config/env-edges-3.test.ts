/**
 * HOST and ADVERTISE_ADDRESS's host took the legacy IPv4 forms the resolver (inet_aton, behind
 * getaddrinfo) reads as an address: fewer than four parts (127.1 is 127.0.0.1, 1.16777216 is
 * 1.1.0.0), hex parts (0x7f.1), a single number (2130706433); and values ending in a number that no
 * form reads (4294967296, 999.1), which went to a name lookup. A user who wrote HOST=127.1 got a
 * listener on an address they did not write, or a lookup. They are now refused at the check (exit
 * 2), naming the variable and saying to write four decimal numbers. Host names (whose last label is
 * not a number), dotted decimal IPv4 and IPv6 stay taken.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/app/config.ts';
import { MAIN_BUNDLE } from '../support/main-build.ts';

const problems = (env: Record<string, string>) => {
  const parsed = parseConfig(env);
  return isLeft(parsed) ? parsed.left.join('\n') : '';
};

const HOST_PROBLEM =
  /^HOST: must be a host name or an IP address to listen on, such as 127\.0\.0\.1 or 0\.0\.0\.0 \(got "/;

describe('HOST in the legacy IPv4 forms', () => {
  it('refuses the short, hex and single-number forms, saying which address the resolver reads and to write four decimal numbers', () => {
    const read: Record<string, string> = {
      '127.1': '127.0.0.1',
      '10.1': '10.0.0.1',
      '127.0.1': '127.0.0.1',
      '0x7f.1': '127.0.0.1',
      '0X7F.1': '127.0.0.1',
      '0x7f.0.0.1': '127.0.0.1',
      '0x7f.0x0.0x0.0x1': '127.0.0.1',
      '127.0.0.0x1': '127.0.0.1',
      '1.16777215': '1.255.255.255',
      '2130706433': '127.0.0.1',
      '0x7f000001': '127.0.0.1',
      '0': '0.0.0.0',
      '4294967295': '255.255.255.255',
    };
    for (const [h, address] of Object.entries(read)) {
      const p = problems({ HOST: h });
      expect(p, h).toMatch(HOST_PROBLEM);
      expect(p, h).toContain(`got "${h}", which the resolver reads as ${address}`);
      expect(p, h).toContain(`write the four decimal numbers (${address})`);
    }
  });

  it('refuses a value ending in a number that no IPv4 form reads (it went to a name lookup)', () => {
    for (const h of [
      '1.16777216',
      '4294967296',
      '99999999999999999999',
      '999.1',
      '1.256.1',
      'api.1',
      'api.0x1',
      '0x',
    ])
      expect(problems({ HOST: h }), h).toMatch(
        new RegExp(
          `${HOST_PROBLEM.source}${h.replaceAll('.', '\\.')}", which is no IPv4 address: .*four decimal numbers`,
        ),
      );
  });

  it('refuses an IPv6 address ending in a short IPv4 form', () => {
    expect(problems({ HOST: '::ffff:127.1' })).toMatch(HOST_PROBLEM);
  });

  it('refuses the same forms in ADVERTISE_ADDRESS', () => {
    for (const a of ['127.1:8080', '0x7f.0.0.1:8080', '2130706433:8080', '1.16777216:8080', 'api.1:8080'])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toMatch(
        /^ADVERTISE_ADDRESS: must be host:port .*four decimal numbers/,
      );
  });

  it('still takes host names, dotted decimal IPv4 and IPv6', () => {
    for (const h of [
      '127.0.0.1',
      '0.0.0.0',
      '10.0.0.0',
      '255.255.255.255',
      'localhost',
      'api-1.internal',
      'api_1',
      '1a.2b',
      '0x7f.internal',
      'cafe',
      'deadbeef',
      '::1',
      '::',
      '::ffff:127.0.0.1',
      'fe80::1',
    ])
      expect(problems({ HOST: h }), h).toBe('');
    expect(loadConfig({ HOST: 'api-1.internal' }).host).toBe('api-1.internal');
    for (const a of ['10.0.0.5:8080', 'api-1.internal:8000', 'localhost:8080', 'auto'])
      expect(problems({ ADVERTISE_ADDRESS: a }), a).toBe('');
  });

  it('the main command exits 2 on HOST=127.1, naming HOST and the address to write', async () => {
    // A data directory of its own: on a tree that takes 127.1, the process starts (and is ended).
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-host-'));
    // The run's build of src/main.ts when there is one (as test/support/processes.ts runs it).
    const main = existsSync(MAIN_BUNDLE) ? [MAIN_BUNDLE] : ['--import', 'tsx', 'src/main.ts'];
    const run = promisify(execFile)(process.execPath, main, {
      env: { ...process.env, HOST: '127.1', PORT: '0', DATA_DIR: dataDir },
      timeout: 8000,
    });
    const failed = await run.then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    rmSync(dataDir, { recursive: true, force: true });
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(
      /HOST: must be a host name or an IP address.*write the four decimal numbers \(127\.0\.0\.1\)/,
    );
  });
});
