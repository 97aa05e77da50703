// The agent desktop: one agent's state, its offers and contacts, and what happened to them. It
// listens to its own live feed (an agent key's feed carries its agent's events only) and reads
// its agent document and contacts again after each event; every button is one API command.
import {
  apiClient,
  authMode,
  clock,
  duration,
  explain,
  h,
  liveFeed,
  serverNow,
  session,
  setAttr,
  setClass,
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

const store = session('agent');
let api = null;
let feed = null;
let agentId = null;
let agent = null;
let contacts = [];
const log = [];
/**
 * `gone`: the agent is not registered (a read answered 404); cleared by the next read that finds it.
 * `read`: the documents' last read failed (rate limited, 429; Switchboard or Redis away, a 5xx or no
 * answer): what is shown is the last known. Cleared by the next read that succeeds.
 */
const problems = { status: null, gone: null, action: null, read: null, live: null };
const timers = [];

const $ = (id) => document.getElementById(id);

const updateBanner = () => showProblems(problems);

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.get('ws')) store.set('ws', params.get('ws'));
  if (params.get('agent')) store.set('agent', params.get('agent'));
  signInForm(
    store,
    (ws, key) => signIn(ws, key, $('signin-agent').value.trim()),
    () => {
      stop();
      showSignin('');
    },
  );
  for (const state of ['available', 'away', 'offline'])
    $(`set-${state}`).addEventListener('click', () => setState(state));
  $('wrapup-done').addEventListener('click', () => setState('available'));
  setInterval(tick, 1000);
  watchStatus((s) => {
    problems.status = statusProblem(s, 'Wait a moment.');
    updateBanner();
  });

  const key = store.get('key');
  if (key || ((await authMode()) === 'off' && store.get('agent')))
    signIn(store.get('ws') ?? 'default', key ?? '', store.get('agent') ?? '');
  else showSignin('');
}

function showSignin(message) {
  $('signin-agent').value = store.get('agent') ?? '';
  showSignInForm('desk', store.get('ws') ?? 'default', message);
}

/** A sign-in tried again: Switchboard or Redis did not answer the last one. */
let again = null;
const AGAIN_MS = 2000;

async function signIn(ws, key, typedAgent) {
  clearTimeout(again);
  again = null;
  const client = apiClient(ws, key);
  $('signin-message').textContent = '';
  /** The agent to act for, once the key's own is known (a 404 before that names no agent). */
  let id = null;
  try {
    const me = (await client.get('/keys/me')).data;
    // Roles that may act for no agent (docs/SECURITY.md): every button would be a 403.
    if (me.role === 'auditor' || me.role === 'integration') {
      store.set('key', null);
      showSignin(
        `This is a key of role ${me.role}, which cannot act for an agent (set its state, accept, reject, complete): sign in with the agent's own key (role agent), or an admin key.`,
      );
      return;
    }
    id = me.agentId ?? typedAgent;
    if (!id) {
      showSignin(`This is a key of role ${me.role}, which names no agent: type the agent id to act for.`);
      return;
    }
    agent = (await client.get(`/agents/${encodeURIComponent(id)}`)).data;
    agentId = id;
  } catch (err) {
    if (err.status === 401 || err.status === 403) store.set('key', null);
    showSignin(
      err.status === 404 && id
        ? `No agent "${id}" in workspace "${ws}".`
        : explain(err, 'Sign in with your agent key.'),
    );
    // Switchboard restarting or Redis away: the same sign-in again until it answers (a sign-in
    // typed meanwhile replaces it). Rate limited (429): no sooner than the answer's Retry-After.
    if (err.status === 0 || err.status === 429 || err.status >= 500) {
      const wait = err.status === 429 ? Math.max(AGAIN_MS, err.retryAfterMs ?? 0) : AGAIN_MS;
      if (err.status === 429)
        $('signin-message').textContent += ` Signing in again in ${Math.ceil(wait / 1000)} s.`;
      again = setTimeout(() => signIn(ws, key, typedAgent), wait);
    }
    return;
  }
  store.set('ws', ws);
  store.set('agent', agentId);
  if (key) store.set('key', key);
  start(client);
}

function start(client) {
  api = client;
  // A desk signed in again (perhaps as another agent) shows nothing of the last session.
  contacts = [];
  states = { sending: null, next: null };
  log.length = 0;
  $('log').replaceChildren();
  $('contacts').replaceChildren();
  problems.action = null;
  problems.gone = null;
  problems.read = null;
  release();
  updateBanner();
  showSignedIn('desk');
  const saved = store.get(`position.${api.ws}.${agentId}`);
  feed = liveFeed(api, {
    query: { agent: agentId },
    after: saved ?? undefined,
    onEvent,
    onStatus: onLive,
  });
  timers.push(setInterval(refresh, 5000));
  render();
  refresh();
}

function stop() {
  feed?.stop();
  feed = null;
  api = null;
  for (const t of timers.splice(0)) clearInterval(t);
}

function onLive(state, detail) {
  if (state === 'refused') {
    store.set('key', null);
    stop();
    showSignin(explain(detail));
    return;
  }
  problems.live = showLive(state, detail, problems.live);
  updateBanner();
}

const refreshSoon = soon(() => refresh(), 100);
function onEvent(e) {
  if (api) store.set(`position.${api.ws}.${agentId}`, e.position);
  addLog(e);
  refreshSoon();
}

/** Reads of the documents started, and the last one shown: an older read answering late is dropped. */
let readsStarted = 0;
let readShown = 0;

/**
 * No read of the documents (the 5 s poll, after an event, after a command) before this
 * (Date.now()): a 429's Retry-After, waited out; then one read. Switchboard counts a key's requests
 * together, so a command's 429 holds the reads too.
 */
let heldUntil = 0;
let heldTimer = null;

/** Holds the reads for a 429's Retry-After (`ms`), and reads once it has passed; returns its end. */
function hold(client, ms) {
  const wait = ms ?? 1000;
  const until = Date.now() + wait;
  if (until <= heldUntil) return heldUntil;
  clearTimeout(heldTimer);
  heldUntil = until;
  heldTimer = setTimeout(() => {
    heldTimer = null;
    heldUntil = 0;
    if (client !== api) return;
    // The command refused meanwhile may be sent again: the banner says so (once, not each second).
    if (refusedAction !== null) {
      problems.action = `${refusedAction} was not done: rate limited (429). Try again now.`;
      updateBanner();
    }
    refresh();
  }, wait);
  return until;
}

/** No hold: a desk signed in again (perhaps with another key) starts with none. */
function release() {
  clearTimeout(heldTimer);
  heldTimer = null;
  heldUntil = 0;
  refusedAction = null;
}

/** A 429's wait in words: `2 s (after 17:20:05)`, the time by Switchboard's clock, like the activity's. */
const waitText = (until) =>
  `${Math.max(1, Math.ceil((until - Date.now()) / 1000))} s (after ${clock(serverNow() + (until - Date.now()))})`;

async function refresh() {
  if (!api || Date.now() < heldUntil) return;
  const client = api;
  const read = ++readsStarted;
  try {
    const a = (await client.get(`/agents/${encodeURIComponent(agentId)}`)).data;
    const docs = await Promise.all(
      (a.activeContacts ?? []).map((id) =>
        client.get(`/contacts/${encodeURIComponent(id)}`).then(
          (r) => r.data,
          // Gone meanwhile (completed, withdrawn; 404), or no longer this agent's (an agent key is
          // refused another's contact, 403): no card. Any other failure (429, a 5xx, no answer)
          // fails the read as a whole, and the cards shown stay as they are.
          (err) => {
            if (err.status === 404 || err.status === 403) return null;
            throw err;
          },
        ),
      ),
    );
    if (client !== api || read < readShown) return;
    readShown = read;
    agent = a;
    contacts = docs.filter((c) => c !== null);
    // Registered again (or the 404 was a moment's), the rate limit waited out, or Switchboard and
    // Redis back: the desk says so without a click.
    if (problems.gone !== null || problems.read !== null) {
      problems.gone = null;
      problems.read = null;
      updateBanner();
    }
    render();
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      store.set('key', null);
      stop();
      showSignin(explain(err));
    } else if (err.status === 404 && client === api && read >= readShown) {
      readShown = read;
      problems.gone = `Agent "${agentId}" is no longer registered in this workspace.`;
      updateBanner();
    } else if (err.status === 429 && client === api) {
      // What is shown stays, as the last known, until the read after the Retry-After.
      const until = hold(client, err.retryAfterMs);
      problems.read = `Rate limited (429): Switchboard asks this key to wait; the desk reads again in ${waitText(until)} and shows the last known until then.`;
      updateBanner();
    } else if (client === api && read > readShown) {
      // Switchboard stopping or restarting, Redis away, a proxy with no instance behind it: what is
      // shown stays, as the last known, and the 5 s poll (or the next event) reads again.
      problems.read = `The desk could not read the agent and its contacts: ${readFailure(err)}. What is shown is the last known; the desk reads again every 5 s.`;
      updateBanner();
    }
  }
}

/** A failed read in short: the problem's title and status, or that nothing answered. */
const readFailure = (err) =>
  err.status === 0 ? 'Switchboard did not answer' : `${err.problem?.title ?? 'Error'} (${err.status})`;

/** The commands on their way (path and body): a second click meanwhile sends nothing. */
const inFlight = new Set();
/** The last command refused as rate limited (429), in words ("Accept c1"); null: none. */
let refusedAction = null;

/** One command; its problem, if any, in the banner; then the documents read again. */
async function act(what, path, body) {
  if (!api) return;
  const client = api;
  const key = `${path} ${JSON.stringify(body ?? null)}`;
  if (inFlight.has(key)) return;
  inFlight.add(key);
  problems.action = null;
  refusedAction = null;
  updateBanner();
  try {
    const r = await client.post(path, body);
    if (r.status === 202 && client === api) addLine(`${what}: sent, the outcome follows`);
  } catch (err) {
    if (client === api && err.status === 429) {
      // Not done (a 429 changes nothing), and not sent again by itself (an offer may be gone by
      // then): the agent is told when Switchboard takes commands from this key again.
      refusedAction = what;
      const until = hold(client, err.retryAfterMs);
      problems.action = `${what} was not done: rate limited (429). Try again in ${waitText(until)}.`;
      updateBanner();
    } else if (client === api && (err.status === 0 || err.status >= 500)) {
      // No answer, or Switchboard or Redis away, after apiClient's own tries (same Idempotency-Key):
      // done or not, nobody knows, and nothing sends it again (an offer may be gone by then).
      problems.action = `${what} may not have been done: ${readFailure(err)}. It is not sent again by itself: try again once Switchboard answers, if the desk still shows it to do.`;
      updateBanner();
    } else if (client === api) {
      problems.action = `${what}: ${explain(err)}`;
      updateBanner();
    }
  } finally {
    inFlight.delete(key);
  }
  refresh();
}

/**
 * The agent's state commands, one after another: the next is sent once the last one has been
 * answered, so they reach Switchboard in the order they were clicked (two sent at once may land
 * in either order: Away then Available could leave the agent away). Clicks meanwhile keep only
 * the last state asked for; one equal to the state on its way asks for nothing more.
 */
let states = { sending: null, next: null };

async function setState(state) {
  if (!api) return;
  // This session's queue (a desk signed in again starts another: start()).
  const q = states;
  if (q.sending !== null) {
    q.next = state === q.sending ? null : state;
    return;
  }
  for (let next = state; next !== null && q === states; next = q.next) {
    q.sending = next;
    q.next = null;
    await act(`Set ${next}`, `/agents/${encodeURIComponent(agentId)}/state`, { state: next });
  }
  q.sending = null;
  q.next = null;
}

const accept = (id) => act(`Accept ${id}`, `/contacts/${encodeURIComponent(id)}/accept`, { agentId });
const reject = (id) => act(`Reject ${id}`, `/contacts/${encodeURIComponent(id)}/reject`, { agentId });
const complete = (id) => act(`Complete ${id}`, `/contacts/${encodeURIComponent(id)}/complete`);

function render() {
  if (!agent) return;
  // The agent's name as last read: renamed while the desk is open, the header follows.
  setText($('agent-name'), agent.name ? `${agent.name} (${agentId})` : agentId);
  const state = agent.state ?? 'offline';
  // Read again every 5 s: only what changed is written.
  setText($('state'), { wrapup: 'wrap-up', reserved: 'offer waiting' }[state] ?? state);
  setClass($('state'), `state-badge st-${state}`);
  setText(
    $('state-detail'),
    state === agent.presence
      ? ''
      : `presence ${agent.presence}, ${agent.activeContacts?.length ?? 0} contact(s)`,
  );
  // The presence in force, to the eye and to a screen reader.
  for (const s of ['available', 'away', 'offline']) {
    $(`set-${s}`).classList.toggle('current', agent.presence === s);
    setAttr($(`set-${s}`), 'aria-pressed', String(agent.presence === s));
  }
  // The wrap-up ended (by its button from the keyboard, or by its time) while its button had the
  // focus: the focus goes to the contacts' heading, where the next offer comes, not to the body.
  const wrapupFocused = $('wrapup').contains(document.activeElement);
  setHidden($('wrapup'), state !== 'wrapup');
  if (wrapupFocused && state !== 'wrapup') $('contacts-heading').focus();
  renderCards();
  setHidden($('no-contact'), contacts.length > 0);
  tick();
}

/**
 * The contacts' cards, each kept in place while its contact keeps its state: only its heading and
 * fields are made again, so its buttons stay under the keyboard's focus and a click in progress
 * as the documents are read again still lands.
 */
function renderCards() {
  const box = $('contacts');
  const old = new Map([...box.children].map((el) => [el.dataset.contact, el]));
  let refocus = null;
  const wanted = contacts.map((c) => {
    const fresh = card(c);
    const kept = old.get(c.id);
    if (!kept) return fresh;
    if (kept.dataset.state !== fresh.dataset.state) {
      // An offer accepted from the keyboard: the focus goes on to its Complete button.
      if (kept.contains(document.activeElement)) refocus = fresh.querySelector('button');
      return fresh;
    }
    // Only what the read changed: the heading compared without its countdown's text (tick()'s).
    for (const tag of ['h3', 'dl']) {
      const shown = kept.querySelector(tag);
      const read = fresh.querySelector(tag);
      const bare = shown.cloneNode(true);
      for (const el of bare.querySelectorAll('.countdown')) el.textContent = '';
      if (!bare.isEqualNode(read)) shown.replaceWith(read);
    }
    return kept;
  });
  // A card under the keyboard's focus that goes (its offer withdrawn or expired, its contact
  // completed): the focus goes on to the card that took its place, else the one before it, else
  // the contacts' heading, and not to the page's body, where a keyboard user would lose their place.
  const cards = [...box.children];
  const gone = cards.findIndex((el) => !wanted.includes(el) && el.contains(document.activeElement));
  if (gone >= 0 && refocus === null) {
    const after = cards.slice(gone + 1).find((el) => wanted.includes(el));
    const before = cards
      .slice(0, gone)
      .reverse()
      .find((el) => wanted.includes(el));
    refocus = (after ?? before)?.querySelector('button') ?? $('contacts-heading');
  }
  for (const el of old.values()) if (!wanted.includes(el)) el.remove();
  wanted.forEach((el, i) => {
    if (box.children[i] !== el) box.insertBefore(el, box.children[i] ?? null);
  });
  refocus?.focus();
}

function card(c) {
  const offered = c.state === 'offered';
  const fields = [
    ['Channel', c.channel],
    ['Skills', (c.skills ?? []).map(skillText).join(' + ')],
    ['Priority', c.priority],
    ['Waited', c.waitedMs !== undefined ? duration(c.waitedMs) : '–'],
    offered ? ['Offered at', clock(c.assignedAt)] : ['Since', clock(c.acceptedAt ?? c.assignedAt)],
  ];
  if (c.attributes && Object.keys(c.attributes).length)
    fields.push(['Attributes', JSON.stringify(c.attributes)]);
  return h(
    'div',
    { class: `card ${c.state}`, 'data-contact': c.id, 'data-state': c.state },
    h(
      'h3',
      {},
      offered ? `Offer: contact ${c.id} ` : `Contact ${c.id} `,
      offered
        ? h('span', { class: 'countdown', 'data-until': c.offerExpiresAt })
        : h('span', { class: 'countdown dim', 'data-from': c.acceptedAt ?? c.assignedAt }),
    ),
    h(
      'dl',
      {},
      fields.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
    h(
      'div',
      { class: 'actions' },
      offered
        ? [
            h(
              'button',
              { class: 'primary', type: 'button', 'data-action': 'accept', onclick: () => accept(c.id) },
              'Accept',
            ),
            h(
              'button',
              { class: 'danger', type: 'button', 'data-action': 'reject', onclick: () => reject(c.id) },
              'Reject',
            ),
          ]
        : c.state === 'assigned'
          ? h(
              'button',
              { class: 'primary', type: 'button', 'data-action': 'complete', onclick: () => complete(c.id) },
              'Complete',
            )
          : null,
    ),
  );
}

/** The countdowns: an offer's time left, a contact's time in hand, the wrap-up's time left. */
function tick() {
  const now = serverNow();
  for (const el of document.querySelectorAll('[data-until]')) {
    const left = Date.parse(el.dataset.until) - now;
    setText(el, left > 0 ? `expires in ${duration(left)}` : 'expiring');
  }
  for (const el of document.querySelectorAll('[data-from]'))
    setText(el, duration(now - Date.parse(el.dataset.from)));
  if (agent?.state === 'wrapup' && agent.wrapUpUntil)
    setText($('wrapup-left'), `${duration(Date.parse(agent.wrapUpUntil) - now)} left`);
}

function describe(e) {
  const d = e.data ?? {};
  switch (e.type) {
    case 'AssignmentMade':
      return d.offer
        ? `Offer of ${d.contactId} (${d.channel}, ${(d.skills ?? []).map(skillText).join(' + ')}), until ${clock(d.offer.expiresAt)}`
        : `Assigned ${d.contactId} (${d.channel})`;
    case 'AssignmentAccepted':
      return `Accepted ${d.contactId}`;
    case 'AssignmentRejected':
      return d.reason === 'rejected'
        ? `Rejected ${d.contactId}`
        : `Offer of ${d.contactId} withdrawn (${d.reason})`;
    case 'AssignmentExpired':
      return `Offer of ${d.contactId} expired: not answered in time`;
    case 'ContactAbandoned':
      return `Offer of ${d.contactId} withdrawn: the customer left`;
    case 'ContactExpired':
      return `Offer of ${d.contactId} withdrawn: it waited its longest`;
    case 'ContactCompleted':
      return `Completed ${d.contactId} after ${duration(d.handledMs)}`;
    case 'ContactTransferred':
      return `Transferred ${d.contactId}`;
    case 'WrapUpStarted':
      return `Wrap-up until ${clock(d.until)}`;
    case 'WrapUpEnded':
      return d.early ? 'Wrap-up ended early' : 'Wrap-up ended';
    case 'AgentStateChanged':
      return `State ${d.from} → ${d.to}`;
    case 'AgentRemoved':
      return 'This agent was removed';
    default:
      return e.type;
  }
}

function addLog(e) {
  log.unshift(h('li', { 'data-type': e.type }, h('span', { class: 'dim' }, `${clock(e.at)} `), describe(e)));
  log.length = Math.min(log.length, 30);
  $('log').replaceChildren(...log);
}

/** A line of the desk's own, at Switchboard's time (serverNow()), like the events' lines. */
function addLine(text) {
  log.unshift(h('li', {}, h('span', { class: 'dim' }, `${clock(serverNow())} `), text));
  log.length = Math.min(log.length, 30);
  $('log').replaceChildren(...log);
}

main();
