// What the wallboard and the agent desktop share: the key kept for the tab, API calls that turn
// problems into errors, the live feed (one-time ticket, resume from the last position), /status,
// and their frame: the sign-in form, the banner and the live badge.

/**
 * An API answer that is not 2xx: its status and problem+json (`type`, `title`, `detail`), and how
 * long it asks to wait before the next request (`retryAfterMs`, from its Retry-After; null: none).
 */
export class ApiError extends Error {
  constructor(status, problem, retryAfterMs = null) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
    this.retryAfterMs = retryAfterMs;
  }
}

/** An answer's Retry-After (seconds, or an HTTP date by Switchboard's clock) in ms; null without one. */
function retryAfterMs(res, problem) {
  const value = res.headers.get('retry-after');
  if (value !== null && value.trim() !== '') {
    const s = Number(value);
    if (Number.isFinite(s) && s >= 0) return s * 1000;
    const at = Date.parse(value);
    if (Number.isFinite(at)) return Math.max(0, at - serverNow());
  }
  const ms = problem?.retryAfterMs;
  return typeof ms === 'number' && ms >= 0 ? ms : null;
}

/** The workspace and key a page signed in with, per tab (sessionStorage), under its own name. */
export function session(page) {
  const k = (name) => `switchboard.${page}.${name}`;
  return {
    get: (name) => sessionStorage.getItem(k(name)),
    set: (name, value) =>
      value === undefined || value === null
        ? sessionStorage.removeItem(k(name))
        : sessionStorage.setItem(k(name), value),
    getJson(name) {
      try {
        const text = sessionStorage.getItem(k(name));
        return text === null ? null : JSON.parse(text);
      } catch {
        return null;
      }
    },
    setJson(name, value) {
      try {
        sessionStorage.setItem(k(name), JSON.stringify(value));
      } catch {
        // Storage full: the page works on, it only resumes from less after a reload.
      }
    },
  };
}

/**
 * Switchboard's clock as this browser's clock plus an offset, learnt from the `Date` header of its
 * answers (whole seconds: the middle of the second is taken, and the offset moves only when it is
 * more than a second off): an offer's time left and a wrap-up's are Switchboard's times, right on
 * a computer whose clock is wrong.
 */
let clockOffset = 0;
export const serverNow = () => Date.now() + clockOffset;

function learnClock(res) {
  const at = Date.parse(res.headers.get('date') ?? '');
  if (!Number.isFinite(at)) return;
  const offset = at + 500 - Date.now();
  if (Math.abs(offset - clockOffset) > 1000) clockOffset = offset;
}

const uuid = () =>
  crypto.randomUUID
    ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

/**
 * The API of one workspace with one key (none with authentication off). A command carries an
 * Idempotency-Key and is sent again with the same key on a 503 (Redis away, instance stopping).
 */
export function apiClient(ws, key) {
  const base = `/v1/workspaces/${encodeURIComponent(ws)}`;
  async function call(method, path, body) {
    const headers = {};
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET') headers['idempotency-key'] = uuid();
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await fetch(base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          cache: 'no-store',
        });
      } catch (err) {
        if (method !== 'GET' && attempt < 3) {
          await sleep(500 * (attempt + 1));
          continue;
        }
        throw new ApiError(0, { title: 'Switchboard unreachable', detail: String(err?.message ?? err) });
      }
      learnClock(res);
      const text = await res.text();
      let data = null;
      try {
        data = text === '' ? null : JSON.parse(text);
      } catch {
        data = { title: res.statusText || 'Error', detail: plainText(text) };
      }
      if (res.ok) return { status: res.status, data };
      if (res.status === 503 && method !== 'GET' && attempt < 3) {
        await sleep(700 * (attempt + 1));
        continue;
      }
      throw new ApiError(res.status, data, retryAfterMs(res, data));
    }
  }
  return {
    ws,
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
  };
}

/**
 * An answer that is no problem+json (a proxy's HTML error page, such as HAProxy's 503 while no
 * instance is up) in a few words: its text without markup, at most 200 characters.
 */
function plainText(body) {
  const doc = new DOMParser().parseFromString(body, 'text/html');
  const words = (doc.body?.textContent ?? '').replace(/\s+/g, ' ').trim();
  return words.length > 200 ? `${words.slice(0, 199)}…` : words || 'no details';
}

/** `fn` once, `ms` after the first of any number of calls made meanwhile. */
export function soon(fn, ms) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The workspace's live feed, opened with a one-time ticket (browsers send no header on a
 * WebSocket) and opened again after any close with `after=` the last event received: a dropped
 * connection, an instance that restarted or a slow-client close lose nothing and repeat nothing.
 * `onStatus(state, detail)`: connecting | live | retrying | refused.
 * The feed's heartbeat (docs/API.md) is no event: it moves the position, and a socket that hears
 * nothing for two of its intervals is on a dead path (a load balancer's address moved, no close
 * will come): it is dropped and opened again like any other close.
 */
export function liveFeed(api, { query = {}, after, onEvent, onStatus }) {
  let last = after ?? null;
  let socket = null;
  let stopped = false;
  let delay = 500;
  let heardAt = Date.now();
  let everyMs = 10_000;
  const watchdog = setInterval(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN || Date.now() - heardAt < 2 * everyMs) return;
    const dead = socket;
    socket = null;
    dead.close();
    retry(`nothing received for ${Math.round((Date.now() - heardAt) / 1000)} s: reconnecting`);
  }, 1000);

  async function open() {
    if (stopped) return;
    onStatus('connecting');
    let ticket;
    try {
      // With the position it will open from: past the log's end (Redis lost its data) the ticket
      // route says so, where the upgrade's refusal would show as a failed socket only.
      ticket = (await api.post('/ws-tickets', last ? { after: last } : undefined)).data.ticket;
    } catch (err) {
      if (stopped) return;
      if (err.status === 401 || err.status === 403) {
        onStatus('refused', err);
        return;
      }
      if (err.status === 409 && err.problem.type === '/problems/position-ahead') {
        // The log ends before this page's last event: it goes on from the log's end.
        last = typeof err.problem.lastPosition === 'string' ? err.problem.lastPosition : null;
        onStatus(
          'retrying',
          "the log ends before this page's last event (did Redis lose its data?): going on from its end",
        );
        return open();
      }
      // Rate limited (429): the next ticket is asked for no sooner than the answer's Retry-After.
      if (err.status === 429) {
        const wait = err.retryAfterMs ?? 1000;
        return retry(`rate limited (429): the next try in ${Math.ceil(wait / 1000)} s`, wait);
      }
      return retry(err.message);
    }
    // Stopped while the ticket was on its way (signed out, the key refused): no socket after stop().
    if (stopped) return;
    const params = new URLSearchParams({ ticket, ...query });
    if (last) params.set('after', last);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(
      `${scheme}://${location.host}/v1/workspaces/${encodeURIComponent(api.ws)}/events/live?${params}`,
    );
    socket = ws;
    ws.onopen = () => {
      if (socket !== ws) return;
      heardAt = Date.now();
      onStatus('live');
    };
    ws.onmessage = (m) => {
      if (socket !== ws) return;
      heardAt = Date.now();
      let e;
      try {
        e = JSON.parse(m.data);
      } catch {
        return;
      }
      // The backoff starts again once the server sent something (Switchboard sends a heartbeat as
      // the feed opens), not on the open: a path that accepts each socket and closes it at once
      // is tried ever less often.
      delay = 500;
      if (e.heartbeat) {
        if (typeof e.heartbeat.after === 'string') last = e.heartbeat.after;
        if (e.heartbeat.everyMs > 0) everyMs = e.heartbeat.everyMs;
        return;
      }
      if (e.position) last = e.position;
      onEvent(e);
    };
    ws.onclose = (c) => {
      if (socket !== ws) return;
      socket = null;
      if (stopped) return;
      if (c.code === 1008) {
        onStatus('refused', new ApiError(401, { detail: c.reason || 'the API key was revoked' }));
        return;
      }
      retry(c.reason || `closed (${c.code})`);
    };
  }

  /** The next open after the backoff's delay, and no sooner than `atLeastMs` (a Retry-After). */
  function retry(why, atLeastMs = 0) {
    if (stopped) return;
    onStatus('retrying', why);
    setTimeout(open, Math.max(delay, atLeastMs));
    delay = Math.min(delay * 2, 5000);
  }

  open();
  return {
    get position() {
      return last;
    },
    stop() {
      stopped = true;
      clearInterval(watchdog);
      socket?.close(1000);
    },
  };
}

/** Polls /status (open, no key, answered from memory): `cb({state, reason, auth})`, or `cb(null)` when nothing answers. */
export function watchStatus(cb, everyMs = 1000) {
  let timer = null;
  async function poll() {
    try {
      const res = await fetch('/status', { cache: 'no-store' });
      learnClock(res);
      cb(res.ok ? await res.json() : null);
    } catch {
      cb(null);
    }
    timer = setTimeout(poll, everyMs);
  }
  poll();
  return () => clearTimeout(timer);
}

/** ms as m:ss, or h:mm:ss from an hour on. */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * A time of day in the browser's language, 24-hour with two-digit hours (00:05:03): `hour12: false`
 * alone leaves the hour cycle to the locale, which gave 24:05:03 for the hour after midnight in
 * en-US on some browsers and 0:05:03 in ja-JP.
 */
const TIME_OF_DAY = { hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' };
export const clock = (at) => new Date(at).toLocaleTimeString([], TIME_OF_DAY);
/** The same to the minute (the charts' axes). */
export const hoursMinutes = (at) =>
  new Date(at).toLocaleTimeString([], { hourCycle: 'h23', hour: '2-digit', minute: '2-digit' });

/** A skill as written ("Billing", {name, level}, {name, minLevel}) in words. */
export function skillText(s) {
  if (typeof s === 'string') return s.replace(/#(\d)$/, ' ≥$1');
  if (s && typeof s === 'object') return `${s.name} ${s.level ?? `≥${s.minLevel}`}`;
  return String(s);
}

/** Builds an element: `h('td', {class: 'n'}, 'text', child)`. Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Number.POSITIVE_INFINITY)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * An element's text, written only when it changes: a page open all day (the wallboard on a TV)
 * redraws only what moved. `String(text)`, as `textContent` would write it.
 */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** An element's attribute (null: none), written only when it changes. */
export function setAttr(el, name, value) {
  if (value === null || value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) el.setAttribute(name, String(value));
}

/** An element's class list as a whole, written only when it changes. */
export function setClass(el, value) {
  if (el.className !== value) el.className = value;
}

/** An element shown or hidden, written only when it changes. */
export function setHidden(el, hidden) {
  if (el.hidden !== hidden) el.hidden = hidden;
}

/** Shows (or hides, with no text) the page's banner: `kind` error | warn | info. */
export function banner(text, kind = 'error') {
  const el = document.getElementById('banner');
  if (!text) {
    setHidden(el, true);
    setText(el, '');
    return;
  }
  setHidden(el, false);
  setClass(el, `banner ${kind}`);
  setText(el, text);
}

/** Words for a refused key, a refused role, an unreachable Redis or Switchboard. */
export function explain(err, needs) {
  const detail = err?.problem?.detail ?? err?.message ?? '';
  if (err?.status === 401) return `The API key was refused (401): ${detail}`;
  if (err?.status === 403) return `This key may not do that (403): ${detail}${needs ? ` ${needs}` : ''}`;
  if (err?.status === 503 && err.problem?.type === '/problems/redis-unavailable')
    return 'Redis is unreachable: Switchboard can neither read nor change anything until it is back.';
  if (err?.status === 429)
    return `Rate limited (429): Switchboard asks this key to wait${err.retryAfterMs ? ` ${Math.ceil(err.retryAfterMs / 1000)} s` : ''} before sending again.`;
  if (err?.status === 0) return `Switchboard is not answering (${detail}); retrying…`;
  return `${err?.problem?.title ?? 'Error'} (${err?.status ?? '?'}): ${detail}`;
}

// ---- what both pages' frames share: sign-in, banner, live badge -------------------------------

const byId = (id) => document.getElementById(id);

/**
 * Shows every problem that is set, a line each, in the order `problems` lists them: a command
 * refused a while ago never hides that Switchboard stopped answering since. A warning when the
 * live feed's is the only one.
 */
export function showProblems(problems) {
  const set = Object.entries(problems).filter(([, text]) => text);
  if (set.length === 0) return banner(null);
  banner(set.map(([, text]) => text).join('\n'), set.every(([what]) => what === 'live') ? 'warn' : 'error');
}

/** The page's problem for a /status reading (watchStatus's `cb`): null while all is well. */
export function statusProblem(s, whilePaused) {
  if (s === null) return 'Switchboard is not answering (restarting?); retrying…';
  if (s.state === 'paused') return `Redis is unreachable: ${s.reason ?? 'paused'}. ${whilePaused}`;
  return null;
}

/** Whether Switchboard asks for keys ('on' or 'off', from /status); 'on' while it does not answer. */
export async function authMode() {
  try {
    return (await (await fetch('/status', { cache: 'no-store' })).json()).auth ?? 'on';
  } catch {
    return 'on';
  }
}

/**
 * Wires the sign-in form (`signIn(ws, key)` on submit) and the sign-out button (the key forgotten,
 * then `signOut()`).
 */
export function signInForm(store, signIn, signOut) {
  byId('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    signIn(byId('signin-ws').value.trim() || 'default', byId('signin-key').value.trim());
  });
  byId('signout').addEventListener('click', () => {
    store.set('key', null);
    signOut();
  });
}

/** The sign-in form in place of the page's element `view`, saying `message`; the live badge off. */
export function showSignInForm(view, ws, message) {
  byId(view).hidden = true;
  byId('signout').hidden = true;
  byId('signin').hidden = false;
  byId('signin-ws').value = ws;
  byId('signin-key').value = '';
  byId('signin-message').textContent = message;
  byId('live').className = 'live off';
  byId('live').textContent = 'signed out';
  byId('signin-key').focus();
}

/** The page's element `view` in place of the sign-in form. */
export function showSignedIn(view) {
  byId('signin').hidden = true;
  byId(view).hidden = false;
  byId('signout').hidden = false;
}

/**
 * The live badge for a state of liveFeed's `onStatus` other than 'refused', and the feed's problem
 * after it: none when live, the interruption while it retries, `problem` as it was while it connects.
 */
export function showLive(state, detail, problem) {
  const el = byId('live');
  if (state === 'live') {
    el.className = 'live on';
    el.textContent = 'live';
    return null;
  }
  el.className = 'live off';
  el.textContent = state === 'retrying' ? 'reconnecting' : 'connecting';
  return state === 'retrying' ? `Live feed interrupted (${detail}); reconnecting…` : problem;
}
