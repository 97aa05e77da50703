/**
 * The tools as `npm run <tool>` starts them (`node --import tsx src/cli/<tool>.ts`, after the
 * set-up check), and the run's build of each that the other suites start (test/support/main-build.ts,
 * to spare tsx's second of CPU per start): the build answers as the source does.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI_TOOLS, cliEntry } from '../support/main-build.ts';
import { PROJECT_ROOT } from '../support/processes.ts';

function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, args, { cwd: PROJECT_ROOT, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    ),
  );
}

describe('the tools', () => {
  it('npm run <tool> runs src/cli/<tool>.ts through tsx; the build answers as the source does', async () => {
    const scripts = (
      JSON.parse(readFileSync(`${PROJECT_ROOT}/package.json`, 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    for (const tool of CLI_TOOLS)
      expect(scripts[tool], tool).toBe(`bash scripts/ensure.sh && node --import tsx src/cli/${tool}.ts`);
    const built = cliEntry('audit');
    // Built by the global setup unless SWITCHBOARD_TEST_MAIN=tsx asked for none.
    if (process.env.SWITCHBOARD_TEST_MAIN !== 'tsx') expect(built[0]).toMatch(/\.mjs$/);
    // The source through tsx against the build, for one tool (each tsx start costs a second of
    // CPU); every build answers its --help.
    const [source, build] = await Promise.all([
      run(['--import', 'tsx', 'src/cli/audit.ts', '--help']),
      run([...cliEntry('audit'), '--help']),
    ]);
    expect(source.code, source.stderr).toBe(0);
    expect(build).toEqual(source);
    await Promise.all(
      CLI_TOOLS.map(async (tool) => {
        const r = await run([...cliEntry(tool), '--help']);
        expect(r.code, `${tool}: ${r.stderr}`).toBe(0);
        expect(r.stdout, tool).toMatch(/usage|Usage/);
      }),
    );
  }, 60_000);
});
