/**
 * The agent desktop (/agent) as an agent meets it: a double click on Accept, an offer's buttons
 * kept under the keyboard while the desktop reads its documents again, a shared desk signed out
 * and signed in as another agent, a read slower than the one after it, a computer whose clock is
 * ahead, the presence buttons read by a screen reader, two state commands clicked in quick
 * succession (sent one after another), and the keyboard's focus when the card or wrap-up holding
 * it goes. Debian's headless Chromium
 * (playwright-core) against Switchboard in-process with API keys on (test/support/browser.ts).
 */
import type { Browser, Page } from 'playwright-core';
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

const WS = 'desk';

const api = pagesApi(WS);
let browser: Browser;
let admin: SwitchboardClient;
const keys = { ann: '', bo: '', cy: '' };

beforeAll(async () => {
  browser = await launchChromium();
  admin = await adminClient(api, WS);
  for (const id of ['ann', 'bo', 'cy'] as const)
    keys[id] = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: id })).key;
  await admin.putSettings({ offerTimeoutMs: 60_000 });
  // Each agent has a skill of its own, so each test offers to one agent only.
  await admin.registerAgent({ id: 'ann', name: 'Ann', skills: ['Billing'] });
  await admin.registerAgent({ id: 'bo', name: 'Bo', skills: ['Sales'] });
  await admin.registerAgent({ id: 'cy', name: 'Cy', skills: ['Support'] });
});

afterAll(async () => {
  await browser?.close();
});

async function desk(key: string): Promise<Page> {
  const page = await openPage(browser, api.running.url!, '/agent');
  await signIn(page, key);
  return page;
}

const signIn = (page: Page, key: string) => signInAs(page, WS, key);
const banner = bannerOf;

it('a double click on Accept sends one command and shows no error', async () => {
  const page = await desk(keys.ann);
  await page.click('#set-available');
  await admin.queueContact({ id: 'dbl', skills: ['Billing'] });
  const accept = '[data-contact="dbl"] [data-action="accept"]';
  await page.waitForSelector(accept);
  const sent: string[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/contacts/dbl/accept')) sent.push(r.url());
  });
  await page.dblclick(accept);
  await page.waitForSelector('[data-contact="dbl"][data-state="assigned"]');
  await page.waitForTimeout(500);
  expect(sent).toHaveLength(1);
  expect(await banner(page)).toBeNull();
  await page.close();
});

it("an offer's Accept button keeps the keyboard's focus while the desktop reads its documents again, and hands it to Complete", async () => {
  const page = await desk(keys.bo);
  await page.click('#set-available');
  await admin.queueContact({ id: 'kbd', skills: ['Sales'] });
  const accept = '[data-contact="kbd"] [data-action="accept"]';
  await page.waitForSelector(accept);
  await page.focus(accept);
  // The desktop reads the agent and its contacts again (every 5 s, and at once after an event of
  // its agent's: the same read, refresh() in agent.js): the offer is still there. An event of Bo's
  // (his name set to what it is) makes it read now rather than at its next 5 s.
  const reread = page.waitForResponse((r) => r.url().endsWith('/agents/bo'), { timeout: 7000 });
  await admin.updateAgent('bo', { name: 'Bo' });
  await reread;
  await page.waitForTimeout(300);
  expect(
    await page.evaluate(
      () =>
        `${document.activeElement?.closest('[data-contact]')?.getAttribute('data-contact')}/${document.activeElement?.getAttribute('data-action')}`,
    ),
  ).toBe('kbd/accept');
  // Enter on the focused button accepts; the focus goes on to Complete, where Enter completes.
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-contact="kbd"][data-state="assigned"]');
  expect(
    await page.evaluate(
      () =>
        `${document.activeElement?.closest('[data-contact]')?.getAttribute('data-contact')}/${document.activeElement?.getAttribute('data-action')}`,
    ),
  ).toBe('kbd/complete');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-contact="kbd"]', { state: 'detached' });
  await page.close();
});

it("a desk signed out and signed in as another agent shows none of the last agent's contacts, activity or problems", async () => {
  const page = await desk(keys.cy);
  await page.click('#set-available');
  await admin.queueContact({ id: 'cy-1', skills: ['Support'] });
  await page.waitForSelector('[data-contact="cy-1"]');
  await page.waitForSelector('#log li[data-type="AssignmentMade"]');
  // A problem of Cy's in the banner: a state change refused.
  await page.route('**/agents/cy/state', (route) =>
    route.fulfill({
      status: 409,
      contentType: 'application/problem+json',
      body: JSON.stringify({ type: '/problems/test', title: 'Refused', status: 409, detail: 'not now' }),
    }),
  );
  await page.click('#set-away');
  await page.waitForFunction(() => !document.getElementById('banner')!.hidden);
  await page.click('#signout');
  // Ann signs in at the same desk, with no contact; her documents come slowly.
  await admin.completeContact('dbl');
  let reads = 0;
  await page.route('**/agents/ann', async (route) => {
    if (++reads > 1) await new Promise((r) => setTimeout(r, 800));
    await route.continue();
  });
  await signIn(page, keys.ann);
  await page.waitForFunction(() => document.getElementById('agent-name')?.textContent === 'Ann (ann)');
  const seen = await page.evaluate(() => ({
    cards: [...document.querySelectorAll('#contacts [data-contact]')].map((el) =>
      el.getAttribute('data-contact'),
    ),
    log: document.getElementById('log')!.textContent,
    banner: document.getElementById('banner')!.hidden ? null : document.getElementById('banner')!.textContent,
  }));
  expect(seen).toEqual({ cards: [], log: expect.not.stringContaining('cy-1'), banner: null });
  await page.close();
});

it('an offer withdrawn while an older read of the documents is on its way does not come back', async () => {
  await admin.registerAgent({ id: 'dee', name: 'Dee', skills: ['Claims'] });
  const key = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'dee' })).key;
  const page = await desk(key);
  await page.click('#set-available');
  await admin.queueContact({ id: 'slow', skills: ['Claims'] });
  await page.waitForSelector('[data-contact="slow"]');
  // The next read of Dee's document answers late, with what it read before the customer left.
  let held = false;
  let entered = () => {};
  const reading = new Promise<void>((r) => {
    entered = r;
  });
  await page.route('**/agents/dee', async (route) => {
    if (held) return route.continue();
    held = true;
    const response = await route.fetch();
    entered();
    await new Promise((r) => setTimeout(r, 1500));
    await route.fulfill({ response });
  });
  await reading;
  await admin.abandonContact('slow');
  await page.waitForSelector('#log li[data-type="ContactAbandoned"]');
  await page.waitForSelector('[data-contact="slow"]', { state: 'detached' });
  // Until the late answer has landed, and after: Dee is available, with no offer.
  const seen = new Set<string>();
  for (const t0 = Date.now(); Date.now() - t0 < 2000; await page.waitForTimeout(50))
    seen.add(
      await page.evaluate(
        () =>
          `${document.getElementById('state')!.textContent} ${document.querySelectorAll('#contacts [data-contact]').length}`,
      ),
    );
  expect([...seen]).toEqual(['available 0']);
  await page.close();
});

it("an offer's time left is Switchboard's, on a computer whose clock is two minutes ahead", async () => {
  await admin.registerAgent({ id: 'eve', name: 'Eve', skills: ['Refunds'] });
  const key = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'eve' })).key;
  const context = await browser.newContext();
  await context.addInitScript(() => {
    const real = Date.now;
    Date.now = () => real() + 120_000;
  });
  const page = await context.newPage();
  await page.goto(`${api.running.url}/agent`);
  await signIn(page, key);
  await page.click('#set-available');
  await admin.queueContact({ id: 'skew', skills: ['Refunds'] });
  await page.waitForSelector('[data-contact="skew"] [data-until]');
  await page.waitForTimeout(1200);
  // The offer has 60 s (the workspace's offerTimeoutMs): almost all of it is left (the Date header
  // gives Switchboard's time to the second, so 1:00 may still show). By the computer's clock it
  // would read "expiring" from the start.
  expect(await page.textContent('[data-contact="skew"] [data-until]')).toMatch(/^expires in (0:5\d|1:00)$/);
  await context.close();
});

it('the presence buttons say which one is in force to a screen reader (aria-pressed), not by colour only', async () => {
  const page = await desk(keys.bo);
  const pressed = () =>
    page.evaluate(() =>
      ['available', 'away', 'offline'].map((s) =>
        document.getElementById(`set-${s}`)!.getAttribute('aria-pressed'),
      ),
    );
  await page.click('#set-away');
  await page.waitForSelector('#set-away.current');
  expect(await pressed()).toEqual(['false', 'true', 'false']);
  await page.close();
});

it('Away then Available clicked in quick succession: the commands reach Switchboard in that order, and the desk shows where it ended', async () => {
  await admin.registerAgent({ id: 'fay', name: 'Fay', skills: ['Chat'] });
  const key = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'fay' })).key;
  const page = await desk(key);
  // The first state command is slow on its way (a slow network, a busy instance): held 800 ms.
  let first = true;
  let landed = 0;
  page.on('requestfinished', (r) => {
    if (r.url().endsWith('/agents/fay/state')) landed++;
  });
  await page.route('**/agents/fay/state', async (route) => {
    if (first) {
      first = false;
      await new Promise((r) => setTimeout(r, 800));
    }
    await route.continue();
  });
  await page.click('#set-away');
  await page.click('#set-available');
  // Once both have landed (answered), where Fay ends (and what the desk shows) is what was clicked
  // last.
  await expect.poll(() => landed, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
  await expect
    .poll(
      async () => ({
        server: (await admin.getAgent('fay')).presence,
        desk: await page.textContent('#state'),
      }),
      {
        timeout: 3000,
      },
    )
    .toEqual({ server: 'available', desk: 'available' });
  await page.close();
});

it("a contact card holding the keyboard's focus that goes away hands the focus on: to the next card, else to the contacts' heading", async () => {
  await admin.registerAgent({ id: 'gil', name: 'Gil', skills: ['Retention'], capacity: 2 });
  const key = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'gil' })).key;
  const page = await desk(key);
  await page.click('#set-available');
  await admin.queueContact({ id: 'g1', skills: ['Retention'] });
  await admin.queueContact({ id: 'g2', skills: ['Retention'] });
  await page.waitForSelector('[data-contact="g1"] [data-action="accept"]');
  await page.waitForSelector('[data-contact="g2"] [data-action="accept"]');
  const focused = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return 'body';
      const card = el.closest('[data-contact]');
      return card
        ? `${card.getAttribute('data-contact')}/${el.getAttribute('data-action')}`
        : el.id || el.tagName;
    });
  // The offer under the keyboard is withdrawn (the customer left): the focus goes to the other offer.
  await page.focus('[data-contact="g1"] [data-action="accept"]');
  await admin.abandonContact('g1');
  await page.waitForSelector('[data-contact="g1"]', { state: 'detached' });
  expect(await focused()).toBe('g2/accept');
  // The last one goes too: the focus stays in the contacts' panel, on its heading.
  await admin.abandonContact('g2');
  await page.waitForSelector('[data-contact="g2"]', { state: 'detached' });
  expect(await focused()).toBe('contacts-heading');
  await page.close();
});

it("'Ready for the next contact' pressed from the keyboard ends the wrap-up and leaves the focus in the desk, not on the page's body", async () => {
  await admin.registerAgent({ id: 'hal', name: 'Hal', skills: ['Wraps'], wrapUpMs: 60_000 });
  const key = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'hal' })).key;
  const page = await desk(key);
  await page.click('#set-available');
  await admin.queueContact({ id: 'wr', skills: ['Wraps'] });
  await page.click('[data-contact="wr"] [data-action="accept"]');
  await page.click('[data-contact="wr"] [data-action="complete"]');
  await page.waitForSelector('#wrapup:not([hidden])');
  await page.focus('#wrapup-done');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#wrapup', { state: 'hidden' });
  expect(await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName)).toBe(
    'contacts-heading',
  );
  await page.close();
});

it("the 'no longer registered' banner goes by itself once the agent is registered again", async () => {
  await admin.registerAgent({ id: 'ivy', name: 'Ivy', skills: ['Returns'] });
  const key = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'ivy' })).key;
  const page = await desk(key);
  await admin.removeAgent('ivy');
  await page.waitForFunction(() =>
    /no longer registered/.test(document.getElementById('banner')!.textContent!),
  );
  // Registered again: the desk's next read (after the event, or its 5 s refresh) finds Ivy, and no
  // click is needed for the banner to go.
  await admin.registerAgent({ id: 'ivy', name: 'Ivy', skills: ['Returns'] });
  await page
    .waitForFunction(() => document.getElementById('banner')!.hidden, undefined, { timeout: 7000 })
    .catch(async () => {
      throw new Error(`the banner still reads ${JSON.stringify(await banner(page))}`);
    });
  await page.close();
});

it("the desk's own activity lines carry Switchboard's time, on a computer whose clock is ten minutes ahead", async () => {
  await admin.registerAgent({ id: 'jo', name: 'Jo', skills: ['Orders'] });
  const key = (await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: 'jo' })).key;
  const context = await browser.newContext();
  // The computer's clock, ten minutes ahead: Date.now() and new Date() both.
  await context.addInitScript(() => {
    const Real = Date;
    const skew = 10 * 60_000;
    (globalThis as { realNow?: () => number }).realNow = () => Real.now();
    class Skewed extends Real {
      constructor(...args: unknown[]) {
        if (args.length === 0) super(Real.now() + skew);
        else super(...(args as [string]));
      }
      static override now(): number {
        return Real.now() + skew;
      }
    }
    globalThis.Date = Skewed as DateConstructor;
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => {
    throw new Error(`script error: ${err.message}`);
  });
  await page.goto(`${api.running.url}/agent`);
  await signIn(page, key);
  // The state command applied, its outcome not known in time (202): the desk's own line says so.
  await page.route('**/agents/jo/state', async (route) => {
    const response = await route.fetch();
    await route.fulfill({
      status: 202,
      contentType: 'application/json',
      body: JSON.stringify({ position: '0-1', commandId: 'c-1', id: 'jo' }),
      headers: { date: response.headers().date ?? new Date().toUTCString() },
    });
  });
  await page.click('#set-away');
  await page.waitForSelector('#log li:not([data-type])');
  // The line's time against Switchboard's (this machine's real clock), in seconds of the day.
  const off = await page.evaluate(() => {
    const text = document.querySelector('#log li:not([data-type]) .dim')!.textContent!.trim();
    const [hh, mm, ss] = text.split(':').map(Number);
    const real = new Date((globalThis as unknown as { realNow: () => number }).realNow());
    const d =
      hh! * 3600 + mm! * 60 + ss! - (real.getHours() * 3600 + real.getMinutes() * 60 + real.getSeconds());
    return (((d % 86400) + 86400 + 43200) % 86400) - 43200;
  });
  expect(Math.abs(off)).toBeLessThanOrEqual(3);
  await context.close();
});

it('a sign-in answered 429 (rate limited) is tried again no sooner than its Retry-After, and the form says it is rate limited', async () => {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => {
    throw new Error(`script error: ${err.message}`);
  });
  // The key's budget spent: the first /keys/me answers as Switchboard's rate limit does
  // (src/adapters/http/limits.ts), asking for 3 s.
  const RETRY_S = 3;
  const sent: number[] = [];
  await page.route('**/keys/me', async (route) => {
    sent.push(Date.now());
    if (sent.length > 1) return route.continue();
    await route.fulfill(rateLimitedAnswer(RETRY_S));
  });
  await page.goto(`${api.running.url}/agent`);
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#signin-ws', WS);
  await page.fill('#signin-key', keys.ann);
  await page.click('#signin button[type=submit]');
  // Until the sign-in was sent again: what the form said meanwhile.
  const said = new Set<string>();
  for (const t0 = Date.now(); Date.now() - t0 < 6000 && sent.length < 2; await page.waitForTimeout(100))
    said.add(String(await page.evaluate(() => document.getElementById('signin-message')!.textContent)));
  // Some slack for the moment between the browser's request and this process's hearing of it.
  expect(sent.length > 1 ? sent[1]! - sent[0]! : null).toBeGreaterThanOrEqual(RETRY_S * 1000 - 100);
  expect([...said].filter((t) => /rate.limited/i.test(t))).not.toEqual([]);
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');
  await page.context().close();
});
