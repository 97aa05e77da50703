/**
 * The agent desk signed in with a key that may act for no agent: an `auditor` key (reads only) or
 * an `integration` key (contacts only) took the desk, and every button was then a 403. The sign-in
 * says so at once and names the keys that can act for an agent; the key is not kept. An admin key,
 * with the agent typed, still signs in. Debian's headless Chromium against Switchboard in-process
 * with API keys on.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { adminClient, launchChromium, openPage, pagesApi } from '../support/browser.ts';

const WS = 'edges2';
const api = pagesApi(WS);
let browser: Browser;
let desk: Page;

beforeAll(async () => {
  browser = await launchChromium();
  const admin = await adminClient(api, WS);
  await admin.registerAgent({ id: 'a1', name: 'Ann', skills: ['Billing'] });
  desk = await openPage(browser, api.running.url!, '/agent');
});

afterAll(async () => {
  await browser?.close();
});

async function tryKey(key: string, agent: string): Promise<string> {
  await desk.waitForSelector('#signin:not([hidden])');
  await desk.fill('#signin-ws', WS);
  await desk.fill('#signin-key', key);
  await desk.fill('#signin-agent', agent);
  await desk.click('#signin button[type=submit]');
  await desk.waitForFunction(
    () =>
      document.getElementById('live')?.textContent === 'live' ||
      (document.getElementById('signin-message')?.textContent ?? '') !== '',
    null,
    { timeout: 10_000 },
  );
  return desk.evaluate(() => document.getElementById('signin-message')?.textContent ?? '');
}

it('an auditor or integration key is refused at sign-in, naming the keys that can act; the key is not kept', async () => {
  for (const role of ['auditor', 'integration'] as const) {
    const { key } = await createApiKey(api.running.redis, { workspace: WS, role });
    const said = await tryKey(key, 'a1');
    expect(said, role).toMatch(new RegExp(`key of role ${role}`));
    expect(said, role).toMatch(/cannot act for an agent/);
    expect(said, role).toMatch(/agent's own key/);
    expect(await desk.evaluate(() => document.getElementById('live')?.textContent), role).not.toBe('live');
    expect(await desk.evaluate(() => sessionStorage.getItem('switchboard.agent.key')), role).toBeNull();
  }
});

it('an admin key with the agent typed still signs in', async () => {
  const { key } = await createApiKey(api.running.redis, { workspace: WS, role: 'admin' });
  expect(await tryKey(key, 'a1')).toBe('');
  expect(await desk.evaluate(() => document.getElementById('live')?.textContent)).toBe('live');
});
