/**
 * The agent desk at its edges, as a user meets it in Debian's headless Chromium (playwright-core)
 * against Switchboard in-process with API keys on: an agent and a contact whose ids are as long as
 * an id may be (128 characters), and a button whose command gets no answer at all (Switchboard
 * restarting, a proxy with nothing behind it). One desk page for both.
 */
import type { Browser, Page } from 'playwright-core';
import type { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { adminClient, bannerOf, launchChromium, openPage, pagesApi, signIn } from '../support/browser.ts';

const WS = 'edges1';
/** Ids as long as Switchboard takes them (1..128 characters of [A-Za-z0-9._:-]). */
const AGENT = `agent:${'a'.repeat(122)}`;
const CONTACT = `crm:case:${'c'.repeat(119)}`;

const api = pagesApi(WS);
let browser: Browser;
let admin: SwitchboardClient;
let desk: Page;

beforeAll(async () => {
  browser = await launchChromium();
  admin = await adminClient(api, WS);
  await admin.putSettings({ offerTimeoutMs: 60_000 });
  await admin.registerAgent({ id: AGENT, name: 'Ann', skills: ['Billing'] });
  const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'agent', agentId: AGENT });
  desk = await openPage(browser, api.running.url!, '/agent');
  await signIn(desk, WS, key);
  await desk.click('#set-available');
  await admin.queueContact({ id: CONTACT, skills: ['Billing'] });
  await desk.waitForSelector('[data-action="accept"]');
});

afterAll(async () => {
  await browser?.close();
});

it('ids of 128 characters wrap: the desk does not scroll sideways, and Sign out stays on screen', async () => {
  // The offer's card and its activity line are drawn.
  await desk.waitForFunction(() => /Offer of/.test(document.getElementById('log')!.textContent!));
  const seen = await desk.evaluate(() => {
    const signout = document.getElementById('signout')!.getBoundingClientRect();
    return {
      pageWidth: document.documentElement.scrollWidth,
      viewport: document.documentElement.clientWidth,
      signoutRight: Math.round(signout.right),
    };
  });
  expect(seen.pageWidth, 'the page is wider than the window').toBeLessThanOrEqual(seen.viewport);
  expect(seen.signoutRight, 'Sign out is off screen').toBeLessThanOrEqual(seen.viewport);
});

it("a command that gets no answer says it may not have been done and to try again (it is not sent again by itself), not 'retrying…'", async () => {
  const accept = `[data-contact="${CONTACT}"] [data-action="accept"]`;
  const sent: string[] = [];
  // No answer to Accept, each time the page sends it (its own tries included); the reads go through.
  await desk.route('**/accept', (route) => {
    sent.push(route.request().url());
    return route.abort('connectionrefused');
  });
  await desk.click(accept);
  await desk.waitForFunction(
    () => /Accept/.test(document.getElementById('banner')!.textContent ?? ''),
    null,
    {
      timeout: 10_000,
    },
  );
  const tries = sent.length;
  await desk.waitForTimeout(1500);
  const said = await bannerOf(desk);
  expect(sent.length, 'Accept was sent again after the banner').toBe(tries);
  expect(said, 'the banner promises a retry that never comes').not.toMatch(/retrying/i);
  expect(said).toMatch(/may not have been done/);
  expect(said).toMatch(/try again/i);
  // Tried again by hand once Switchboard answers: done, and the line goes.
  await desk.unroute('**/accept');
  await desk.click(accept);
  await desk.waitForSelector(`[data-contact="${CONTACT}"][data-state="assigned"]`);
  await desk.waitForFunction(() => document.getElementById('banner')!.hidden);
});
