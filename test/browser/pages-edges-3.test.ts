/**
 * The pages with what a user controls in them, a stale refusal, and a key revoked while they are
 * open. A button refused (a 409) left its line in the desk's banner, and the banner showed only its
 * first line: Switchboard then stopping answering the desk's reads went unsaid behind it (the
 * README promises "Switchboard did not answer"). Now every problem in force is a line of the
 * banner. An agent renamed while the desk was open kept its old name in the desk's header until a
 * reload; now the header follows each read. An agent's name and a contact's attributes holding
 * markup are shown as text on both pages (no element made, no handler run); a key revoked while
 * both pages are open takes both back to the sign-in form, the key gone from the tab and never in
 * a URL. Debian's headless Chromium against Switchboard in-process with API keys on
 * (test/support/browser.ts).
 */
import type { Browser, Page } from 'playwright-core';
import type { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { adminClient, bannerOf, launchChromium, openPage, pagesApi, signIn } from '../support/browser.ts';

const WS = 'pagesedges3';
const MARKUP = `<img src=x onerror="window.__pwned=1">"'&lt;`;
const api = pagesApi(WS);
let browser: Browser;
let admin: SwitchboardClient;
let desk: Page;
let board: Page;
const keys = { agent: { key: '', keyId: '' }, supervisor: { key: '', keyId: '' } };
/** Every URL either page asked for, the live feed's included. */
const urls: string[] = [];

beforeAll(async () => {
  browser = await launchChromium();
  admin = await adminClient(api, WS);
  await admin.putSettings({ offerTimeoutMs: 60_000 });
  await admin.registerAgent({ id: 'a1', name: MARKUP, skills: ['Billing'] });
  for (const role of ['agent', 'supervisor'] as const) {
    const made = await createApiKey(api.running.redis, {
      workspace: WS,
      role,
      ...(role === 'agent' ? { agentId: 'a1' } : {}),
    });
    keys[role] = { key: made.key, keyId: made.info.keyId };
  }
  desk = await openPage(browser, api.running.url!, '/agent');
  board = await openPage(browser, api.running.url!, '/');
  for (const page of [desk, board]) {
    page.on('request', (r) => urls.push(r.url()));
    page.on('websocket', (w) => urls.push(w.url()));
  }
  await signIn(desk, WS, keys.agent.key);
  await signIn(board, WS, keys.supervisor.key);
});

afterAll(async () => {
  await browser?.close();
});

it("an agent's name and a contact's attributes holding markup are shown as text, on the desk and the wallboard", async () => {
  await desk.click('#set-available');
  await admin.queueContact({ id: 'c1', skills: ['Billing'], attributes: { note: MARKUP, [MARKUP]: 'v' } });
  await desk.waitForSelector('[data-contact="c1"] [data-action="accept"]');
  await board.waitForSelector('#feed li[data-contact="c1"]');
  const seen = (page: Page) =>
    page.evaluate(() => ({
      images: document.querySelectorAll('main img, header img, #banner img').length,
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
    }));
  expect(await seen(desk)).toEqual({ images: 0, pwned: null });
  expect(await seen(board)).toEqual({ images: 0, pwned: null });
  expect(await desk.textContent('#agent-name')).toBe(`${MARKUP} (a1)`);
  expect(await desk.textContent('[data-contact="c1"] dl')).toContain(
    JSON.stringify({ note: MARKUP, [MARKUP]: 'v' }),
  );
});

it('a button refused (409) does not hide that Switchboard stopped answering the reads since', async () => {
  await desk.route('**/contacts/c1/accept', (route) =>
    route.fulfill({
      status: 409,
      contentType: 'application/problem+json',
      body: JSON.stringify({ type: '/problems/test', title: 'Refused', status: 409, detail: 'not now' }),
    }),
  );
  await desk.click('[data-contact="c1"] [data-action="accept"]');
  await desk.waitForFunction(() => /Refused/.test(document.getElementById('banner')!.textContent ?? ''));
  await desk.unroute('**/contacts/c1/accept');
  // Switchboard answers no read now (the 5 s poll finds it).
  await desk.route('**/agents/a1', (route) => route.abort('connectionrefused'));
  let said = await bannerOf(desk);
  for (const t0 = Date.now(); !/did not answer/.test(said ?? '') && Date.now() - t0 < 8000; ) {
    await desk.waitForTimeout(200);
    said = await bannerOf(desk);
  }
  expect(said).toMatch(/Switchboard did not answer/);
  expect(said, 'the refusal is still said').toMatch(/Refused/);
  // Reads answer again: their line goes, and the card is still there to accept.
  await desk.unroute('**/agents/a1');
  await desk.waitForFunction(
    () => !/did not answer/.test(document.getElementById('banner')!.textContent ?? ''),
    null,
    {
      timeout: 8000,
    },
  );
  await desk.click('[data-contact="c1"] [data-action="accept"]');
  await desk.waitForSelector('[data-contact="c1"][data-state="assigned"]');
  await desk.waitForFunction(() => document.getElementById('banner')!.hidden);
});

it("the agent renamed while the desk is open: the desk's header shows the new name", async () => {
  await admin.updateAgent('a1', { name: 'Ann Lee' });
  await desk.waitForFunction(
    () => document.getElementById('agent-name')?.textContent === 'Ann Lee (a1)',
    null,
    {
      timeout: 8000,
    },
  );
});

it('keys revoked while both pages are open: each goes back to its sign-in form saying so, the key gone from the tab and never in a URL', async () => {
  await admin.revokeKey(keys.agent.keyId);
  await admin.revokeKey(keys.supervisor.keyId);
  for (const [page, name] of [
    [desk, 'agent'],
    [board, 'wallboard'],
  ] as const) {
    await page.waitForSelector('#signin:not([hidden])', { timeout: 8000 });
    expect(await page.textContent('#signin-message'), name).toMatch(/refused \(401\)/);
    expect(await page.textContent('#live'), name).toBe('signed out');
    expect(await page.evaluate((n) => sessionStorage.getItem(`switchboard.${n}.key`), name), name).toBeNull();
  }
  const secrets = [keys.agent.key, keys.supervisor.key];
  expect(urls.filter((u) => secrets.some((k) => u.includes(k) || u.includes(encodeURIComponent(k))))).toEqual(
    [],
  );
  expect(urls.some((u) => u.includes('/events/live?ticket='))).toBe(true);
});
