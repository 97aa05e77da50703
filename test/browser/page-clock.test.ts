/**
 * The pages' times of day: 24-hour, and midnight as 00, in every locale. `hour12: false` alone
 * lets a locale whose default is 12-hour (en-US) pick the h24 cycle, where the first hour after
 * midnight reads 24:05:03.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pagesApi } from '../support/browser.ts';

const api = pagesApi('pageclock');
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

describe('the pages write a time of day', () => {
  it.each(['en-US', 'de-DE', 'ja-JP'])('in %s, the hour after midnight as 00', async (locale) => {
    const context = await browser.newContext({ locale, timezoneId: 'UTC' });
    try {
      const page = await context.newPage();
      // Any page of Switchboard's origin, the smallest: the module is imported from it.
      await page.goto(`${api.running.url}/ui/style.css`);
      // A string, not a function: vitest would rewrite a function's import() for Node.
      const times: string[] = await page.evaluate(`import('/ui/common.js').then((common) => [
        common.clock('2026-12-05T00:05:03Z'),
        common.clock('2026-12-05T13:00:00Z'),
        common.hoursMinutes(new Date('2026-12-05T00:30:00Z')),
      ])`);
      expect(times.map((t) => t.replace(/\D/g, ':'))).toEqual(['00:05:03', '13:00:00', '00:30']);
    } finally {
      await context.close();
    }
  });
});
