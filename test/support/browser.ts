/**
 * What the smaller browser suites share (test/browser/*.test.ts other than pages.test.ts, which
 * keeps its own instance and restarts it): Switchboard in-process with API keys on and the limits
 * that a page's reloads would meet off, Debian's headless Chromium (playwright-core) launched for
 * the suite, and the workspace's admin client.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { SwitchboardClient } from 'switchboard/client';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { inProcessApi } from './api.ts';

export const CHROMIUM = process.env.SWITCHBOARD_CHROMIUM ?? '/usr/bin/chromium';

/** Switchboard for the pages: every role in one process, keys on, no rate or socket limits. */
export function pagesApi(workspace: string): ReturnType<typeof inProcessApi> {
  return inProcessApi([workspace], {
    env: {
      AUTH: 'on',
      HOST: '127.0.0.1',
      ROLES: 'api,projector,dispatcher',
      RATE_LIMIT: 'off',
      WS_MAX_PER_KEY: 'off',
    },
  });
}

/** Chromium, headless; a missing one fails the suite loudly (it would prove nothing). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed (${CHROMIUM} is missing)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
}

/** An admin key of the workspace and a client with it (no retries: a test sees every answer). */
export async function adminClient(
  api: ReturnType<typeof inProcessApi>,
  workspace: string,
): Promise<SwitchboardClient> {
  const { key } = await createApiKey(api.running.redis, { workspace, role: 'admin', name: 'admin' });
  return new SwitchboardClient({ url: api.running.url!, workspace, key, retries: 0 });
}

/**
 * A 429 as Switchboard's rate limit answers it (src/adapters/http/limits.ts), asking for
 * `retryAfterS` seconds: the options of a Playwright `route.fulfill`, for a page met with it.
 */
export function rateLimitedAnswer(retryAfterS: number) {
  return {
    status: 429,
    contentType: 'application/problem+json',
    headers: { 'retry-after': String(retryAfterS) },
    body: JSON.stringify({
      type: '/problems/rate-limited',
      title: 'Too many requests',
      status: 429,
      detail: `This API key sent more than 5 requests a second (bursts of 10); send again in ${retryAfterS} s (Retry-After). Nothing was changed.`,
      retryAfterMs: retryAfterS * 1000,
    }),
  };
}

/**
 * A new page (in a context of its own) at `path` of Switchboard, failing its test on a script
 * error; `signIn` then signs it in to `workspace` with `key` and waits for its live feed.
 */
export async function openPage(browser: Browser, url: string, path: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => {
    throw new Error(`script error: ${err.message}`);
  });
  await page.goto(`${url}${path}`);
  return page;
}

/** Signs a page (the desk or the wallboard) in with its form, and waits until its feed is live. */
export async function signIn(page: Page, workspace: string, key: string): Promise<void> {
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#signin-ws', workspace);
  await page.fill('#signin-key', key);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');
}

/** The page's banner text, null while it is hidden. */
export const bannerOf = (page: Page): Promise<string | null> =>
  page.evaluate(() => {
    const el = document.getElementById('banner')!;
    return el.hidden ? null : el.textContent;
  });
