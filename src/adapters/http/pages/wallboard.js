// The wallboard: GET /stats (polled, and soon after each event) for every figure, the queues'
// longest waits and agents by state per queue included (one read whatever the number of agents),
// and the live feed for the assignments. Where it is in the feed, the recent assignments and the
// chart's samples are kept for the tab, so a reload, a dropped socket or a restarted instance
// resume from the last event received.
import {
  apiClient,
  authMode,
  clock,
  duration,
  explain,
  h,
  hoursMinutes,
  liveFeed,
  serverNow,
  session,
  setAttr,
  setHidden,
  setText,
  showLive,
  showProblems,
  showSignedIn,
  showSignInForm,
  signInForm,
  skillText,
  soon,
  statusProblem,
  watchStatus,
} from './common.js';

const store = session('wallboard');
const READERS = ['admin', 'integration', 'supervisor', 'auditor'];
const LIVE_TYPES = [
  'ContactQueued',
  'AssignmentMade',
  'AssignmentAccepted',
  'AssignmentRejected',
  'AssignmentExpired',
  'ContactAbandoned',
  'ContactExpired',
  'ContactCompleted',
  'ContactTransferred',
  'ContactStepped',
  'ContactsForgotten',
  'AgentRegistered',
  'AgentUpdated',
  'AgentRemoved',
  'AgentStateChanged',
  'WrapUpStarted',
  'WrapUpEnded',
];
const STATES = ['available', 'reserved', 'busy', 'wrapup', 'away', 'offline'];
/** The charts' span, and how far back a first visit replays the feed (the recent assignments). */
const CHART_MS = 10 * 60_000;
const REPLAY_MS = 5 * 60_000;
/** A saved position older than this is not resumed: the replay would be long. */
const RESUME_MAX_MS = 30 * 60_000;
const FEED_MAX = 30;
/** The per-queue table's rows at most. */
const QUEUES_SHOWN = 60;
/**
 * The charts are drawn again when a read of /stats brings other figures than the last; with the
 * same ones (an idle workspace), once this often, so that their 10 minutes' window moves on in
 * steps of a sixtieth of its width instead of a few pixels after each read (every 2 s).
 */
const CHART_STEP_MS = 10_000;

let api = null;
let feed = null;
let stats = null;
let statsAt = 0;
/** No read of /stats before this (Date.now()): a 429's Retry-After, waited out. */
let statsHeldUntil = 0;
/**
 * Where a first visit starts the feed (ms, Switchboard's clock). The times the wallboard compares
 * with Switchboard's (the replay's start, a saved position's age, the charts' samples and axis,
 * the clock shown beside the feed's times) are serverNow()'s: right on a computer whose clock is
 * wrong, where the browser's would replay nothing, or too much.
 */
let since = serverNow();
/** [time (s), waiting, longest wait (s)] per poll, for the charts. */
let samples = [];
let assignments = [];
const problems = { auth: null, status: null, stats: null, live: null };
let charts = null;
/** When the charts were last given their samples (serverNow()). */
let chartsDrawnAt = 0;
const timers = [];

const $ = (id) => document.getElementById(id);

const updateBanner = () => showProblems(problems);

// ---- sign-in -------------------------------------------------------------------------------

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.get('ws')) store.set('ws', params.get('ws'));
  signInForm(store, signIn, () => {
    stop();
    showSignin('');
  });
  timers.push(
    setInterval(() => {
      setText($('clock'), clock(serverNow()));
      if (api) render();
    }, 1000),
  );
  watchStatus(onStatus);

  const ws = store.get('ws') ?? 'default';
  const key = store.get('key');
  if (key || (await authMode()) === 'off') signIn(ws, key ?? '');
  else showSignin('');
}

function showSignin(message) {
  problems.auth = null;
  updateBanner();
  showSignInForm('board', store.get('ws') ?? 'default', message);
}

async function signIn(ws, key) {
  const client = apiClient(ws, key);
  $('signin-message').textContent = '';
  try {
    const me = (await client.get('/keys/me')).data;
    if (!READERS.includes(me.role)) {
      showSignin(
        `This is a key of role ${me.role}: the wallboard needs a supervisor, admin, auditor or integration key${me.role === 'agent' ? ' (agents use the agent desktop, /agent)' : ''}.`,
      );
      return;
    }
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      store.set('key', null);
      showSignin(explain(err));
      return;
    }
    // Redis or Switchboard away: keep the key and show the board; the banner says why it is empty.
    problems.stats = explain(err);
    updateBanner();
  }
  store.set('ws', ws);
  if (key) store.set('key', key);
  start(client);
}

function refused(err) {
  store.set('key', null);
  stop();
  showSignin(explain(err, 'The wallboard needs a supervisor or admin key.'));
}

// ---- running -------------------------------------------------------------------------------

function start(client) {
  api = client;
  showSignedIn('board');
  $('ws-name').textContent = client.ws;
  clearFigures();
  statsHeldUntil = 0;
  restore();
  charts ??= makeCharts();
  updateCharts();
  renderFeed();

  timers.push(setInterval(refreshStats, 2000), setInterval(save, 2000));
  refreshStats();
  openFeed(client);
}

/**
 * The live feed, from the tab's last event, or else replaying the events since `since`. A time is
 * no event: past the log's last one (nothing happened in the replay window, or this clock is ahead
 * of Redis's) the feed refuses it (409, which a browser sees as a failed socket, again and again),
 * so the replay starts there only when an event follows it; with none, there is nothing to replay
 * and the feed starts at the log's end.
 */
async function openFeed(client) {
  let after = store.getJson(`state.${client.ws}`)?.position;
  if (after === undefined || after === null) {
    after = `${since}-0`;
    try {
      const page = (await client.get(`/events?after=${after}&limit=1`)).data;
      if (page.events.length === 0) after = undefined;
    } catch (err) {
      // A time past the log's last event (409 position-ahead): nothing to replay either.
      if (err.status === 409) after = undefined;
      // Else unanswered: the feed tries the time, and says what it meets.
    }
  }
  if (api !== client) return; // signed out meanwhile
  feed = liveFeed(api, {
    query: { type: LIVE_TYPES.join(',') },
    after,
    onEvent,
    onStatus: onLive,
  });
}

function stop() {
  feed?.stop();
  feed = null;
  api = null;
  for (const t of timers.splice(1)) clearInterval(t);
}

/** The tab's saved state of this workspace, unless it is too old to resume from. */
function restore() {
  const saved = store.getJson(`state.${api.ws}`);
  const savedAt = Number(String(saved?.position ?? saved?.since ?? '0').split('-')[0]);
  if (saved && serverNow() - savedAt < RESUME_MAX_MS) {
    since = saved.since;
    samples = saved.samples ?? [];
    assignments = saved.assignments ?? [];
  } else {
    store.setJson(`state.${api.ws}`, null);
    since = serverNow() - REPLAY_MS;
    samples = [];
    assignments = [];
  }
}

function save() {
  if (!api || !feed) return;
  store.setJson(`state.${api.ws}`, { position: feed.position, since, samples, assignments });
}
addEventListener('pagehide', save);

function onLive(state, detail) {
  if (state === 'refused') return refused(detail);
  problems.live = showLive(state, detail, problems.live);
  updateBanner();
}

function onStatus(s) {
  problems.status = statusProblem(s, 'The figures are the last known; the wallboard resumes by itself.');
  updateBanner();
}

const statsSoon = soon(() => refreshStats(), 150);
function onEvent(e) {
  apply(e);
  statsSoon();
}

function apply(e) {
  const d = e.data ?? {};
  switch (e.type) {
    case 'AssignmentMade':
      assignments.unshift({
        contactId: d.contactId,
        agentId: d.agentId,
        skills: d.skills ?? [],
        channel: d.channel ?? 'voice',
        waitedMs: d.waitedMs,
        at: e.at,
        status: d.offer ? 'offered' : 'assigned',
      });
      assignments.length = Math.min(assignments.length, FEED_MAX);
      renderFeed();
      break;
    case 'AssignmentAccepted':
      mark(d.contactId, d.agentId, 'accepted');
      break;
    // An offer the agent said no to (`reason: rejected`), or withdrawn as the agent went away or
    // offline (`presence`) or was removed (`removed`): the agent rejected nothing then.
    case 'AssignmentRejected':
      mark(
        d.contactId,
        d.agentId,
        d.reason === 'presence' || d.reason === 'removed' ? 'withdrawn' : 'rejected',
      );
      break;
    case 'AssignmentExpired':
      mark(d.contactId, d.agentId, 'expired');
      break;
    case 'ContactCompleted':
      mark(d.contactId, d.agentId, 'completed');
      break;
    case 'ContactTransferred':
      mark(d.contactId, d.fromAgentId, 'transferred');
      break;
    // An offer withdrawn as its contact left (no AssignmentRejected follows): `agentId` names the
    // agent it was offered to. Without one the contact left the queue, and no offer was open.
    case 'ContactAbandoned':
    case 'ContactExpired':
      if (d.agentId !== undefined)
        mark(d.contactId, d.agentId, e.type === 'ContactAbandoned' ? 'abandoned' : 'timed out');
      break;
  }
}

function mark(contactId, agentId, status) {
  const a = assignments.find(
    (x) => x.contactId === contactId && (agentId === undefined || x.agentId === agentId),
  );
  if (!a) return;
  a.status = status;
  renderFeed();
}

async function refreshStats() {
  if (!api || Date.now() < statsHeldUntil) return;
  const client = api;
  try {
    const read = (await client.get('/stats')).data;
    if (client !== api) return; // signed out, or into another workspace, meanwhile
    stats = read;
    statsAt = Date.now();
    problems.stats = null;
    sample();
    render();
  } catch (err) {
    if (client !== api) return;
    if (err.status === 401 || err.status === 403) return refused(err);
    problems.stats = explain(err);
    if (err.status === 429) {
      // Rate limited: no read (polled, or after an event) until its Retry-After has passed, then one.
      const wait = err.retryAfterMs ?? 1000;
      statsHeldUntil = Date.now() + wait;
      setTimeout(() => {
        if (api !== client) return;
        statsHeldUntil = 0;
        refreshStats();
      }, wait);
      problems.stats = `${explain(err)} The figures are the last known until then.`;
    }
  }
  updateBanner();
}

/** No figure until this workspace's first /stats: none of the last one's shown under its name. */
function clearFigures() {
  stats = null;
  statsAt = 0;
  for (const tile of document.querySelectorAll('.tiles .tile')) setTile(tile.id, '–');
  $('tile-sl').hidden = true;
  $('updated').textContent = '';
  $('queues').tBodies[0].replaceChildren();
  $('queues-empty').hidden = true;
  $('queues-more').hidden = true;
}

// ---- drawing -------------------------------------------------------------------------------

/** A tile's figure and level; like every figure of the board, written only when it changes. */
function setTile(id, value, level) {
  const tile = $(id);
  setText(tile.querySelector('.value'), value);
  tile.classList.toggle('warn', level === 'warn');
  tile.classList.toggle('alert', level === 'alert');
}

/** The longest wait now: the one /stats gave, grown by the time since it was read. */
function longestNow() {
  if (!stats || stats.queued === 0) return 0;
  return stats.longestWaitMs + (Date.now() - statsAt);
}

function render() {
  if (!stats) return;
  const now = Date.now();
  const longest = longestNow();
  setTile('tile-queued', stats.queued, stats.queued > 0 ? 'warn' : undefined);
  setTile(
    'tile-longest',
    duration(longest),
    longest > 60_000 ? 'alert' : longest > 20_000 ? 'warn' : undefined,
  );
  for (const s of ['available', 'reserved', 'busy', 'wrapup', 'away'])
    setTile(`tile-${s}`, stats.agentsByState?.[s] ?? 0);
  for (const s of ['assignments', 'completed', 'abandoned', 'expired']) setTile(`tile-${s}`, stats[s] ?? 0);
  // Service level over the last minutes, where this Switchboard reports it (GET /stats `window`).
  const win = stats.window;
  setHidden($('tile-sl'), !win);
  if (win) {
    const within = `${Math.round(win.serviceLevelMs / 1000)} s`;
    setText($('tile-sl-label'), `SL ≤ ${within}`);
    setAttr(
      $('tile-sl'),
      'title',
      `Service level: the share of the last ${Math.round(win.ms / 60_000)} minutes' assignments made within ${within} of arrival`,
    );
    const sl = win.serviceLevel;
    setTile(
      'tile-sl',
      percent(sl),
      sl === null ? undefined : sl < 0.5 ? 'alert' : sl < 0.8 ? 'warn' : undefined,
    );
  }
  setText($('updated'), `figures at ${clock(statsAt + serverNow() - Date.now())}`);

  // Per queue (those with contacts waiting or decisions in the last minutes), as /stats gives them:
  // the longest wait grown by the time since the read, and the agents who may take its contacts.
  // At most QUEUES_SHOWN rows, in the order of their names: with more queues, those with contacts
  // waiting longest are the ones shown (a queue with a contact waiting never hidden behind one with
  // only decisions), and a line says how many are not.
  const age = now - statsAt;
  const all = stats.queues ?? [];
  const rank = (q) =>
    (q.queued ?? 0) > 0 ? (typeof q.longestWaitMs === 'number' ? q.longestWaitMs : -1) : -2;
  const shown =
    all.length > QUEUES_SHOWN ? [...all].sort((a, b) => rank(b) - rank(a)).slice(0, QUEUES_SHOWN) : all;
  const more = all.length - shown.length;
  setHidden($('queues-more'), more === 0);
  setText(
    $('queues-more'),
    `${more} more queue${more === 1 ? '' : 's'} not shown: those waiting longest are.`,
  );
  const list = [...shown].sort((a, b) => (`${a.channel}|${a.skills}` < `${b.channel}|${b.skills}` ? -1 : 1));
  const rows = list.map((q) => ({ key: `${q.channel}|${q.skills}`, cells: queueCells(q, age) }));
  // The same queues in the same order: their cells written where they changed (the longest waits,
  // each second while a contact waits), the rows kept. Other queues: the rows made again.
  const body = $('queues').tBodies[0];
  const kept = body.rows;
  if (kept.length === rows.length && rows.every((r, i) => kept[i].dataset.queue === r.key)) {
    rows.forEach((r, i) => {
      r.cells.forEach((c, j) => {
        const td = kept[i].cells[j];
        setText(td, c.text);
        setAttr(td, 'class', c.class);
        setAttr(td, 'title', c.title);
      });
    });
  } else {
    body.replaceChildren(
      ...rows.map((r) =>
        h(
          'tr',
          { 'data-queue': r.key },
          r.cells.map((c) => h('td', { class: c.class, title: c.title, 'data-state': c.state }, c.text)),
        ),
      ),
    );
  }
  setHidden($('queues-empty'), rows.length > 0);
}

/**
 * A queue's row of the table, cell by cell (text, class, title): its longest wait grown by the
 * time since the read (`age`), and the agents who may take its contacts.
 */
function queueCells(q, age) {
  const depth = q.queued ?? 0;
  const known = typeof q.longestWaitMs === 'number';
  const wait = depth > 0 && known ? q.longestWaitMs + age : 0;
  const by = q.agents ?? {};
  return [
    { text: q.channel, class: null },
    { text: q.skills.split(',').map(skillText).join(' + '), class: 'queue' },
    { text: depth, class: depth > 0 ? 'hot waiting' : 'zero waiting' },
    {
      text: depth > 0 ? (known ? duration(wait) : '…') : '–',
      class: depth > 0 ? 'wait' : 'zero wait',
      title: depth > 0 && !known ? 'behind 500 older contacts of other queues' : null,
    },
    { text: percent(q.serviceLevel), class: `sl${q.serviceLevel == null ? ' zero' : ''}` },
    ...STATES.map((s) => ({ text: by[s] ?? 0, class: by[s] ? `st-${s}` : 'zero', state: s })),
  ];
}

/** A share (0..1) as a whole percentage; – when there is none. */
const percent = (share) => (share === null || share === undefined ? '–' : `${Math.round(share * 100)}%`);

function renderFeed() {
  const items = assignments.map((a) =>
    h(
      'li',
      { 'data-contact': a.contactId, 'data-agent': a.agentId, 'data-status': a.status },
      h('span', { class: 'dim' }, clock(a.at)),
      h(
        'span',
        { class: 'what' },
        `${a.contactId} → ${a.agentId}`,
        h(
          'span',
          { class: 'dim' },
          ` · ${a.channel} · ${a.skills.map(skillText).join(' + ')} · waited ${duration(a.waitedMs)}`,
        ),
      ),
      h('span', { class: `tag ${tagClass(a.status)}` }, a.status),
    ),
  );
  $('feed').replaceChildren(...items);
  $('feed-empty').hidden = items.length > 0;
}

const tagClass = (status) =>
  ({
    offered: 'st-reserved',
    assigned: 'st-busy',
    accepted: 'st-busy',
    completed: 'st-available',
    rejected: 'st-wrapup',
    expired: 'st-wrapup',
    withdrawn: 'st-away',
    transferred: 'st-wrapup',
    abandoned: 'st-away',
    'timed out': 'st-away',
  })[status] ?? 'dim';

function sample() {
  const t = serverNow() / 1000;
  const lastT = samples.length ? samples[samples.length - 1][0] : 0;
  if (t - lastT < 1) return;
  const last = samples[samples.length - 1];
  const next = [t, stats.queued, Math.round(stats.longestWaitMs / 100) / 10];
  samples.push(next);
  while (samples.length && samples[0][0] < t - CHART_MS / 1000) samples.shift();
  const changed = !last || last[1] !== next[1] || last[2] !== next[2];
  if (changed || serverNow() - chartsDrawnAt >= CHART_STEP_MS) updateCharts();
}

function makeCharts() {
  if (typeof uPlot !== 'function') return null; // the vendor script did not load: numbers only
  const grid = { stroke: '#2a3644' };
  const hhmm = (_u, splits) => splits.map((t) => hoursMinutes(t * 1000));
  const x = { stroke: '#8b98a8', grid, ticks: grid, values: hhmm };
  const y = { stroke: '#8b98a8', grid, ticks: grid };
  const make = (el, label, color) =>
    new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: 160,
        legend: { show: false },
        cursor: { show: false },
        scales: {
          x: { time: true, range: () => [serverNow() / 1000 - CHART_MS / 1000, serverNow() / 1000] },
          y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil(max * 1.1))] },
        },
        axes: [x, y],
        series: [{}, { label, stroke: color, width: 2, fill: `${color}33` }],
      },
      [[], []],
      el,
    );
  const c = {
    depth: make($('chart-depth'), 'waiting', '#d29922'),
    wait: make($('chart-wait'), 'longest wait (s)', '#f85149'),
  };
  addEventListener('resize', () => {
    for (const [name, chart] of Object.entries(c))
      chart.setSize({ width: Math.max(200, $(`chart-${name}`).clientWidth), height: 160 });
  });
  return c;
}

function updateCharts() {
  if (!charts) return;
  chartsDrawnAt = serverNow();
  const xs = samples.map((s) => s[0]);
  charts.depth.setData([xs, samples.map((s) => s[1])]);
  charts.wait.setData([xs, samples.map((s) => s[2])]);
}

main();
