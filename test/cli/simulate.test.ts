/**
 * The simulator against a Switchboard started in this process: it runs as a child process, as a
 * user runs it, and its JSON summary must agree with the workspace's event log.
 */
import { pino } from 'pino';
import { type EventType, SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { runCli } from './run-cli.ts';
import { simOptions } from './sim-support.ts';

const WS = `sim-test-${Date.now()}`;
/** A workspace of its own for the run with offers, wrap-ups and a maximum wait. */
const OFFERS = `sim-offers-${Date.now()}`;
/** A workspace of its own for a run whose default time limit is past what a timer can hold. */
const SLOW = `sim-slow-${Date.now()}`;

const simulate = (args: readonly string[], env?: NodeJS.ProcessEnv) => runCli('simulate', args, env);

interface Summary {
  workspace: string;
  assigned: number;
  abandoned: number;
  completed: number;
  expired: number;
  stillQueued: number;
  inService: number;
  unservable: number;
  errors: number;
  errorsByStatus: Record<string, number>;
  meanWaitMs: number | null;
  p90WaitMs: number | null;
  estimatedWait: {
    checked: number;
    meanAbsoluteErrorMs: number | null;
    meanActualMs: number | null;
    meanEstimatedMs: number | null;
  };
  settings: {
    offerTimeoutMs: number;
    wrapUpMs: number;
    missedOfferPresence: string;
    maxWaitMs: number | null;
  };
  offers: {
    made: number;
    accepted: number;
    rejected: number;
    expired: number;
    withdrawn: number;
    contactLeft: number;
    meanTimeToAcceptMs: number | null;
    answerRaced: number;
  };
  wrapUps: number;
  wrapUpsEnded: number;
  durationS: number;
  endedBy: string;
}

let redis: TestRedis;
let sb: Running;
let url: string;

beforeAll(async () => {
  redis = await startTestRedis();
  const config = loadConfig({
    AUTH: 'off',
    REDIS_URL: redis.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    WORKSPACES: `${WS},${OFFERS},${SLOW}`,
  });
  sb = await startSwitchboard(config, pino({ level: 'silent' }));
  url = sb.url!;
});

afterAll(async () => {
  await sb?.stop();
  await redis?.stop();
});

async function countEvents(
  type: string,
  ws = WS,
  where: (data: Record<string, unknown>) => boolean = () => true,
): Promise<number> {
  let n = 0;
  // Every page of the log, through the typed client.
  const client = new SwitchboardClient({ url, workspace: ws, retries: 0 });
  for await (const e of client.allEvents({ types: [type as EventType] }))
    if (e.type === type && where(e.data as Record<string, unknown>)) n++;
  return n;
}

describe('simulate', () => {
  it('runs a small contact center through the API and reports what the event log says', async () => {
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      WS,
      '--agents',
      '10',
      '--contacts',
      '30',
      '--rate',
      '30',
      '--handle-min',
      '0.05',
      '--handle-max',
      '0.2',
      // Seed 11 gives 5 contacts a skill pair none of the 10 agents holds: they abandon after
      // their patience, so the abandon path is exercised too. The run ends when they do: 2 s is
      // well past the wait of the others (10 agents of at most 0.2 s serve 50 contacts/s, 30 come).
      '--seed',
      '11',
      '--patience',
      '2',
      '--json',
    ]);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Summary;
    expect(s.workspace).toBe(WS);
    expect(s.assigned + s.abandoned).toBe(30);
    expect(s.errors, JSON.stringify(s.errorsByStatus)).toBe(0);
    expect(s.endedBy).toBe('done');
    expect(s.stillQueued).toBe(0);
    expect(s.inService).toBe(0);
    expect(s.completed).toBe(s.assigned);
    expect(s.unservable).toBe(5);
    expect(s.abandoned).toBeGreaterThanOrEqual(s.unservable);
    if (s.assigned > 0) expect(s.meanWaitMs).not.toBeNull();

    expect(await countEvents('AssignmentMade')).toBe(s.assigned);
    expect(await countEvents('ContactAbandoned')).toBe(s.abandoned);
    expect(await countEvents('ContactCompleted')).toBe(s.completed);
    // Offers are off in a fresh workspace: direct assignment, as before.
    expect(s.settings.offerTimeoutMs).toBe(0);
    expect(s.offers.made).toBe(0);
  });

  it('with offers on: agents accept after a delay, reject some, miss some, wrap up; the summary agrees with the log', async () => {
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      OFFERS,
      '--agents',
      '12',
      '--contacts',
      '40',
      '--rate',
      '20',
      '--handle-min',
      '0.05',
      '--handle-max',
      '0.2',
      '--offer-timeout',
      '0.5',
      '--wrap-up',
      '0.1',
      '--max-wait',
      '30',
      '--accept-min',
      '0.02',
      '--accept-max',
      '0.1',
      '--reject-rate',
      '0.15',
      '--miss-rate',
      '0.1',
      '--miss-break',
      '0.2',
      '--seed',
      '7',
      // The contacts no agent can serve wait this long, and the run with them: 4 s is past the
      // several offers a contact may take (0.5 s each) before one is accepted.
      '--patience',
      '4',
      '--json',
    ]);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const s = JSON.parse(run.stdout.trim()) as Summary;
    expect(s.errors, `${JSON.stringify(s.errorsByStatus)} ${run.stdout}`).toBe(0);
    expect(s.endedBy).toBe('done');
    expect(s.settings).toEqual({
      offerTimeoutMs: 500,
      wrapUpMs: 100,
      missedOfferPresence: 'away',
      maxWaitMs: 30_000,
      channels: ['voice'],
    });
    expect(s.assigned + s.abandoned + s.expired).toBe(40);
    expect(s.completed).toBe(s.assigned);
    expect(s.stillQueued + s.inService).toBe(0);

    // Offers: every one made ended one way; some of each with these rates and this seed.
    const o = s.offers;
    expect(o.made).toBeGreaterThan(s.assigned);
    expect(o.accepted + o.rejected + o.expired + o.withdrawn + o.contactLeft).toBe(o.made);
    expect(o.accepted).toBe(s.assigned);
    expect(o.rejected).toBeGreaterThan(0);
    expect(o.expired).toBeGreaterThan(0);
    expect(o.meanTimeToAcceptMs).not.toBeNull();
    expect(o.meanTimeToAcceptMs!).toBeGreaterThanOrEqual(10);
    expect(o.meanTimeToAcceptMs!).toBeLessThan(500);

    const offersMade = await countEvents('AssignmentMade', OFFERS, (d) => d.offer !== undefined);
    expect(offersMade).toBe(o.made);
    expect(await countEvents('AssignmentAccepted', OFFERS)).toBe(o.accepted);
    expect(await countEvents('AssignmentRejected', OFFERS, (d) => d.reason === 'rejected')).toBe(o.rejected);
    expect(await countEvents('AssignmentExpired', OFFERS)).toBe(o.expired);
    expect(await countEvents('ContactCompleted', OFFERS)).toBe(s.completed);
    expect(await countEvents('ContactExpired', OFFERS)).toBe(s.expired);
    expect(s.wrapUps).toBe(s.completed);
    expect(await countEvents('WrapUpStarted', OFFERS)).toBe(s.wrapUps);
  });

  it('an offer the contact ends (it leaves while offered) is counted: every offer made ended one way', async () => {
    // Agents let every offer ring (--miss-rate 1) for 5 s; the customer hangs up after 1 s.
    const ws = `${WS}-left-offered`;
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      ws,
      '--agents',
      '8',
      '--contacts',
      '1',
      '--rate',
      '10',
      '--offer-timeout',
      '5',
      '--reject-rate',
      '0',
      '--miss-rate',
      '1',
      '--patience',
      '1',
      '--seed',
      '1',
      '--json',
    ]);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const s = JSON.parse(run.stdout.trim()) as Summary;
    const o = s.offers;
    expect(o.made, run.stdout).toBe(1);
    expect(s.abandoned, run.stdout).toBe(1);
    expect(o.contactLeft, run.stdout).toBe(1);
    expect(o.accepted + o.rejected + o.expired + o.withdrawn + o.contactLeft).toBe(o.made);
    expect(run.stdout).not.toContain('undefined');
  });

  // A figure of the machine's timing as much as of the estimate (the comment below): a run that
  // reads it out of its bounds is run once more (a CI run read an error of 3.1 times the wait, the
  // estimate 3.95 times it), so only an estimate off in two runs in a row fails.
  it('measures the estimated wait against the waits that followed', { retry: 1 }, async () => {
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      `${WS}-estimate`,
      '--agents',
      '12',
      '--contacts',
      '150',
      '--rate',
      '100',
      '--handle-min',
      '0.1',
      '--handle-max',
      '0.3',
      '--seed',
      '5',
      // Some contacts need a skill pair no agent has: they wait out their patience, which ends the run.
      '--patience',
      '6',
      '--json',
    ]);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const s = JSON.parse(run.stdout.trim()) as Summary;
    console.log(
      JSON.stringify({ estimatedWait: s.estimatedWait, meanWaitMs: s.meanWaitMs, assigned: s.assigned }),
    );
    // A queue builds (12 agents of 0.2 s each serve about 60 contacts/s; 100/s arrive): contacts
    // queued behind others get an estimate of the right size. On a quiet machine the error is about
    // half the wait (362 ms against 818). On 2 cores shared with other suites the service rate the
    // estimate is made from swings while the queue drains (the simulated agents' timers run late):
    // over 18 CI runs the error read 0.46 - 1.19 times the wait, and 1.66 once with another suite
    // beside; a later full run read 2.2 (the mean estimate 3.2 times the wait: the agents' timers
    // late, the waits short). So what is held is the size: the mean estimate within a factor of 4
    // of the mean wait either way (estimates of 0, or ten times too small or too large, fail),
    // and no error three times the wait.
    const e = s.estimatedWait;
    expect(e.checked).toBeGreaterThan(10);
    expect(e.meanEstimatedMs!, JSON.stringify(e)).toBeGreaterThan(e.meanActualMs! / 4);
    expect(e.meanEstimatedMs!, JSON.stringify(e)).toBeLessThan(e.meanActualMs! * 4);
    expect(e.meanAbsoluteErrorMs!, JSON.stringify(e)).toBeLessThan(3 * e.meanActualMs!);
  });

  it('says clearly when Switchboard cannot be reached, and exits 1', async () => {
    const port = await freePort();
    const run = await simulate(['--url', `http://127.0.0.1:${port}`, '--json']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `cannot reach Switchboard at http://127.0.0.1:${port} (connect ECONNREFUSED`,
    );
    expect(run.stdout).toBe('');
  });

  it('holds a default time limit longer than a timer can wait (contacts/rate of days) to at most 7 days', async () => {
    // 1 contact at 1 per 115 days: a default limit of 10,000,030 s, past setTimeout's 24.8 days.
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      SLOW,
      '--agents',
      '1',
      '--contacts',
      '1',
      '--rate',
      '0.0000001',
      '--handle-min',
      '0',
      '--handle-max',
      '0',
      '--patience',
      '1',
      '--seed',
      '1',
      '--json',
    ]);
    expect(run.stderr).not.toMatch(/TimeoutOverflowWarning/);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const s = JSON.parse(run.stdout) as Summary & { parameters: { maxSeconds: number } };
    expect(s.endedBy).toBe('done');
    expect(s.assigned + s.abandoned).toBe(1);
    expect(s.parameters.maxSeconds).toBe(7 * 86_400);
  });

  it('ends at its time limit while the next arrival is far off, and sends nothing after it', async () => {
    // The second contact is due 100 s in; the limit is 1 s: the run ends then, not 100 s later.
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      `${WS}-limit`,
      '--agents',
      '1',
      '--contacts',
      '2',
      '--rate',
      '0.01',
      '--handle-min',
      '0',
      '--handle-max',
      '0',
      '--patience',
      '30',
      '--max-seconds',
      '1',
      '--seed',
      '1',
      '--json',
    ]);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const s = JSON.parse(run.stdout) as Summary & { notQueued: number };
    expect(s.endedBy).toBe('time-limit');
    expect(s.durationS).toBeLessThan(10);
    // The first is due as soon as the agents are in, which a loaded machine can put past the limit.
    expect(s.notQueued).toBeGreaterThanOrEqual(1);
    expect(await countEvents('ContactQueued', `${WS}-limit`)).toBe(2 - s.notQueued);
  });

  it('waits for an arrival further off than a timer can hold (contacts/rate of days) until it is due', async () => {
    // The second contact is due 115 days in, past setTimeout's 24.8 days: it is not sent at once.
    // 4 s: the first is queued after the run's set-up (2 s once ran out first on a loaded machine).
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      `${WS}-far`,
      '--agents',
      '1',
      '--contacts',
      '2',
      '--rate',
      '0.0000001',
      '--handle-min',
      '0',
      '--handle-max',
      '0',
      '--patience',
      '30',
      '--max-seconds',
      '4',
      '--seed',
      '1',
      '--json',
    ]);
    expect(run.stderr).not.toMatch(/TimeoutOverflowWarning/);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const s = JSON.parse(run.stdout) as Summary & { notQueued: number };
    expect(s.endedBy).toBe('time-limit');
    expect(s.notQueued).toBe(1);
    expect(await countEvents('ContactQueued', `${WS}-far`)).toBe(1);
  });

  it('a run cut short by its time limit leaves no contact behind: those waiting abandoned, those in service completed', async () => {
    // Two agents, each holding a contact for 30 s, and contacts queued behind them: at the 4 s
    // limit some are in service and some still wait (2 s once ran out, on a loaded machine, before
    // the first assignment). Left so, they would be the next run's (its
    // agents would be handed them, and never free again).
    const ws = `${WS}-cut`;
    const run = await simulate([
      '--url',
      url,
      '--workspace',
      ws,
      '--agents',
      '2',
      '--contacts',
      '8',
      '--rate',
      '50',
      '--handle-min',
      '30',
      '--handle-max',
      '30',
      '--patience',
      '60',
      '--max-seconds',
      '4',
      '--seed',
      '3',
      '--json',
    ]);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const s = JSON.parse(run.stdout) as Summary;
    expect(s.endedBy).toBe('time-limit');
    // The summary says where the run stood when it ended.
    expect(s.inService).toBeGreaterThan(0);
    expect(s.stillQueued).toBeGreaterThan(0);
    // And the log: every contact it queued has ended.
    const ended = async () =>
      (await countEvents('ContactCompleted', ws)) +
      (await countEvents('ContactAbandoned', ws)) +
      (await countEvents('ContactExpired', ws));
    expect(await countEvents('ContactQueued', ws)).toBe(8);
    await waitFor('the 8 contacts queued to have ended', async () => (await ended()) === 8);
    const client = new SwitchboardClient({ url, workspace: ws, retries: 0 });
    const stats = await client.stats();
    expect(stats.queued).toBe(0);
    expect(stats.agentsByState.offline).toBe(2);
  });

  it('a run whose commands failed prints its summary and exits 1', async () => {
    // Another client completes the run's contacts before the run does: each of its completions is
    // refused (409), an error the summary counts, and the exit code says so.
    const ws = `${WS}-failing`;
    const client = new SwitchboardClient({ url, workspace: ws, retries: 0 });
    const taken = new Set<string>();
    const sub = client.subscribe({ after: '0-0', types: ['AssignmentMade'], retryFirst: true }, (e) => {
      const id = (e.data as { contactId: string }).contactId;
      if (taken.has(id)) return;
      taken.add(id);
      void client.completeContact(id).catch(() => {});
    });
    try {
      const run = await simulate([
        '--url',
        url,
        '--workspace',
        ws,
        '--agents',
        '10',
        '--contacts',
        '3',
        '--rate',
        '20',
        '--handle-min',
        '2',
        '--handle-max',
        '2',
        '--patience',
        '5',
        '--seed',
        '11',
        '--json',
      ]);
      const s = JSON.parse(run.stdout) as Summary;
      expect(s.errors, run.stdout).toBeGreaterThan(0);
      expect(s.errorsByStatus['409']).toBe(s.errors);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/simulate: \d+ errors?: commands that failed/);
    } finally {
      sub.close();
    }
  });

  it("an exception while handling a live feed's event is an error of the run, named in its summary", async () => {
    // The handler of an assignment throws (here the progress display, which the command's bar
    // updates on every change): the event was handed on, so the feed cannot tell; the run must.
    const sim = new Simulator(
      simOptions({
        url,
        workspace: `${WS}-feed-throws`,
        seed: 5,
        agents: 4,
        contacts: 3,
        rate: 20,
        handleMinS: 0.2,
        handleMaxS: 0.2,
        // The contact whose handling threw is never completed by the run: the time limit ends it.
        maxSeconds: 4,
        acceptMaxS: 0.2,
      }),
    );
    let thrown = 0;
    sim.onProgress = (p) => {
      if (p.inService > 0 && thrown === 0) {
        thrown++;
        throw new Error('the progress display failed');
      }
    };
    const s = await sim.run();
    await sim.cleanup();
    expect(thrown).toBe(1);
    expect(s.errors, JSON.stringify(s)).toBe(1);
    expect(s.errorsByStatus).toEqual({ internal: 1 });
    expect(s.errorSamples).toEqual([
      expect.stringMatching(
        /^live feed: AssignmentMade at \d+-\d+ failed to be handled: the progress display failed$/,
      ),
    ]);
    expect(s.liveFailures).toBe(0);
  });

  it('refuses a setting that rounds to 0 ms, which would mean "none"', async () => {
    const run = await simulate([
      '--max-wait',
      '0.0001',
      '--priority-weight',
      '0.0004',
      '--offer-timeout',
      '0.0001',
      '--wrap-up',
      '0.0002',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--max-wait: must be 0 \(no limit\) or at least 1 second \(got "0.0001"\)/);
    for (const name of ['priority-weight', 'offer-timeout', 'wrap-up'])
      expect(run.stderr).toMatch(new RegExp(`--${name}: must be 0 or at least 0.0005 s, which is 1 ms`));
  });

  it('names every bad option and exits 2', async () => {
    const run = await simulate([
      '--agents',
      'many',
      '--rate',
      '0',
      '--handle-min',
      '5',
      '--handle-max',
      '1',
      '--reject-rate',
      '1.5',
      '--offer-timeout',
      '7200',
      '--max-wait',
      '0.5',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--reject-rate: must be a number from 0 to 1/);
    expect(run.stderr).toMatch(/--offer-timeout: must be a number from 0 to 3600/);
    expect(run.stderr).toMatch(/--max-wait: must be 0 \(no limit\) or at least 1 second/);
    expect(run.stderr).toMatch(/--agents: must be an integer/);
    expect(run.stderr).toMatch(/--rate: must be a number greater than 0/);
    expect(run.stderr).toMatch(/--handle-max: must be at least --handle-min/);
  });
});
