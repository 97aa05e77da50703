/**
 * The wallboard's assignments when an offer is withdrawn because its contact left: abandoned by the
 * customer (`ContactAbandoned` with the `agentId` it was offered to) or past its maximum wait
 * (`ContactExpired` with `agentId`). No `AssignmentRejected` follows either: the row must say what
 * happened, not go on reading "offered" for an offer that no longer exists. Debian's headless
 * Chromium (playwright-core) against Switchboard in-process with API keys on.
 */
import type { Browser, Page } from 'playwright-core';
import type { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { adminClient, launchChromium, pagesApi } from '../support/browser.ts';

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
