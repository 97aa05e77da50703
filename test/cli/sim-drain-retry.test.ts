/**
 * The simulator's drain after its run (GET /events pages after the last event the run took) gave
 * up at the first page that failed (`if (!r.ok) return;`): a 429, a 503 (Redis unavailable,
 * position-not-reached) or no answer ended it with nothing said, and the summary counted short of
 * the log. A failed page is now retried as the run's reads are (the client's retries, Retry-After
 * honoured, each counted in `retries`) within the drain's bound (5 s); a log it still cannot read
 * to its end is an error of the summary that says its counts may be short.
 *
 * The failures are answered here at the fetch under the simulator's client (its retries see them
 * as a server's answers), to the drain's pages only: GET /events of the types the run follows.
 */
import { SwitchboardClient } from 'switchboard/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Simulator } from '../../src/cli/sim/simulator.ts';
import type { SimSummary } from '../../src/cli/sim/summary.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { simOptions, simSwitchboard } from './sim-support.ts';

const WS = `sim-drain-retry-${Date.now()}`;
const sb = simSwitchboard({
  WORKSPACES: ['503', '429', 'down', 'hung', 'endless'].map((c) => `${WS}-${c}`).join(','),
});

afterEach(() => {
  vi.unstubAllGlobals();
});

/** The run's parts, driven here: its end, its drain, its summary. */
interface Run {
  tag: string;
  ending: boolean;
  drain(timeoutMs?: number): Promise<void>;
  summary(endedBy: 'done', durationS: number): SimSummary;
}

/** A simulator of one agent and one contact whose run has ended (nothing sent by it, no feed open). */
function endedRun(ws: string): Run {
  const run = new Simulator(simOptions({ url: sb.url, workspace: ws, agents: 1 })) as unknown as Run;
  run.ending = true;
  return run;
}

/**
 * The run's contact queued, assigned to its agent and completed, its wrap-up ended: in the log,
 * not yet counted (the run had ended; its drain reads them).
 */
async function servedInTheLog(run: Run, ws: string): Promise<void> {
  const client = new SwitchboardClient({ url: sb.url, workspace: ws, retries: 0 });
  const agentId = `${run.tag}.agent-1`;
  const contactId = `${run.tag}.contact-1`;
  await client.putSettings({ wrapUpMs: 100 });
  await client.registerAgent({ id: agentId, skills: ['billing'] });
  await client.setAgentState(agentId, 'available');
  await client.queueContact({ id: contactId, skills: ['billing'] });
  await waitFor(
    `${contactId} assigned`,
    async () => (await client.getContact(contactId)).state === 'assigned',
  );
  await client.completeContact(contactId);
  await waitFor('its wrap-up ended in the log', async () => {
    for await (const _ of client.allEvents({ types: ['WrapUpEnded'] })) return true;
    return false;
  });
}

/** Whether a fetch is one of the drain's pages. */
const isDrainPage = (url: string): boolean => /\/events\?type=AssignmentMade,/.test(url);

/**
 * The drain's pages answered by `answer` (its n-th page, 1 first) while it gives a Response (or
 * a promise of one); the others, and every other request, sent on to Switchboard. Returns the
 * count of the drain's pages asked.
 */
function drainPages(
  answer: (n: number, init: RequestInit | undefined) => Promise<Response> | Response | undefined,
): { readonly asked: number } {
  const real = globalThis.fetch;
  const seen = { asked: 0 };
  vi.stubGlobal('fetch', (input: string | URL | Request, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    if (!isDrainPage(url)) return real(input, init);
    seen.asked++;
    return answer(seen.asked, init) ?? real(input, init);
  });
  return seen;
}

const problem = (status: number, type: string, detail: string, retryAfterS: number): Response =>
  new Response(JSON.stringify({ type: `/problems/${type}`, title: type, status, detail }), {
    status,
    headers: { 'content-type': 'application/problem+json', 'retry-after': String(retryAfterS) },
  });

/** An answer that comes when `answer` settles, or fails as fetch does once the request is aborted. */
function abortable(answer: Promise<Response>, init: RequestInit | undefined): Promise<Response> {
  const signal = init?.signal;
  return new Promise<Response>((resolve, reject) => {
    const abort = () => reject(new DOMException('This operation was aborted', 'AbortError'));
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort, { once: true });
    answer.then(resolve, reject);
  });
}

const unavailable = () => problem(503, 'redis-unavailable', 'Storage unavailable; retry shortly.', 1);
const limited = () => problem(429, 'rate-limited', 'Too many requests a second.', 1);

describe("simulate: the drain's failed pages", () => {
  it.each([
    ['503 redis-unavailable', '503', unavailable],
    ['429 rate-limited', '429', limited],
  ])(
    'a first page answered %s (Retry-After: 1) is tried again and the events after it are counted',
    async (_, c, fail) => {
      const ws = `${WS}-${c}`;
      const run = endedRun(ws);
      await servedInTheLog(run, ws);
      const pages = drainPages((n) => (n === 1 ? fail() : undefined));
      const began = performance.now();
      await run.drain();
      const tookMs = performance.now() - began;
      vi.unstubAllGlobals();
      const s = run.summary('done', 0);
      expect(pages.asked, 'the failed page asked again').toBeGreaterThanOrEqual(2);
      expect(
        tookMs,
        "the retry waited what Retry-After asked, within the drain's bound",
      ).toBeGreaterThanOrEqual(950);
      expect(tookMs).toBeLessThan(5_000);
      expect(s.errors, JSON.stringify(s.errorSamples)).toBe(0);
      expect(s.retries, 'the retry counted').toBe(1);
      expect(s.assigned, "the log's assignment counted").toBe(1);
      expect([s.wrapUps, s.wrapUpsEnded], "the log's wrap-up counted").toEqual([1, 1]);
    },
  );

  /** Every page of the drain fails its own way; the drain ends within its 5 s and says so. */
  const failing: [
    what: string,
    ws: string,
    status: string,
    asked: number,
    answer: (n: number, init: RequestInit | undefined) => Promise<Response> | Response,
  ][] = [
    ['answered 503 every time', 'down', '503', 3, unavailable],
    ['not answered at all', 'hung', 'timeout', 1, (_n, init) => abortable(new Promise(() => {}), init)],
    [
      'answered, each page slowly, with more after it',
      'endless',
      'timeout',
      3,
      (n, init) =>
        abortable(
          sleep(400).then(() => Response.json({ events: [], next: `${n}-0` })),
          init,
        ),
    ],
  ];
  it.each(failing)(
    'a drain whose pages are %s ends within its bound, its summary saying its counts may be short',
    async (_, c, status, asked, fail) => {
      const ws = `${WS}-${c}`;
      const run = endedRun(ws);
      await servedInTheLog(run, ws);
      const pages = drainPages(fail);
      const began = performance.now();
      await run.drain();
      const tookMs = performance.now() - began;
      vi.unstubAllGlobals();
      const s = run.summary('done', 0);
      expect(pages.asked, 'pages asked (a failed one again while time was left)').toBeGreaterThanOrEqual(
        asked,
      );
      expect(tookMs, "within the drain's 5 s").toBeLessThan(5_000 + 1_000);
      expect(s.errors, 'the short drain is an error of the run').toBe(1);
      expect(s.errorsByStatus).toEqual({ [status]: 1 });
      expect(s.errorSamples).toHaveLength(1);
      expect(s.errorSamples[0]).toMatch(/^drain: /);
      expect(s.errorSamples[0]).toMatch(/counts may be short/);
      // What to do: where the log's events not read start.
      expect(s.errorSamples[0]).toMatch(/GET http:\/\/\S+\/v1\/workspaces\/\S+\/events\?after=\d+-\d+ /);
      // Not counted: the events the drain could not read (the summary said so above).
      expect(s.assigned).toBe(0);
    },
  );
});
