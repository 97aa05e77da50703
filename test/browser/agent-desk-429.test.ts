/**
 * The agent desktop (/agent) when its key is rate limited (`429`, `Retry-After`): its regular reads
 * of the agent and contact documents, and its buttons. A read answered 429 is said in the banner,
 * the desk keeps showing what it last knew (no card goes), and it reads nothing before the
 * Retry-After has passed; the banner clears once a read succeeds. A command answered 429 says that
 * it was not done and when to try again. Debian's headless Chromium (playwright-core) against
 * Switchboard in-process with API keys on (test/support/browser.ts); the 429s are Switchboard's
 * rate limit's answer (rateLimitedAnswer), injected by the browser's routing.
 */
import type { Browser, Page, Route } from 'playwright-core';
import type { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import {
  adminClient,
  bannerOf,
  launchChromium,
  openPage,
  pagesApi,
  rateLimitedAnswer,
  signIn as signInAs,
} from '../support/browser.ts';

const WS = 'desk429';
/** The Retry-After asked for, seconds. */
const RETRY_S = 2;
/** Slack for the moment between the browser's request and this process's hearing of it. */
const SLACK_MS = 100;

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

async function agentKey(id: string, skill: string): Promise<string> {
  await admin.registerAgent({ id, skills: [skill] });
  return (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: id })).key;
}

const newPage = () => openPage(browser, api.running.url!, '/agent');
const signIn = (page: Page, key: string) => signInAs(page, WS, key);

/** Until `done()` or `ms`: every text the banner showed meanwhile (null: hidden). */
async function watchBanner(page: Page, done: () => boolean, ms: number): Promise<Set<string | null>> {
  const said = new Set<string | null>();
  for (const t0 = Date.now(); Date.now() - t0 < ms && !done(); await page.waitForTimeout(100))
    said.add(await bannerOf(page));
  return said;
}

/** The Nth request (1-based) to a route answered 429; the others sent on. Every request's time. */
function limitedAt(nth: number) {
  const sent: number[] = [];
  let limitedAtMs: number | null = null;
  return {
    sent,
    get limitedAt() {
      return limitedAtMs;
    },
    /** Requests sent after the 429, and how long after it the first was. */
    get after() {
      return limitedAtMs === null ? [] : sent.filter((t) => t > limitedAtMs!);
    },
    handler: async (route: Route) => {
      const now = Date.now();
      if (sent.length + (limitedAtMs === null ? 0 : 1) + 1 === nth) {
        limitedAtMs = now;
        return route.fulfill(rateLimitedAnswer(RETRY_S));
      }
      sent.push(now);
      await route.continue();
    },
  };
}

it('a regular read of the agent answered 429 is said in the banner, no read goes before its Retry-After, and the banner clears once a read succeeds', async () => {
  const key = await agentKey('ann', 'Billing');
  const page = await newPage();
  // The sign-in reads Ann (the 1st); the desk's first read of her document (the 2nd) is refused.
  const reads = limitedAt(2);
  await page.route('**/agents/ann', reads.handler);
  await signIn(page, key);
  await expect.poll(() => reads.limitedAt, { timeout: 5000 }).not.toBeNull();
  // An event of Ann's meanwhile: the desk would read her again at once (and its 5 s poll would
  // follow); with the key asked to wait, it must not.
  await page.waitForTimeout(300);
  await admin.updateAgent('ann', { name: 'Ann' });
  const said = await watchBanner(page, () => reads.after.length > 0, 6000);
  const gap = reads.after.length > 0 ? reads.after[0]! - reads.limitedAt! : null;
  expect
    .soft(gap, 'ms from the 429 to the next read of the agent')
    .toSatisfy((ms: number | null) => ms !== null && ms >= RETRY_S * 1000 - SLACK_MS);
  expect.soft([...said].filter((t) => t !== null && /rate.limited/i.test(t))).not.toEqual([]);
  // The read after the wait succeeded: the banner has nothing more to say.
  await page
    .waitForFunction(() => document.getElementById('banner')!.hidden, undefined, { timeout: 3000 })
    .catch(async () => {
      throw new Error(`the banner still reads ${JSON.stringify(await bannerOf(page))}`);
    });
  await page.context().close();
});

it("a read of a contact answered 429 leaves the contact's card in place, says so, and is not tried again before its Retry-After", async () => {
  const key = await agentKey('bo', 'Sales');
  await admin.setAgentState('bo', 'available');
  await admin.queueContact({ id: 'b1', skills: ['Sales'] });
  await expect
    .poll(async () => (await admin.getAgent('bo')).activeContacts, { timeout: 5000 })
    .toEqual(['b1']);
  const page = await newPage();
  // The desk's first read of the offer shows it; the second is refused.
  const reads = limitedAt(2);
  await page.route('**/contacts/b1', reads.handler);
  await signIn(page, key);
  await page.waitForSelector('[data-contact="b1"] [data-action="accept"]');
  // An event of Bo's: the desk reads Bo and the offer again.
  await admin.updateAgent('bo', { name: 'Bo' });
  await expect.poll(() => reads.limitedAt, { timeout: 5000 }).not.toBeNull();
  // Until the offer was read again: the card stays (the offer is still Bo's), the banner says why
  // the desk is not up to date.
  const cards = new Set<number>();
  const said = new Set<string | null>();
  for (
    const t0 = Date.now();
    Date.now() - t0 < 6000 && reads.after.length === 0;
    await page.waitForTimeout(100)
  ) {
    said.add(await bannerOf(page));
    cards.add(await page.evaluate(() => document.querySelectorAll('[data-contact="b1"]').length));
  }
  expect.soft([...cards], 'cards of b1 shown while rate limited').toEqual([1]);
  expect.soft([...said].filter((t) => t !== null && /rate.limited/i.test(t))).not.toEqual([]);
  const gap = reads.after.length > 0 ? reads.after[0]! - reads.limitedAt! : null;
  expect
    .soft(gap, 'ms from the 429 to the next read of the contact')
    .toSatisfy((ms: number | null) => ms !== null && ms >= RETRY_S * 1000 - SLACK_MS);
  await page.waitForFunction(() => document.getElementById('banner')!.hidden, undefined, { timeout: 3000 });
  await page.context().close();
});

it('Accept and a presence button answered 429 say the command was not done and when to try again; the desk reads nothing before then', async () => {
  const key = await agentKey('cy', 'Support');
  await admin.setAgentState('cy', 'available');
  await admin.queueContact({ id: 'c1', skills: ['Support'] });
  const page = await newPage();
  await signIn(page, key);
  const accept = '[data-contact="c1"] [data-action="accept"]';
  await page.waitForSelector(accept);
  // Accept refused once (429); reads of Cy's document from then on, timed.
  const command = limitedAt(1);
  await page.route('**/contacts/c1/accept', command.handler);
  const reads: number[] = [];
  page.on('request', (r) => {
    if (r.method() === 'GET' && r.url().endsWith('/agents/cy')) reads.push(Date.now());
  });
  await page.click(accept);
  await page.waitForFunction(() => !document.getElementById('banner')!.hidden);
  const first = await bannerOf(page);
  expect
    .soft(first)
    .toMatch(
      /^Accept c1 was not done: rate limited \(429\)\. Try again in 2 s \(after \d{1,2}:\d\d:\d\d\)\.$/,
    );
  // Once the wait is over the banner says so; no read of the documents went before it.
  await page
    .waitForFunction(
      () => /try again now/i.test(document.getElementById('banner')!.textContent!),
      undefined,
      {
        timeout: RETRY_S * 1000 + 1500,
      },
    )
    .catch(async () => {
      throw new Error(`after the wait the banner reads ${JSON.stringify(await bannerOf(page))}`);
    });
  const early = reads.filter((t) => t - command.limitedAt! < RETRY_S * 1000 - SLACK_MS);
  expect
    .soft(
      early.map((t) => t - command.limitedAt!),
      'reads within the Retry-After (ms after the 429)',
    )
    .toEqual([]);
  // Tried again: accepted, and the banner is clear.
  await page.click(accept);
  await page.waitForSelector('[data-contact="c1"][data-state="assigned"]');
  expect(await bannerOf(page)).toBeNull();
  // A presence button refused the same way.
  await page.route('**/agents/cy/state', (route) => route.fulfill(rateLimitedAnswer(RETRY_S)));
  await page.click('#set-away');
  await page.waitForFunction(() => !document.getElementById('banner')!.hidden);
  expect(await bannerOf(page)).toMatch(/^Set away was not done: rate limited \(429\)\. Try again in 2 s/);
  await page.context().close();
});
