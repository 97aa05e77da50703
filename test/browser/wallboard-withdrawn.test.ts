/**
 * The wallboard's assignments when an offer is withdrawn because its contact left: abandoned by the
 * customer (`ContactAbandoned` with the `agentId` it was offered to) or past its maximum wait
 * (`ContactExpired` with `agentId`). No `AssignmentRejected` follows either: the row must say what
 * happened, not go on reading "offered" for an offer that no longer exists; nor "rejected" for an
 * offer withdrawn as its agent went away. Also: a first visit's replay on a computer whose clock is
 * wrong, and the per-queue table with more queues than it shows. Debian's headless
 * Chromium (playwright-core) against Switchboard in-process with API keys on.
 */
import type { Browser, Page } from 'playwright-core';
import type { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { adminClient, launchChromium, pagesApi, rateLimitedAnswer } from '../support/browser.ts';

const WS = 'withdrawn';

const api = pagesApi(WS);
let browser: Browser;
let admin: SwitchboardClient;
let supervisorKey = '';

beforeAll(async () => {
  browser = await launchChromium();
  admin = await adminClient(api, WS);
  supervisorKey = (await createApiKey(api.running.redis, { workspace: WS, role: 'supervisor', name: 'sup' }))
    .key;
  await admin.putSettings({ offerTimeoutMs: 60_000 });
  await admin.registerAgent({ id: 'ann', skills: ['Billing'] });
  await admin.setAgentState('ann', 'available');
});

afterAll(async () => {
  await browser?.close();
});

async function statusOf(page: Page, contactId: string, want: string): Promise<void> {
  const sel = `#feed li[data-contact="${contactId}"]`;
  await page
    .waitForFunction(([s, w]) => document.querySelector(s!)?.getAttribute('data-status') === w, [sel, want], {
      timeout: 10_000,
    })
    .catch(async () => {
      const seen = await page.evaluate((s) => document.querySelector(s)?.getAttribute('data-status'), sel);
      throw new Error(`${sel} should be ${want}, is ${JSON.stringify(seen)}`);
    });
}

it('an offer withdrawn as its contact leaves (abandoned, or past its maximum wait) is no longer shown as offered', async () => {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => {
    throw new Error(`script error: ${err.message}`);
  });
  await page.goto(`${api.running.url}/`);
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#signin-ws', WS);
  await page.fill('#signin-key', supervisorKey);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');

  // Offered to Ann; the customer hangs up before she answers.
  await admin.queueContact({ id: 'gone', skills: ['Billing'] });
  await statusOf(page, 'gone', 'offered');
  await admin.abandonContact('gone');
  await statusOf(page, 'gone', 'abandoned');

  // Offered to Ann, then past its maximum wait (1 s) before she answers.
  await admin.queueContact({ id: 'late', skills: ['Billing'], maxWaitMs: 1000 });
  await statusOf(page, 'late', 'offered');
  await statusOf(page, 'late', 'timed out');
  expect(await page.textContent('#feed li[data-contact="late"] .tag')).toBe('timed out');
  await page.close();
});

it("a first visit replays the last minutes by Switchboard's clock, on a computer whose clock is ten minutes ahead", async () => {
  await admin.registerAgent({ id: 'bea', skills: ['Sales'] });
  await admin.setAgentState('bea', 'available');
  await admin.queueContact({ id: 'early', skills: ['Sales'] });
  await expect
    .poll(async () => (await admin.getAgent('bea')).activeContacts, { timeout: 5000 })
    .toEqual(['early']);
  const context = await browser.newContext();
  await context.addInitScript(() => {
    const real = Date.now;
    Date.now = () => real() + 10 * 60_000;
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => {
    throw new Error(`script error: ${err.message}`);
  });
  await page.goto(`${api.running.url}/`);
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#signin-ws', WS);
  await page.fill('#signin-key', supervisorKey);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');
  // Made a moment ago: within the replay's 5 minutes by Switchboard's clock (by the computer's,
  // the replay would start 5 minutes from now: nothing).
  await statusOf(page, 'early', 'offered');
  await context.close();
});

async function board(): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => {
    throw new Error(`script error: ${err.message}`);
  });
  await page.goto(`${api.running.url}/`);
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#signin-ws', WS);
  await page.fill('#signin-key', supervisorKey);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');
  return page;
}

it('an offer withdrawn as its agent goes away is shown as withdrawn, not as rejected by the agent', async () => {
  await admin.registerAgent({ id: 'cal', skills: ['Loans'] });
  await admin.setAgentState('cal', 'available');
  const page = await board();
  await admin.queueContact({ id: 'left', skills: ['Loans'] });
  await statusOf(page, 'left', 'offered');
  // Cal goes away with the offer open: AssignmentRejected with reason "presence"; Cal said no to nothing.
  await admin.setAgentState('cal', 'away');
  await statusOf(page, 'left', 'withdrawn');
  await page.context().close();
});

it('with more queues than the table shows, a queue with contacts waiting is among those shown, and the rest are counted', async () => {
  // 60 queues in the window with nobody waiting (a contact each, abandoned), and one whose name
  // sorts last, with a contact waiting.
  // Ten at a time (each contact queued, then abandoned): the same 60, without 120 round trips in a row.
  for (let from = 0; from < 60; from += 10)
    await Promise.all(
      Array.from({ length: 10 }, async (_, k) => {
        const i = from + k;
        await admin.queueContact({ id: `many-${i}`, skills: [`Q${String(i).padStart(2, '0')}`] });
        await admin.abandonContact(`many-${i}`);
      }),
    );
  await admin.queueContact({ id: 'last', skills: ['Zulu'] });
  const page = await board();
  await page.waitForSelector('#queues tr[data-queue="voice|Q00"]');
  expect(await page.$('#queues tr[data-queue="voice|Zulu"]')).not.toBeNull();
  expect(await page.textContent('#queues-more')).toMatch(/^\d+ more queues not shown/);
  await page.context().close();
});

it('a 429 (rate limited) is waited out for its Retry-After before the next read of /stats or the next live-feed ticket, and the banner says so', async () => {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => {
    throw new Error(`script error: ${err.message}`);
  });
  // The key's budget spent: the first /stats and the first ticket answer as Switchboard's rate
  // limit does (src/adapters/http/limits.ts), asking for 3 s.
  const RETRY_S = 3;
  const sent: { stats: number[]; tickets: number[] } = { stats: [], tickets: [] };
  const limited = (what: keyof typeof sent) => async (route: import('playwright-core').Route) => {
    sent[what].push(Date.now());
    if (sent[what].length > 1) return route.continue();
    await route.fulfill(rateLimitedAnswer(RETRY_S));
  };
  await page.route('**/stats', limited('stats'));
  await page.route('**/ws-tickets', limited('tickets'));
  await page.goto(`${api.running.url}/`);
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#signin-ws', WS);
  await page.fill('#signin-key', supervisorKey);
  await page.click('#signin button[type=submit]');
  // Until both were sent again: what the banner said meanwhile.
  const said = new Set<string>();
  for (const t0 = Date.now(); Date.now() - t0 < 10_000; await page.waitForTimeout(100)) {
    said.add(String(await page.evaluate(() => document.getElementById('banner')!.textContent)));
    if (sent.stats.length > 1 && sent.tickets.length > 1) break;
  }
  // Some slack for the moment between the browser's request and this process's hearing of it.
  const gap = (t: number[]) => (t.length > 1 ? t[1]! - t[0]! : null);
  expect.soft({ stats: gap(sent.stats), tickets: gap(sent.tickets) }).toEqual({
    stats: expect.toSatisfy((ms: number | null) => ms !== null && ms >= RETRY_S * 1000 - 100),
    tickets: expect.toSatisfy((ms: number | null) => ms !== null && ms >= RETRY_S * 1000 - 100),
  });
  expect([...said].filter((t) => /rate.limited/i.test(t))).not.toEqual([]);
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');
  await page.context().close();
});
