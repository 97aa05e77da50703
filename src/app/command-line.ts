/**
 * The main command's command line: it takes none. Switchboard is configured by environment
 * variables (src/app/config.ts, README.md "Configuration"); an argument (`npm start -- --port
 * 9000`) used to be ignored and the process started on its defaults. `--help` (or `-h`) prints
 * where the variables are described; any other argument is refused.
 */
import { CONFIG_ENTRIES } from './config.ts';

export const MAIN_USAGE = `Usage: npm start  (node --import tsx src/main.ts)

Switchboard takes no arguments: it is configured by environment variables, such as
PORT, HOST, REDIS_URL, REDIS_CLUSTER_NODES, DATA_DIR, ROLES, WORKSPACES, AUTH, LOG_LEVEL
(README.md, "Configuration": Environment variables, each with its default). For example:

  PORT=9000 REDIS_URL=redis://127.0.0.1:6379 npm start

Exit codes: 2 a bad variable (or an argument), 1 it could not start.
`;

/** What the main command does with `argv`: run, print its usage, or refuse (exit 2) saying why. */
export function mainCommandLine(
  argv: readonly string[],
):
  | { readonly kind: 'run' }
  | { readonly kind: 'help' }
  | { readonly kind: 'refuse'; readonly problem: string } {
  if (argv.length === 0) return { kind: 'run' };
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) return { kind: 'help' };
  // `--port 9000` or `--port=9000`: the variable it most likely meant, as an example.
  const option = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/i.exec(argv[0] ?? '');
  const value = option?.[2] ?? (option && argv[1] !== undefined && !argv[1].startsWith('-') ? argv[1] : '');
  const written = option ? option[1]!.toUpperCase().replaceAll('-', '_') : 'PORT';
  const variable = variableMeant(written);
  const example = variable === undefined ? 'PORT=9000 npm start' : `${variable}=${value || '...'} npm start`;
  const none = variable === undefined ? `; no variable is named ${written}` : '';
  return {
    kind: 'refuse',
    problem: `takes no arguments (got "${argv.join(' ')}"): it is configured by environment variables, such as ${example}${none} (README.md, "Configuration"; --help lists the main ones)`,
  };
}

/**
 * The variable an option names (`--port`: PORT), its plural (`--workspace`: WORKSPACES), or the
 * only one it begins (`--data`: DATA_DIR); undefined when none is: the advice names no variable
 * Switchboard does not read (WORKSPACE=east would start without the workspace).
 */
function variableMeant(written: string): string | undefined {
  const names = CONFIG_ENTRIES.map((e) => e.name);
  if (names.includes(written)) return written;
  if (names.includes(`${written}S`)) return `${written}S`;
  const begun = names.filter((n) => n.startsWith(`${written}_`));
  return begun.length === 1 ? begun[0] : undefined;
}
