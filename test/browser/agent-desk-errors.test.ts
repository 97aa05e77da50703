/**
 * The agent desktop (/agent) when a read of its agent or of a contact fails other than by a 404 or
 * a 429: Redis away (`503 redis-unavailable`), the instance stopping (`503 shutting-down`), no
 * answer at all (a network error). The banner says the desk could not read and why in short, what
 * is shown stays as the last known (a contact's card included: only a 404, or an agent key's 403,
 * means it is gone), and the line goes by itself with the next read that succeeds. One page of
 * Debian's headless Chromium (playwright-core) against Switchboard in-process with API keys on
 * (test/support/browser.ts); the failures are Switchboard's own answers (problem.ts), injected by
 * the browser's routing.
 */
import type { Browser, Page, Route } from 'playwright-core';
import type { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PROBLEM_TYPE, type Problem, problem, redisUnavailable } from '../../src/adapters/http/problem.ts';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { adminClient, bannerOf, launchChromium, openPage, pagesApi, signIn } from '../support/browser.ts';

const WS = 'deskerrors';

const api = pagesApi(WS);
let browser: Browser;
let admin: SwitchboardClient;

beforeAll(async () => {
  browser = await launchChromium();
  admin = await adminClient(api, WS);
  await admin.putSettings({ offerTimeoutMs: 60_000 });
});

afterAll(async () => {
  await browser?.close();
});

/** A 503 as Switchboard answers it (with `retry-after: 1`): the options of a `route.fulfill`. */
const unavailable = (p: Problem) => ({
  status: 503,
  contentType: PROBLEM_TYPE,
  headers: { 'retry-after': '1' },
  body: JSON.stringify(p),
});

/** A GET of the route answered with `answer` (a network error: 'abort'); other methods sent on. */
const failing = (answer: ReturnType<typeof unavailable> | 'abort') => (route: Route) => {
  if (route.request().method() !== 'GET') return route.continue();
  return answer === 'abort' ? route.abort('failed') : route.fulfill(answer);
};

/** The banner's text (null: hidden) once `done` holds for it, or as it is after `ms`. */
async function bannerUntil(page: Page, done: (text: string | null) => boolean, ms = 3000) {
  let text = await bannerOf(page);
  for (const t0 = Date.now(); !done(text) && Date.now() - t0 < ms; text = await bannerOf(page))
    await page.waitForTimeout(50);
  return text;
}

const cardsOf = (page: Page, id: string) =>
  page.evaluate((id) => document.querySelectorAll(`[data-contact="${id}"]`).length, id);

let events = 0;
/** An event of the agent's: the desk reads its agent and contacts again at once. */
const nudge = (id: string) => admin.updateAgent(id, { name: `Dee ${++events}` });

it('a read failing with a 503 or no answer is said in the banner, what is shown stays (the offer card too), and the line goes with the next read that succeeds', async () => {
  await admin.registerAgent({ id: 'dee', skills: ['Billing'] });
  const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'dee' });
  await admin.setAgentState('dee', 'available');
  await admin.queueContact({ id: 'd1', skills: ['Billing'] });
  await expect
    .poll(async () => (await admin.getAgent('dee')).activeContacts, { timeout: 5000 })
    .toEqual(['d1']);

  const page = await openPage(browser, api.running.url!, '/agent');
  await signIn(page, WS, key);
  await page.waitForSelector('[data-contact="d1"] [data-action="accept"]');
  const state = () => page.textContent('#state');
  expect(await state()).toBe('offer waiting');

  /** While `route` fails as `answer`: the banner's line, and the page as the last known. */
  async function whileFailing(
    route: string,
    answer: ReturnType<typeof unavailable> | 'abort',
    said: RegExp,
  ): Promise<void> {
    const handler = failing(answer);
    await page.route(route, handler);
    await nudge('dee');
    expect
      .soft(
        (await bannerUntil(page, (t) => t !== null && said.test(t))) ?? 'the banner hidden',
        `the banner as ${route} fails`,
      )
      .toMatch(said);
    // The read that failed took nothing away: the offer stays, as the last known.
    expect.soft(await cardsOf(page, 'd1'), `cards of d1 while ${route} fails`).toBe(1);
    expect.soft(await state(), `the state shown while ${route} fails`).toBe('offer waiting');
    // Answered again: the next read (the next event) clears the line without a click.
    await page.unroute(route, handler);
    await nudge('dee');
    expect
      .soft(await bannerUntil(page, (t) => t === null), `the banner once ${route} answers again`)
      .toBeNull();
    await page.waitForSelector('[data-contact="d1"]', { timeout: 3000 }).catch(() => undefined);
    expect.soft(await cardsOf(page, 'd1'), `cards of d1 once ${route} answers again`).toBe(1);
  }

  await whileFailing(
    '**/agents/dee',
    unavailable(redisUnavailable()),
    /^The desk could not read the agent and its contacts: Storage unavailable \(503\)\. What is shown is the last known/,
  );
  await whileFailing(
    '**/contacts/d1',
    unavailable(
      problem(
        503,
        'shutting-down',
        'Shutting down',
        'This instance is stopping; send the request again (another instance will take it).',
      ),
    ),
    /^The desk could not read the agent and its contacts: Shutting down \(503\)\./,
  );
  await whileFailing(
    '**/agents/dee',
    'abort',
    /^The desk could not read the agent and its contacts: Switchboard did not answer\./,
  );
  await whileFailing(
    '**/contacts/d1',
    'abort',
    /^The desk could not read the agent and its contacts: Switchboard did not answer\./,
  );
  // The offer is still Dee's to take.
  await page.click('[data-contact="d1"] [data-action="accept"]');
  await page.waitForSelector('[data-contact="d1"][data-state="assigned"]');
  expect(await bannerOf(page)).toBeNull();
  await page.context().close();
});
