/**
 * The wallboard (/) and the agent desktop (/agent) in a real browser: Debian's headless Chromium
 * driven by playwright-core, against Switchboard in-process with API keys on. The wallboard's
 * figures follow contacts as they are posted; an agent signs in with its key, goes available,
 * sees an offer arrive, rejects one, accepts another, completes it and wraps up, and the wallboard
 * shows each step; a refused key, a key of the wrong role and a paused Redis say so on the page;
 * after the instance restarts, the wallboard resumes from its last event, with what happened
 * meanwhile and nothing twice. Screenshots: .test-results/screenshots/*.png.
 *
 * No browser, no pass: if Chromium is missing or does not start, the suite fails with the reason.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { SwitchboardClient } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/adapters/redis/api-keys.ts';
import { type Running, startSwitchboard } from '../../src/app/composition-root.ts';
import { loadConfig } from '../../src/app/config.ts';
import { freezeRedis } from '../support/freeze.ts';
import { projectorReady } from '../support/projector.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const CHROMIUM = process.env.SWITCHBOARD_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = '.test-results/screenshots';
const WS = 'browser';
// The flags a headless Chromium needs on a machine with no network but loopback (no background
// connections, no component updates), as root (no sandbox: playwright passes --no-sandbox).
const CHROMIUM_ARGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let redis: TestRedis;
let sb: Running;
let port: number;
let base: string;
let browser: Browser;
const keys = { admin: '', integration: '', supervisor: '', agent: '' };
const contexts: BrowserContext[] = [];
let wallboard: Page;

const silent = pino({ level: 'silent' });
const start = (p: number) =>
  startSwitchboard(
    loadConfig({
      ...redis.env,
      AUTH: 'on',
      HOST: '127.0.0.1',
      PORT: String(p),
      LOG_LEVEL: 'silent',
      ROLES: 'api,projector,dispatcher',
      WORKSPACES: WS,
      DISCOVER_WORKSPACES: 'false',
      // The limits count over a connection of their own, which an instance stopping closes while
      // requests may still be counting on it (under the auto-pipelining the clients used before,
      // ioredis threw "results[i] is not iterable"); this suite stops an instance under a page's
      // polling, and tests no limit.
      RATE_LIMIT: 'off',
      WS_MAX_PER_KEY: 'off',
    }),
    silent,
  );

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as { port: number };
      s.close(() => resolve(p));
    });
  });
}

/** An API call as a client (not the page) makes it, through the typed client: `key` one of `keys`. */
async function call(
  url: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const client = new SwitchboardClient({ url, workspace: WS, key, retries: 0 });
  const r = await client.send(method, `/v1/workspaces/${WS}${path}`, body !== undefined ? { body } : {});
  return { status: r.status, body: r.body as Record<string, unknown> };
}
const api = (key: string, method: string, path: string, body?: unknown) =>
  call(base, key, method, path, body);

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  contexts.push(context);
  const page = await context.newPage();
  // A script error on a page fails the test that sees it.
  page.on('pageerror', (err) => {
    throw new Error(`script error on ${page.url()}: ${err.message}`);
  });
  return page;
}

/** Waits until `sel`'s text (trimmed) is `want` (a string) or matches it (a RegExp). */
async function textOf(page: Page, sel: string, want: string | RegExp, timeout = 10_000): Promise<void> {
  const read = () => page.evaluate((s) => document.querySelector(s)?.textContent?.trim() ?? null, sel);
  const deadline = Date.now() + timeout;
  let seen: string | null = null;
  while (Date.now() < deadline) {
    seen = await read();
    if (seen !== null && (typeof want === 'string' ? seen === want : want.test(seen))) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`${page.url()}: ${sel} should read ${String(want)}, reads ${JSON.stringify(seen)}`);
}

async function attr(page: Page, sel: string, name: string, want: string, timeout = 10_000): Promise<void> {
  await page
    .waitForFunction(([s, n, w]) => document.querySelector(s!)?.getAttribute(n!) === w, [sel, name, want], {
      timeout,
    })
    .catch(async () => {
      const seen = await page.evaluate(
        ([s, n]) => document.querySelector(s!)?.getAttribute(n!) ?? null,
        [sel, name],
      );
      throw new Error(`${page.url()}: ${sel} [${name}] should be ${want}, is ${JSON.stringify(seen)}`);
    });
}

/** Stops an instance, or fails saying what it still holds (rather than the test's time-out). */
async function stopWithin(running: Running, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const server = running.api?.server as { listening?: boolean; _connections?: number } | undefined;
      reject(
        new Error(
          `the instance did not stop within ${ms} ms (listening: ${server?.listening}, connections still open: ${server?._connections})`,
        ),
      );
    }, ms);
  });
  try {
    await Promise.race([running.stop(), late]);
  } finally {
    clearTimeout(timer);
  }
}

const shot = (page: Page, name: string) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

async function signIn(page: Page, path: '/' | '/agent', key: string): Promise<void> {
  await page.goto(`${base}${path}`);
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#signin-ws', WS);
  await page.fill('#signin-key', key);
  await page.click('#signin button[type=submit]');
}

beforeAll(async () => {
  // Loudly, before anything else: without a browser this suite proves nothing.
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not installed (${CHROMIUM} is missing), so the browser tests cannot run. ` +
        'Install it with `SWITCHBOARD_BROWSER=1 bash scripts/ensure.sh` (npm test does) or `apt-get install chromium`.',
    );
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  } catch (err) {
    throw new Error(
      `Chromium (${CHROMIUM}) did not start, so the browser tests cannot run: ${(err as Error).message}`,
    );
  }
  mkdirSync(SHOTS, { recursive: true });
  redis = await startTestRedis();
  port = await freePort();
  sb = await start(port);
  base = sb.url!;
  await projectorReady(sb.redis, [WS]);
  for (const role of ['admin', 'integration', 'supervisor'] as const)
    keys[role] = (await createApiKey(sb.redis, { workspace: WS, role, name: `browser ${role}` })).key;
  keys.agent = (await createApiKey(sb.redis, { workspace: WS, role: 'agent', agentId: 'ann' })).key;
  // Offers to answer, and a wrap-up after each contact.
  expect(
    (await api(keys.admin, 'PUT', '/settings', { offerTimeoutMs: 60_000, wrapUpMs: 60_000 })).status,
  ).toBe(200);
  for (const [id, name, skills] of [
    ['ann', 'Ann Lee', ['Billing', { name: 'English', level: 3 }]],
    ['bo', 'Bo Diaz', ['Sales']],
    ['cy', 'Cy Park', ['Billing']],
  ] as const)
    expect((await api(keys.admin, 'POST', '/agents', { id, name, skills })).status).toBe(201);
  expect((await api(keys.admin, 'POST', '/agents/bo/state', { state: 'away' })).status).toBe(200);
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await sb?.stop();
  await redis?.stop();
});

describe('the wallboard and the agent desktop in Chromium', () => {
  it('the pages and their files load without a key; the API behind them still asks for one', async () => {
    for (const [path, type] of [
      ['/', /^text\/html/],
      ['/agent', /^text\/html/],
      ['/ui/wallboard.js', /^text\/javascript/],
      ['/ui/agent.js', /^text\/javascript/],
      ['/ui/common.js', /^text\/javascript/],
      ['/ui/style.css', /^text\/css/],
      ['/ui/vendor/uplot.js', /^text\/javascript/],
      ['/ui/vendor/uplot.css', /^text\/css/],
    ] as const) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(type);
      expect(res.headers.get('content-security-policy'), path).toContain("default-src 'none'");
      const etag = res.headers.get('etag')!;
      expect((await fetch(`${base}${path}`, { headers: { 'if-none-match': etag } })).status, path).toBe(304);
    }
    const missing = await fetch(`${base}/ui/nothing.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await fetch(`${base}/v1/workspaces/${WS}/stats`)).status).toBe(401);
  });

  it('the wallboard refuses a wrong key and an agent key, saying why', async () => {
    const page = await newPage();
    await signIn(page, '/', `sb_${'0'.repeat(16)}_${'A'.repeat(43)}`);
    await textOf(page, '#signin-message', /API key was refused \(401\)/);
    await signIn(page, '/', keys.agent);
    await textOf(page, '#signin-message', /role agent: .*agent desktop/);
    await shot(page, 'wallboard-key-refused');
    const desk = await newPage();
    await signIn(desk, '/agent', keys.supervisor);
    await textOf(desk, '#signin-message', /role supervisor, which names no agent/);
    // Closed once done with: a page left open at its sign-in form keeps a renderer busy (about a
    // tenth of a core) for the rest of the suite.
    await page.close();
    await desk.close();
  });

  it('an agent key whose agent is not registered is told which agent is missing', async () => {
    const ghost = (await createApiKey(sb.redis, { workspace: WS, role: 'agent', agentId: 'ghost' })).key;
    const desk = await newPage();
    await signIn(desk, '/agent', ghost);
    await textOf(desk, '#signin-message', `No agent "ghost" in workspace "${WS}".`);
    await desk.close();
  });

  it("the wallboard's figures follow the contacts posted: waiting, longest wait, per skill set", async () => {
    wallboard = await newPage();
    // Every figure comes from GET /stats: the wallboard never lists the agents (thousands of them).
    const listed: string[] = [];
    wallboard.on('request', (r) => {
      if (/\/agents(\?|$)/.test(new URL(r.url()).pathname + new URL(r.url()).search)) listed.push(r.url());
    });
    await signIn(wallboard, '/', keys.supervisor);
    await textOf(wallboard, '#live', 'live');
    await textOf(wallboard, '#tile-queued .value', '0');
    await textOf(wallboard, '#tile-away .value', '1');
    await textOf(wallboard, '#tile-assignments .value', '0');
    await textOf(wallboard, '#tile-sl .value', '–'); // no assignment in the last minutes yet
    // No agent has Support: these wait.
    for (const id of ['s-1', 's-2', 's-3'])
      expect((await api(keys.integration, 'POST', '/contacts', { id, skills: ['Support'] })).status).toBe(
        201,
      );
    expect(
      (
        await api(keys.integration, 'POST', '/contacts', {
          id: 'e-1',
          skills: [{ name: 'English', minLevel: 2 }, 'Sales'],
        })
      ).status,
    ).toBe(201);
    await textOf(wallboard, '#tile-queued .value', '4');
    const support = '#queues tr[data-queue="voice|Support"]';
    await textOf(wallboard, `${support} .waiting`, '3');
    await textOf(wallboard, `${support} .wait`, /^0:0\d$/);
    const english = '#queues tr[data-queue="voice|English#2,Sales"]';
    await textOf(wallboard, `${english} td.queue`, 'English ≥2 + Sales');
    await textOf(wallboard, `${english} .waiting`, '1');
    // Bo holds Sales but not English: no agent of that queue; Ann and Cy are offline.
    await textOf(wallboard, `${english} [data-state=away]`, '0');
    await textOf(wallboard, `${english} [data-state=offline]`, '0');
    // Ann holds English at level 3: she counts for English ≥2 (offline), Bo (away) and Cy do not.
    expect(
      (
        await api(keys.integration, 'POST', '/contacts', {
          id: 'e-2',
          skills: [{ name: 'English', minLevel: 2 }],
        })
      ).status,
    ).toBe(201);
    const english2 = '#queues tr[data-queue="voice|English#2"]';
    await textOf(wallboard, `${english2} .waiting`, '1');
    await textOf(wallboard, `${english2} [data-state=offline]`, '1');
    await textOf(wallboard, `${english2} [data-state=away]`, '0');
    // The board redraws once a second: the longest wait on its clock reaches a second, the depth
    // chart is drawn.
    await waitFor('the longest wait to read a second or more', async () => {
      const [m = 0, s = 0] = ((await wallboard.textContent('#tile-longest .value')) ?? '')
        .split(':')
        .map(Number);
      return m * 60 + s >= 1;
    });
    await waitFor('the depth chart', async () =>
      wallboard.evaluate(() => document.querySelectorAll('#chart-depth canvas').length > 0),
    );
    await textOf(wallboard, '#tile-longest .value', /^\d+:\d\d$/);
    const [m, s] = (await wallboard.textContent('#tile-longest .value'))!.split(':').map(Number);
    expect(m! * 60 + s!).toBeGreaterThanOrEqual(1); // the board redraws once a second
    expect(await wallboard.evaluate(() => document.querySelectorAll('#chart-depth canvas').length)).toBe(1);
    await shot(wallboard, 'wallboard-queues');
    // Out of the way of the offers to Ann that follow.
    expect((await api(keys.integration, 'POST', '/contacts/e-2/abandon')).status).toBe(200);
    await textOf(wallboard, '#tile-queued .value', '4');
    expect(listed).toEqual([]);
  });

  it('an agent goes available, rejects an offer, accepts the next, completes and wraps up; the wallboard shows it', async () => {
    const desk = await newPage();
    await signIn(desk, '/agent', keys.agent);
    await textOf(desk, '#agent-name', 'Ann Lee (ann)');
    await textOf(desk, '#live', 'live');
    await textOf(desk, '#state', 'offline');
    await desk.click('#set-available');
    await textOf(desk, '#state', 'available');
    await textOf(wallboard, '#tile-available .value', '1');

    // An offer arrives live; Ann rejects it and it waits again (Cy is offline).
    expect(
      (await api(keys.integration, 'POST', '/contacts', { id: 'bill-1', skills: ['Billing'] })).status,
    ).toBe(201);
    await attr(desk, '.card[data-contact="bill-1"]', 'data-state', 'offered');
    await textOf(desk, '.card[data-contact="bill-1"] .countdown', /^expires in 0:[45]\d$/);
    await textOf(wallboard, '#tile-reserved .value', '1');
    await attr(wallboard, '#feed li[data-contact="bill-1"]', 'data-status', 'offered');
    await shot(desk, 'agent-offer');
    await desk.click('.card[data-contact="bill-1"] [data-action=reject]');
    await textOf(desk, '#no-contact', /No contact/);
    await attr(wallboard, '#feed li[data-contact="bill-1"]', 'data-status', 'rejected');
    await textOf(wallboard, '#queues tr[data-queue="voice|Billing"] .waiting', '1');
    await textOf(desk, '#log li[data-type=AssignmentRejected]', /Rejected bill-1/);

    // The next one: accepted, completed, wrapped up.
    expect(
      (await api(keys.integration, 'POST', '/contacts', { id: 'bill-2', skills: ['Billing'] })).status,
    ).toBe(201);
    await attr(desk, '.card[data-contact="bill-2"]', 'data-state', 'offered');
    await desk.click('.card[data-contact="bill-2"] [data-action=accept]');
    await attr(desk, '.card[data-contact="bill-2"]', 'data-state', 'assigned');
    await textOf(desk, '#state', 'busy');
    await attr(wallboard, '#feed li[data-contact="bill-2"]', 'data-status', 'accepted');
    await textOf(wallboard, '#feed li[data-contact="bill-2"] .what', /^bill-2 → ann/);
    await textOf(wallboard, '#tile-busy .value', '1');
    await textOf(wallboard, '#tile-assignments .value', '2');
    await textOf(wallboard, '#queues tr[data-queue="voice|Billing"] [data-state=busy]', '1');
    // Both decisions came at once: the service level (within 20 s) is 100 %, in all and for Billing.
    await textOf(wallboard, '#tile-sl .value', '100%');
    await textOf(wallboard, '#tile-sl .label', 'SL ≤ 20 s');
    await textOf(wallboard, '#queues tr[data-queue="voice|Billing"] .sl', '100%');
    await shot(wallboard, 'wallboard-assignment');
    await desk.click('.card[data-contact="bill-2"] [data-action=complete]');
    await textOf(desk, '#state', 'wrap-up');
    await textOf(desk, '#wrapup-left', /^0:[45]\d left$/);
    await attr(wallboard, '#feed li[data-contact="bill-2"]', 'data-status', 'completed');
    await textOf(wallboard, '#tile-wrapup .value', '1');
    await textOf(wallboard, '#tile-completed .value', '1');
    await shot(desk, 'agent-wrapup');
    // Ready early: available again. bill-1 still waits: Ann rejected it, so it is never offered to
    // her again, and stays for another Billing agent.
    await desk.click('#wrapup-done');
    await textOf(desk, '#state', 'available');
    await textOf(desk, '#log li[data-type=WrapUpEnded]', /Wrap-up ended early/);
    await textOf(wallboard, '#queues tr[data-queue="voice|Billing"] .waiting', '1');
    await shot(desk, 'agent-available');
    await desk.close();
  });

  it('an agent desktop reloaded while Switchboard does not answer signs in by itself once it does', async () => {
    const desk = await newPage();
    await signIn(desk, '/agent', keys.agent);
    await textOf(desk, '#agent-name', 'Ann Lee (ann)');
    // Switchboard away (restarting, failing over) as the page reloads: its first call fails.
    await desk.route('**/keys/me', (route) => route.abort('connectionrefused'));
    await desk.reload();
    await textOf(desk, '#signin-message', /Switchboard is not answering .*retrying/);
    await desk.unroute('**/keys/me');
    // What the page says it does: it tries again, with the key it kept for the tab.
    await textOf(desk, '#agent-name', 'Ann Lee (ann)');
    await textOf(desk, '#live', 'live');
    expect(await desk.evaluate(() => (document.getElementById('desk') as HTMLElement).hidden)).toBe(false);
    await desk.close();
  });

  it('says so when Redis is unreachable, and clears it when Redis is back', async () => {
    const admin = redis.adminClient();
    // Every client waits: the instance's once-a-second PING goes unanswered, /status says paused.
    // Seen in about 3 s (the PING's timeout, the page's poll of /status); Redis answers again as
    // soon as the page has said so (8 s at most leaves a loaded machine room to be late).
    const frozen = await freezeRedis(admin, { atMostMs: 8000 });
    try {
      await textOf(wallboard, '#banner', /Redis is unreachable: .*resumes by itself/, 7900);
      await shot(wallboard, 'wallboard-redis-unreachable');
    } finally {
      await frozen.thaw();
      admin.disconnect();
    }
    await waitFor('the banner to go', async () =>
      wallboard.evaluate(() => (document.getElementById('banner') as HTMLElement).hidden),
    );
  });

  it('a wallboard opened when nothing happened for its replay window goes live all the same', async () => {
    // The browser's clock 10 minutes ahead: the wallboard's 5-minute replay starts after the last
    // event, as on a workspace quiet for that long (or one with no event yet).
    const page = await newPage();
    await page.addInitScript(() => {
      const real = Date.now;
      Date.now = () => real() + 10 * 60_000;
    });
    await signIn(page, '/', keys.supervisor);
    await textOf(page, '#live', 'live');
    await page.close();
  });

  it("a wallboard whose saved position is past the log's end (Redis lost its data) goes live from the log's end", async () => {
    // The tab's saved state names an event a minute ahead of the log: the upgrade would refuse it
    // (409, a failed socket to the page, for as long as no later event came); the ticket route
    // says so with the log's last position, and the feed opens from there.
    const page = await newPage();
    const ahead = `${Date.now() + 60_000}-0`;
    await page.addInitScript(
      ([ws, position]) => {
        sessionStorage.setItem(
          `switchboard.wallboard.state.${ws}`,
          JSON.stringify({ position, since: Date.now() - 60_000, samples: [], assignments: [] }),
        );
      },
      [WS, ahead] as const,
    );
    const tickets: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/ws-tickets')) tickets.push(r.postData() ?? '');
    });
    await signIn(page, '/', keys.supervisor);
    await textOf(page, '#live', 'live');
    expect(tickets[0]).toBe(JSON.stringify({ after: ahead }));
    await page.close();
  });

  it('a live feed whose every socket is closed at once is tried ever less often', async () => {
    // Each socket to the live route is accepted and closed right after, by the browser's own stand-in
    // (nothing reaches the server): the page backs off 0.5, 1, 2 s, as no message ever came.
    const page = await newPage();
    const opened: number[] = [];
    await page.routeWebSocket(/\/events\/live/, (ws) => {
      opened.push(Date.now());
      // Open first (the page sees it open), then closed with nothing sent.
      setTimeout(() => void ws.close(), 50);
    });
    await signIn(page, '/', keys.supervisor);
    await waitFor('a first socket', () => opened.length > 0);
    await page.waitForTimeout(2_300);
    // At 0, 0.5 and 1.5 s, the next at 3.5 s: three at most (every 0.5 s, before: five).
    expect(opened.length).toBeLessThanOrEqual(3);
    expect(opened.length).toBeGreaterThanOrEqual(2);
    await page.close();
  });

  it('signed out while its live feed waits for a ticket, the wallboard opens no feed when the ticket comes', async () => {
    // The ticket is held until the page is signed out, as a slow or restarting instance holds it.
    const page = await newPage();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let asked = 0;
    await page.route('**/ws-tickets', async (route) => {
      asked++;
      await held;
      await route.continue();
    });
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await signIn(page, '/', keys.supervisor);
    await waitFor('the page to ask for a ticket', () => asked > 0);
    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])');
    release();
    await page.waitForTimeout(1500);
    expect(sockets).toEqual([]);
    await textOf(page, '#live', 'signed out');
    await page.close();
  });

  it("a proxy's HTML error page is shown as words, never as raw markup", async () => {
    // HAProxy's own answer when no API instance is up (as during a restart behind it).
    const page = await newPage();
    await page.route('**/stats', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'text/html',
        body: '<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n',
      }),
    );
    await signIn(page, '/', keys.supervisor);
    await textOf(page, '#banner', /No server is available to handle this request/);
    const text = (await page.textContent('#banner'))!;
    expect(text).not.toMatch(/[<>]/);
    expect(text).toMatch(/503 Service Unavailable/);
    await page.close();
  });

  it("signed in to another workspace, the wallboard shows none of the last one's figures", async () => {
    const page = await newPage();
    await signIn(page, '/', keys.supervisor);
    await textOf(page, '#tile-queued .value', /^\d+$/);
    await textOf(page, '#tile-away .value', '1');
    // The other workspace's Switchboard is away: nothing of it can be read.
    await page.route('**/v1/workspaces/elsewhere/**', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/problem+json',
        body: JSON.stringify({
          type: '/problems/redis-unavailable',
          title: 'Redis unavailable',
          status: 503,
          detail: 'Redis is unreachable',
        }),
      }),
    );
    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])');
    await page.fill('#signin-ws', 'elsewhere');
    await page.fill('#signin-key', keys.supervisor);
    await page.click('#signin button[type=submit]');
    await textOf(page, '#ws-name', 'elsewhere');
    await textOf(page, '#banner', /Redis is unreachable/);
    await page.waitForTimeout(1500); // the board redraws once a second
    expect(await page.textContent('#tile-queued .value')).toBe('–');
    expect(await page.textContent('#tile-away .value')).toBe('–');
    expect(await page.textContent('#tile-assignments .value')).toBe('–');
    expect(await page.evaluate(() => document.querySelectorAll('#queues tbody tr').length)).toBe(0);
    await page.close();
  });

  it('after the instance restarts, the wallboard resumes from its last event: what happened meanwhile, nothing twice', async () => {
    await stopWithin(sb, 20_000);
    await textOf(wallboard, '#live', 'reconnecting');
    // Meanwhile another instance serves: Cy comes and takes bill-1, and a contact is queued.
    const other = await start(0);
    try {
      expect(
        (await call(other.url!, keys.admin, 'POST', '/agents/cy/state', { state: 'available' })).status,
      ).toBe(200);
      expect(
        (
          await call(other.url!, keys.integration, 'POST', '/contacts', {
            id: 'meanwhile',
            skills: ['Support'],
          })
        ).status,
      ).toBe(201);
      await waitFor('bill-1 offered to cy', async () => {
        const r = await call(other.url!, keys.admin, 'GET', '/contacts/bill-1');
        return r.body.state === 'offered';
      });
    } finally {
      await stopWithin(other, 20_000);
    }
    sb = await start(port);
    await textOf(wallboard, '#live', 'live', 15_000);
    await attr(wallboard, '#feed li[data-contact="bill-1"][data-agent="cy"]', 'data-status', 'offered');
    await textOf(wallboard, '#queues tr[data-queue="voice|Support"] .waiting', '4');
    await textOf(wallboard, '#tile-queued .value', '5');
    const feed = await wallboard.evaluate(() =>
      [...document.querySelectorAll('#feed li')].map(
        (li) => `${li.getAttribute('data-contact')}>${li.getAttribute('data-agent')}`,
      ),
    );
    expect(feed).toEqual(['bill-1>cy', 'bill-2>ann', 'bill-1>ann']);
    // A reload resumes too: the same feed, from the tab's saved position.
    await wallboard.reload();
    await textOf(wallboard, '#live', 'live');
    await attr(wallboard, '#feed li[data-contact="bill-1"][data-agent="cy"]', 'data-status', 'offered');
    expect(await wallboard.evaluate(() => document.querySelectorAll('#feed li').length)).toBe(3);
    await shot(wallboard, 'wallboard-after-restart');
  });
});
