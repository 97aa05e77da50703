/**
 * `npm run simulate -- [options]`: a contact center driven through Switchboard's public API, like
 * the reference ACD's simulator. Agents register and go available; customers arrive at a fixed
 * rate with one language and one expertise; each assignment (seen on the live WebSocket feed) is
 * completed after a random handle time; customers who wait longer than their patience abandon.
 * With offers on (--offer-timeout, or a workspace set so), agents accept each offer after a random
 * delay, or reject it, or let it expire, at the rates given; wrap-ups (--wrap-up) and contacts
 * past their maximum wait (--max-wait) are the server's timers, counted in the summary.
 * Ends when every contact is completed or abandoned, or at the time limit, with a summary; what a
 * time limit or an interrupt left open is then ended (contacts waiting abandoned, those in service
 * completed) and the run's agents are taken offline, so a later run in the workspace meets none of it.
 *
 * Exit codes: 0 after a run with no error, 1 after a run with errors (commands that failed, a
 * live feed's event whose handling threw, or a log it could not read to its end after the run, so
 * its counts may be short: the summary is printed all the same and says which),
 * when its live feed is refused for good mid-run (ended by `feed-lost`: it stops at once) or
 * when Switchboard cannot be reached, 2 for bad options (an --url whose /health answers 404: not
 * Switchboard's address, such as a workspace's URL), 130 when interrupted.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { mask } from '../adapters/redis/client.ts';
import { FatalError } from './sim/http.ts';
import { type OptionChecker, parseCommandLine, runCommand } from './sim/options.ts';
import { randomSeed } from './sim/random.ts';
import { type SimOptions, Simulator } from './sim/simulator.ts';
import type { SimSummary } from './sim/summary.ts';

const USAGE = `Usage: npm run simulate -- [options]

  --url <url>            Switchboard's HTTP API (default $SWITCHBOARD_URL or http://127.0.0.1:8080);
                         no login in it (user:password@): the API key goes in --key
  --key <key>            API key of the workspace (default $SWITCHBOARD_API_KEY, else the admin key the
                         first npm start stored at <$DATA_DIR or ./data>/admin-key, when there)
  --workspace <name>     workspace to use (default: default with a key, since the stored admin key is
                         one of default; sim-<timestamp>, a fresh one per run, without)
  --agents <n>           agents (default 40)
  --contacts <n>         contacts to queue (default 100)
  --rate <per second>    contacts queued per second (default 2)
  --handle-min <s>       shortest handle time, seconds (default 1)
  --handle-max <s>       longest handle time, seconds (default 3)
  --patience <s>         seconds a customer waits before abandoning (default 60)
  --offer-timeout <s>    sets the workspace's offerTimeoutMs: offers to answer within this (0: direct
                         assignment; default: the workspace's setting as it is)
  --wrap-up <s>          sets the workspace's wrapUpMs: after-contact work (default: as it is)
  --max-wait <s>         sets the workspace's maxWaitMs: contacts expire past it (0: no limit;
                         default: as it is)
  --accept-min <s>       shortest time an agent takes to answer an offer (default 0.1)
  --accept-max <s>       longest time an agent takes to answer an offer (default 1); an answer
                         not sent before the offer expires is a miss
  --reject-rate <0..1>   share of offers an agent rejects (default 0.03)
  --miss-rate <0..1>     share of offers an agent lets expire (default 0.02)
  --miss-break <s>       seconds an agent set away by a missed offer waits before coming back (default 2)
  --priority-weight <s>  sets the workspace's priorityWeightMs: priority aging, each priority point
                         worth this much waiting (0: strict priority; default: as it is)
  --agent-selection <s>  sets the workspace's agentSelection: longest-available, most-skilled or
                         least-occupied (default: as it is)
  --priorities <n>       contacts' priorities drawn from 0..n-1 (default 1: all 0)
  --levels               agents hold their skills at levels 1..5 (drawn) instead of plain
  --capacity <n>         each agent's capacity, contacts at once (default 1)
  --seed <n>             seed of every random choice (default: random, printed in the summary)
  --max-seconds <s>      hard limit of the run (default contacts/rate + handle-max + patience + 30,
                         at most 7 days)
  --json                 print the summary as one JSON object
  --help                 this text

Exit codes: 0 after a run with no error; 1 after a run with errors (commands that failed, live
feed events it failed to handle, or the log not read to its end after the run, so its counts may
be short; its summary is printed all the same and names them), when its
live feed is refused for good mid-run (a revoked key: it stops at once, ended by feed-lost) or when
Switchboard cannot be reached; 2 for bad options (an --url where GET /health answers 404, not
Switchboard's address, included); 130 when interrupted.
`;

/** The run's options, `--json`, and where its key came from (--key, the variable, the stored file). */
type CliOptions = SimOptions & { json: boolean; keyFrom?: string };

/** An option's name, the value given (undefined: not given) and the value in effect. */
type PairSide = readonly [name: string, raw: string | undefined, value: number];

/**
 * A --x-min that must not exceed its --x-max. With one of them given and the other at its default,
 * the refusal names the one given and the other's default (the user never gave that one), and
 * says to give it too. A side already refused (not a number, out of range) is not compared.
 */
function orderedPair(
  check: OptionChecker,
  [minName, minRaw, min]: PairSide,
  [maxName, maxRaw, max]: PairSide,
): void {
  if (max >= min) return;
  if (check.problems.some((p) => p.startsWith(`--${minName}:`) || p.startsWith(`--${maxName}:`))) return;
  check.check(
    false,
    maxRaw === undefined
      ? `--${minName} ${minRaw} is above --${maxName}'s default ${max}: give --${maxName} too`
      : minRaw === undefined
        ? `--${maxName} ${maxRaw} is below --${minName}'s default ${min}: give --${minName} too`
        : `--${maxName}: must be at least --${minName} (got ${max} < ${min})`,
  );
}

function parseSimulateArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  const { values, positionals, check } = parseCommandLine(argv, USAGE, {
    url: { type: 'string' },
    key: { type: 'string' },
    workspace: { type: 'string' },
    agents: { type: 'string' },
    contacts: { type: 'string' },
    rate: { type: 'string' },
    'handle-min': { type: 'string' },
    'handle-max': { type: 'string' },
    patience: { type: 'string' },
    seed: { type: 'string' },
    'max-seconds': { type: 'string' },
    'offer-timeout': { type: 'string' },
    'wrap-up': { type: 'string' },
    'max-wait': { type: 'string' },
    'accept-min': { type: 'string' },
    'accept-max': { type: 'string' },
    'reject-rate': { type: 'string' },
    'miss-rate': { type: 'string' },
    'miss-break': { type: 'string' },
    'priority-weight': { type: 'string' },
    'agent-selection': { type: 'string' },
    priorities: { type: 'string' },
    levels: { type: 'boolean', default: false },
    capacity: { type: 'string' },
  });
  check.check(positionals.length === 0, `unexpected argument(s): ${positionals.join(' ')}`);

  const url = values.url ?? env.SWITCHBOARD_URL?.trim() ?? 'http://127.0.0.1:8080';
  check.url('url', url, {
    protocols: ['http:', 'https:'],
    expected: 'an http:// or https:// URL such as http://127.0.0.1:8080',
    bare: true,
    ...(values.url === undefined ? { from: 'SWITCHBOARD_URL' } : {}),
  });
  // A login in the URL cannot be sent (fetch refuses such a URL): every request failed, as if
  // Switchboard were down, with the password printed. Refused, masked, saying what to use.
  const login = (() => {
    try {
      const u = new URL(url);
      return u.username !== '' || u.password !== '';
    } catch {
      return false;
    }
  })();
  check.check(
    !login,
    `--url${values.url === undefined ? ' (from SWITCHBOARD_URL)' : ''}: must not hold a login (user:password@): Switchboard takes an API key, give it with --key or SWITCHBOARD_API_KEY (got "${mask(url)}")`,
  );
  // An empty key (an unset shell variable, `--key ""`) is refused as an empty URL is, rather than
  // taken as none and the stored admin key used in its place.
  const envKey = env.SWITCHBOARD_API_KEY?.trim();
  check.check(
    values.key === undefined || values.key.trim() !== '',
    '--key: must be an API key (got an empty value): leave it out for $SWITCHBOARD_API_KEY or the stored admin key',
  );
  check.check(
    values.key !== undefined || envKey !== '',
    '--key (from SWITCHBOARD_API_KEY): must be an API key (got an empty value): unset SWITCHBOARD_API_KEY for the stored admin key',
  );
  const stored = values.key === undefined && envKey === undefined ? storedAdminKey(env) : undefined;
  const key = values.key ?? envKey ?? stored;
  const keyFrom =
    values.key !== undefined
      ? '--key'
      : envKey !== undefined
        ? 'SWITCHBOARD_API_KEY'
        : stored !== undefined
          ? `the stored admin key, ${adminKeyPath(env)}`
          : undefined;
  // A key belongs to one workspace: the stored admin key is default's.
  const workspace = values.workspace ?? (key !== undefined ? 'default' : `sim-${Date.now()}`);
  check.check(
    /^[A-Za-z0-9_-]{1,64}$/.test(workspace),
    `--workspace: must be 1..64 characters of [A-Za-z0-9_-] (got "${workspace}")`,
  );
  const agents = check.number('agents', values.agents, 40, { integer: true, min: 1, max: 100_000 });
  const contacts = check.number('contacts', values.contacts, 100, { integer: true, min: 0, max: 10_000_000 });
  const rate = check.number('rate', values.rate, 2, { minExclusive: 0, max: 100_000 });
  const handleMinS = check.number('handle-min', values['handle-min'], 1, { min: 0, max: 86_400 });
  const handleMaxS = check.number('handle-max', values['handle-max'], 3, { min: 0, max: 86_400 });
  orderedPair(
    check,
    ['handle-min', values['handle-min'], handleMinS],
    ['handle-max', values['handle-max'], handleMaxS],
  );
  const patienceS = check.number('patience', values.patience, 60, { minExclusive: 0, max: 86_400 });
  // Workspace settings, in seconds here and ms on the wire (docs/API.md bounds them).
  // A positive value that rounds to 0 ms would read as "none" (direct assignment, no wrap-up, no
  // aging): refused instead.
  const seconds = (name: string, raw: string | undefined, min: number, max: number) => {
    if (raw === undefined) return undefined;
    const s = check.number(name, raw, 0, { min, max });
    const ms = Math.round(s * 1000);
    check.check(
      !(s > 0 && ms === 0) || name === 'max-wait',
      `--${name}: must be 0 or at least 0.0005 s, which is 1 ms (got "${raw}")`,
    );
    return s > 0 && ms === 0 ? 1 : ms;
  };
  const offerTimeoutMs = seconds('offer-timeout', values['offer-timeout'], 0, 3600);
  const wrapUpMs = seconds('wrap-up', values['wrap-up'], 0, 86_400);
  const maxWait = seconds('max-wait', values['max-wait'], 0, 7 * 86_400);
  check.check(
    maxWait === undefined || maxWait === 0 || maxWait >= 1000,
    `--max-wait: must be 0 (no limit) or at least 1 second (got "${values['max-wait']}")`,
  );
  const priorityWeight = seconds('priority-weight', values['priority-weight'], 0, 3600);
  const selection = values['agent-selection'];
  check.check(
    selection === undefined || ['longest-available', 'most-skilled', 'least-occupied'].includes(selection),
    `--agent-selection: must be longest-available, most-skilled or least-occupied (got "${selection}")`,
  );
  const priorities = check.number('priorities', values.priorities, 1, { integer: true, min: 1, max: 10 });
  const capacity = check.number('capacity', values.capacity, 1, { integer: true, min: 1, max: 100 });
  const settings = {
    ...(priorityWeight !== undefined
      ? { priorityWeightMs: priorityWeight === 0 ? null : priorityWeight }
      : {}),
    ...(selection !== undefined ? { agentSelection: selection } : {}),
    ...(offerTimeoutMs !== undefined ? { offerTimeoutMs } : {}),
    ...(wrapUpMs !== undefined ? { wrapUpMs } : {}),
    ...(maxWait !== undefined ? { maxWaitMs: maxWait === 0 ? null : maxWait } : {}),
  };
  const acceptMinS = check.number('accept-min', values['accept-min'], 0.1, { min: 0, max: 3600 });
  const acceptMaxS = check.number('accept-max', values['accept-max'], 1, { min: 0, max: 3600 });
  orderedPair(
    check,
    ['accept-min', values['accept-min'], acceptMinS],
    ['accept-max', values['accept-max'], acceptMaxS],
  );
  const rejectRate = check.fraction('reject-rate', values['reject-rate'], 0.03);
  const missRate = check.fraction('miss-rate', values['miss-rate'], 0.02);
  check.check(
    rejectRate + missRate <= 1,
    `--miss-rate: --reject-rate and --miss-rate must add up to at most 1 (got ${rejectRate} + ${missRate})`,
  );
  const missBreakS = check.number('miss-break', values['miss-break'], 2, { min: 0, max: 86_400 });
  const seed = check.number('seed', values.seed, randomSeed(), { integer: true, min: 0, max: 2 ** 32 - 1 });
  // At most the option's own bound (7 days, within what a timer can wait) when contacts/rate is longer.
  const longest = 7 * 86_400;
  const defaultMax = Math.min(longest, Math.ceil(contacts / rate + handleMaxS + patienceS + 30));
  const maxSeconds = check.number('max-seconds', values['max-seconds'], defaultMax, {
    minExclusive: 0,
    max: longest,
  });
  check.done();
  return {
    url,
    ...(key !== undefined ? { key } : {}),
    workspace,
    agents,
    contacts,
    rate,
    handleMinS,
    handleMaxS,
    patienceS,
    seed,
    maxSeconds,
    acceptMinS,
    acceptMaxS,
    rejectRate,
    missRate,
    missBreakS,
    priorities,
    levels: values.levels ?? false,
    capacity,
    ...(Object.keys(settings).length > 0 ? { settings } : {}),
    json: values.json ?? false,
    ...(keyFrom !== undefined ? { keyFrom } : {}),
  };
}

const adminKeyPath = (env: NodeJS.ProcessEnv) => path.join(env.DATA_DIR?.trim() || './data', 'admin-key');

/** The admin key the main command stored on its first start, when this checkout has one. */
function storedAdminKey(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return readFileSync(adminKeyPath(env), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** How a run is given an API key of its workspace. */
const giveKey = (opts: CliOptions) =>
  `give an API key of workspace "${opts.workspace}" with --key or SWITCHBOARD_API_KEY`;

/** What to do about a run stopped by a 401: the key it lacked, or the one refused and where it came from. */
function keyAdvice(opts: CliOptions): string {
  const give = giveKey(opts);
  return opts.keyFrom === undefined
    ? `no API key was given and Switchboard asks for one: ${give} (the first npm start stores one of workspace default at ${adminKeyPath(process.env)})`
    : `the API key given (${opts.keyFrom}) was refused, unknown or revoked: ${give}`;
}

/** What to do about a run stopped by a 403: a key of another workspace, or of a role short of the run's. */
function forbiddenAdvice(opts: CliOptions, message: string): string {
  const from = opts.keyFrom ?? 'none given';
  return /another workspace/.test(message)
    ? `the API key given (${from}) is not one of workspace "${opts.workspace}": ${giveKey(opts)}, or the key's own workspace with --workspace`
    : `the API key given (${from}) may not run the simulation (it registers agents and queues contacts): give an admin key of workspace "${opts.workspace}" with --key or SWITCHBOARD_API_KEY`;
}

function formatSummary(s: SimSummary): string {
  const ms = (v: number | null) => (v === null ? '-' : `${v} ms`);
  const pct = (v: number) => `${Math.round(v * 1000) / 10} %`;
  const errors =
    s.errors === 0
      ? '0'
      : `${s.errors} (${Object.entries(s.errorsByStatus)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')})`;
  const rows: [string, string][] = [
    ['workspace', s.workspace],
    ['seed', String(s.seed)],
    [
      'parameters',
      `${s.parameters.agents} agents, ${s.parameters.contacts} contacts at ${s.parameters.rate}/s, ` +
        `handle ${s.parameters.handleMinS}-${s.parameters.handleMaxS} s, patience ${s.parameters.patienceS} s`,
    ],
    [
      'settings',
      s.settings.offerTimeoutMs > 0
        ? `offers of ${s.settings.offerTimeoutMs} ms (answered in ${s.parameters.acceptMinS}-${s.parameters.acceptMaxS} s, ` +
          `${pct(s.parameters.rejectRate)} rejected, ${pct(s.parameters.missRate)} missed), ` +
          `wrap-up ${s.settings.wrapUpMs} ms, max wait ${s.settings.maxWaitMs === null ? 'none' : `${s.settings.maxWaitMs} ms`}`
        : `direct assignment, wrap-up ${s.settings.wrapUpMs} ms, max wait ${s.settings.maxWaitMs === null ? 'none' : `${s.settings.maxWaitMs} ms`}`,
    ],
    [
      'policy',
      `${s.settings.priorityWeightMs ? `priority aging ${s.settings.priorityWeightMs} ms a point` : 'strict priority'}` +
        `, ${s.settings.agentSelection ?? 'longest-available'}; priorities 0..${s.parameters.priorities - 1}` +
        `${s.parameters.levels ? ', agents with levels' : ''}, capacity ${s.parameters.capacity}`,
    ],
    ['assigned', String(s.assigned)],
    ['completed', String(s.completed)],
    ['abandoned', String(s.abandoned)],
    ['expired', `${s.expired} (waited past the maximum wait)`],
    ['still queued', String(s.stillQueued)],
    ['in service', String(s.inService)],
    ['not queued', String(s.notQueued)],
    ['unservable', `${s.unservable} (no agent holds their skills)`],
    ['abandon raced', `${s.abandonRaced} (409: assigned before the abandon)`],
    ['wait mean', ms(s.meanWaitMs)],
    ['wait p90', ms(s.p90WaitMs)],
    ['wait max', ms(s.maxWaitMs)],
    [
      'estimated wait',
      `${s.estimatedWait.checked} checked: mean absolute error ${ms(s.estimatedWait.meanAbsoluteErrorMs)} ` +
        `against a mean wait of ${ms(s.estimatedWait.meanActualMs)} (mean estimate ${ms(s.estimatedWait.meanEstimatedMs)})`,
    ],
    [
      'offers',
      `${s.offers.made} made, ${s.offers.accepted} accepted, ${s.offers.rejected} rejected, ` +
        `${s.offers.expired} expired, ${s.offers.withdrawn} withdrawn, ${s.offers.contactLeft} ended by the contact leaving`,
    ],
    ['time to accept', ms(s.offers.meanTimeToAcceptMs)],
    ['answer raced', `${s.offers.answerRaced} (409: the offer ended before the answer)`],
    ['wrap-ups', `${s.wrapUps} started, ${s.wrapUpsEnded} ended`],
    ['retries', String(s.retries)],
    ['errors', errors],
    ['answered 202', String(s.accepted202)],
    [
      'live feed',
      `${s.liveReconnects} reconnects, ${s.liveFailures} failures${s.lastLiveFailure ? ` (last: ${s.lastLiveFailure})` : ''}`,
    ],
    ['duration', `${s.durationS} s`],
    ['ended by', s.endedBy],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
  for (const sample of s.errorSamples) lines.push(`  ! ${sample}`);
  return `Switchboard simulation\n${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  const opts = parseSimulateArgs(process.argv.slice(2), process.env);
  try {
    return await simulate(new Simulator(opts), opts);
  } catch (err) {
    if (!(err instanceof FatalError)) throw err;
    process.stderr.write(`simulate: ${err.message}\n`);
    if (err.usage) {
      process.stderr.write('Run with --help for the options.\n');
      return 2;
    }
    if (err.status === 401) process.stderr.write(`simulate: ${keyAdvice(opts)}\n`);
    if (err.status === 403) process.stderr.write(`simulate: ${forbiddenAdvice(opts, err.message)}\n`);
    return 1;
  }
}

/** The run with its progress bar and signals; the exit code. */
async function simulate(sim: Simulator, opts: CliOptions): Promise<number> {
  await sim.checkReachable();
  if (sim.unservable > 0)
    process.stderr.write(
      `simulate: note: ${sim.unservable} of ${opts.contacts} contacts need a skill pair no agent holds; they can only abandon (try more --agents or another --seed)\n`,
    );
  const showBar = !opts.json && process.stderr.isTTY === true;
  const bar = showBar
    ? new SingleBar(
        {
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: false,
          format:
            'simulate [{bar}] {value}/{total} done | sent {sent} | waiting {waiting} | in service {inService} | completed {completed} | abandoned {abandoned} | expired {expired} | {duration}s',
        },
        Presets.shades_classic,
      )
    : undefined;
  const zero = { sent: 0, waiting: 0, inService: 0, completed: 0, abandoned: 0, expired: 0 };
  bar?.start(opts.contacts, 0, zero);
  sim.onProgress = (p) => bar?.update(p.done, p);

  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    sim.interrupt();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let summary: SimSummary;
  try {
    summary = await sim.run();
  } finally {
    bar?.stop();
  }
  if (!opts.json)
    process.stderr.write('simulate: ending the contacts left open, taking the agents offline\n');
  await sim.cleanup();
  process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
  if (summary.endedBy === 'interrupted') return 130;
  if (summary.endedBy === 'feed-lost') {
    // A 401 (the key revoked mid-run) gets the advice of a run stopped by one; another refusal
    // (the workspace gone) names the key used all the same.
    const failure = summary.lastLiveFailure ?? 'no reason given';
    const advice = / 401 /.test(failure)
      ? keyAdvice(opts)
      : `check the workspace "${opts.workspace}" and the API key (${opts.keyFrom ?? 'none given'}): to use another, ${giveKey(opts)}`;
    process.stderr.write(
      `simulate: the live feed was refused for good (${failure}), so the run could no longer follow its contacts and stopped: ${advice}\n`,
    );
    return 1;
  }
  if (summary.errors > 0) {
    process.stderr.write(
      `simulate: ${summary.errors} error${summary.errors === 1 ? '' : 's'}: commands that failed, steps (such as handling a live feed's event) that threw, or the log not read to its end after the run (the summary's errors say which)\n`,
    );
    return 1;
  }
  return 0;
}

runCommand('simulate', main);
