--[[
  Applies the next commands of a workspace's command stream, in stream order, exactly once:
  the effects, the facts, the outcomes and the checkpoint all move in this one step, so a
  projector that dies at any instruction leaves either none or all of them. Several projectors
  may call it at once: each call starts after the checkpoint, so a command applied by one is
  only acknowledged by the others.

  KEYS[1]  command stream          KEYS[10] agent documents (hash)
  KEYS[2]  event stream            KEYS[11] contact documents (hash)
  KEYS[3]  outcome stream          KEYS[12] pools (lexicographic zset)
  KEYS[4]  meta (checkpoint)       KEYS[13] pool heads (lexicographic zset)
  KEYS[5]  queue (arrival order)   KEYS[14] skill-set queues (lexicographic zset)
  KEYS[6]  skill sets              KEYS[15] queue heads
  KEYS[7]  candidates              KEYS[16] idempotency records (hash)
  KEYS[8]  wake                    KEYS[17] agent skill sets (hash)
  KEYS[9]  stats                   KEYS[18] idempotency outcomes (hash)
                                   KEYS[19] finished contacts (zset: finish ms, id)
                                   KEYS[20] timers (zset: due ms, member; includes/documents.lua)
                                   KEYS[21] ended (each queue's recent abandons and expirations:
                                            "<queue>|<ms, 15 digits>|<abandoned|expired>|<contact>")
                                   KEYS[22] idempotency expiry (zset: key scored by the time its
                                            record may be forgotten)
                                   KEYS[23] agent ids (lexicographic zset, score 0: the agents by
                                            id, GET /agents's order; meta "agentIds" the checkpoint
                                            through which it holds every agent, kept equal to
                                            "applied" by each step: src/adapters/redis/agent-ids.ts)

  Every key the step touches is one of these.

  ARGV[1] key prefix of the workspace   ARGV[5] outcome stream length to keep (approximate)
  ARGV[2] workspace name                ARGV[6] most distinct agent skill sets holding one skill
  ARGV[3] consumer group                ARGV[7] ms an outcome is kept (approximate; it only serves
  ARGV[4] most commands to apply                requests waiting for it, and repeats of an
                                                Idempotency-Key read the copy in KEYS[18])
  ARGV[8]  the step's time budget in microseconds (0: none): once this long has passed since the
           step began (Redis's clock, TIME, read when it has more than BUDGET_EVERY commands to
           append or to apply, and after every BUDGET_EVERY applied), the step ends there (more:
           1), so a backlog is applied in steps of about this length, never in one; the commands
           to append are all appended first, whatever the budget
  ARGV[9]  n: how many of the arguments after it are commands to append before applying (0: none)
  ARGV[10..9+n] those commands, each as k (how many field, value arguments it has), its
           Idempotency-Key ('' for none), the request's fingerprint, the key's lifetime (seconds),
           its command id, and then the k field, value arguments of its entry, as an append writes
           them. One step appends them, in this order, as append-command-4.lua would (a key seen
           before appends nothing), and applies them, so the group never delivers them (the step
           moves its delivery point past them) and no projector wakes for them
  ARGV[10+n..] entries delivered to the caller, to acknowledge

  A command that cannot be applied (unknown type, a body of the wrong shape) becomes a
  CommandRejected fact with nothing else written, and the checkpoint moves past it: one entry
  never stops the stream. Handlers check everything they need before their first write.

  A step ends early (more: 1) after a command that removed FORGET_BUDGET documents or more
  (ForgetContacts): a backlog of them is applied a command a step, so no step holds Redis for
  thousands of removals; and once its time budget (ARGV[8]) has run out.

  Returns {applied count, checkpoint, more (0|1), refused: {position, status, problem type, title, ...},
  appended: {answer, ...}}, an answer per command to append as append-command-4.lua gives it, with
  the outcome of each command this step also applied (the text its outcome entry holds); when
  applying fails after the appends (they stay: they are the stream's), {-1, '', 0, {}, appended,
  error} with no such outcome, and the next step applies them.
]]
--@include "globals"
-- The file runs as a Redis Function too (src/adapters/redis/scripts.ts): the top level only
-- defines; each call's keys, arguments and state are set in `step`, at the end.
local K_COMMANDS, K_EVENTS, K_OUTCOMES, K_META
local K_QUEUE, K_SKILLSETS, K_CAND, K_WAKE
local K_STATS, K_AGENTS, K_CONTACTS, K_POOLS
local K_PHEADS, K_QINDEX, K_QHEADS, K_IDEM, K_ASETS
local K_IDEM_OUTCOMES, K_FINISHED, K_TIMERS, K_ENDED, K_IDEM_EXPIRY, K_AGENT_IDS
local WORKSPACE, GROUP
-- Whether the agent ids' index holds every agent as this step goes (run, RegisterAgent).
local ids_whole = false
local MAX, OUTCOME_KEEP, SKILL_SET_LIMIT
local OUTCOME_KEEP_MS
-- The step's time budget (ARGV[8]) and when it began, in microseconds of Redis's clock
-- (now_us; looked at every BUDGET_EVERY commands: includes/time.lua).
local BUDGET_US, STARTED_US
-- Entries one XRANGE of the step reads (at most MAX in all).
local READ_CHUNK = 32

--@include "json"
--@include "time"
--@include "documents"
--@include "deferred"
--@include "routing"
--@include "idempotency"

-- Encodes `v`, whose only table that may hold raw JSON (attributes) or an empty list
-- (activeContacts) is `inner`: with Redis's own encoder (C) when neither is there.
local function encode_around(v, inner)
  if inner.attributes ~= nil or (inner.activeContacts and #inner.activeContacts == 0) then return json_encode(v) end
  return cjson.encode(v)
end

local WORKSPACE_JSON
-- The command being applied: its meta as JSON, encoded once for every fact it makes.
local meta_json

-- Appends a fact. The envelope is written around `data`'s JSON, which is returned: an outcome
-- whose body is that same view reuses it (see reply).
local function emit(type_, at, data)
  local data_json = encode_around(data, data)
  redis.call('XADD', K_EVENTS, '*', 'type', type_, 'event', '{"type":"' .. type_ .. '","workspace":' .. WORKSPACE_JSON
    .. ',"at":"' .. iso(at) .. '","data":' .. data_json .. ',"meta":' .. meta_json .. '}')
  return data_json
end

-- A success outcome whose body is the view a fact just carried (its JSON already made).
local function reply(status, body, body_json)
  return { status = status, body = body, json = body_json }
end

-- `errors`: the fields at fault, `{path, message}` as a 400 names them (nil: none named).
local function problem(status, slug, title, detail, errors)
  return { status = status, body = { type = '/problems/' .. slug, title = title, status = status, detail = detail,
    errors = errors } }
end

-- `errors` naming one field of the request body: its path as the body names it, and what is wrong
-- with it and what to do.
local function field(path, message)
  return { { path = path, message = message } }
end

local function no_agent(id)
  return problem(404, 'agent-not-found', 'Agent not found', 'No agent "' .. id .. '" in this workspace; register it first.')
end

local function no_contact(id)
  return problem(404, 'contact-not-found', 'Contact not found', 'No contact "' .. id .. '" in this workspace.')
end

local function copy(t)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  json_array(o.skills)
  if o.activeContacts then
    local a = {}
    for i = 1, #t.activeContacts do a[i] = t.activeContacts[i] end
    o.activeContacts = json_array(a)
  end
  return o
end

local function agent_body(a, position)
  local v = public_view(a)
  v.position = position
  return v
end

-- Distinct agent skill sets: a contact's walk over the pools of its rarest skill reads at most
-- as many pools as there are distinct agent skill sets holding that skill, so that number is
-- limited. A skill set some other agent already has is always admitted.
local function skill_sets_admit(skills, old)
  local name = skillset_name(skills)
  if old and skillset_name(old) == name then return nil end
  if tonumber(redis.call('HGET', K_ASETS, 's:' .. name) or '0') > 0 then return nil end
  local retiring = {}
  if old and tonumber(redis.call('HGET', K_ASETS, 's:' .. skillset_name(old)) or '0') == 1 then
    for i = 1, #old do retiring[old[i]] = true end
  end
  for i = 1, #skills do
    local n = tonumber(redis.call('HGET', K_ASETS, 'k:' .. skills[i]) or '0')
    if retiring[skills[i]] then n = n - 1 end
    if n >= SKILL_SET_LIMIT then
      local why = '"' .. skills[i] .. '" already belongs to ' .. n .. ' distinct agent skill sets in this workspace, '
        .. 'the limit that keeps every routing decision fast; give this agent a skill set another agent has, or '
        .. 'change or remove agents whose skill sets are rare'
      return problem(422, 'skill-set-limit', 'Too many distinct skill sets', 'Skill ' .. why .. '.',
        field('skills', why))
    end
  end
  return nil
end

local function skill_sets_add(skills)
  local name = skillset_name(skills)
  if redis.call('HINCRBY', K_ASETS, 's:' .. name, '1') == 1 then
    for i = 1, #skills do redis.call('HINCRBY', K_ASETS, 'k:' .. skills[i], '1') end
  end
end

local function skill_sets_remove(skills)
  local name = skillset_name(skills)
  if redis.call('HINCRBY', K_ASETS, 's:' .. name, '-1') <= 0 then
    redis.call('HDEL', K_ASETS, 's:' .. name)
    for i = 1, #skills do
      if redis.call('HINCRBY', K_ASETS, 'k:' .. skills[i], '-1') <= 0 then redis.call('HDEL', K_ASETS, 'k:' .. skills[i]) end
    end
  end
end

-- The workspace settings (the meta hash's "settings", defaults when absent), read once a step.
-- Made by each step (cjson is there only when a function runs, not when its library loads).
local DEFAULT_SETTINGS
local function default_settings()
  return {
    offerTimeoutMs = 0, wrapUpMs = 0, missedOfferPresence = 'away', maxWaitMs = cjson.null, channels = { 'voice' },
  }
end
local settings_cache
local function settings()
  if not settings_cache then
    local s = redis.call('HGET', K_META, 'settings')
    settings_cache = s and cjson.decode(s) or DEFAULT_SETTINGS
  end
  return settings_cache
end
priority_weight = function() return tonumber(settings().priorityWeightMs) end
selection = function() return settings().agentSelection or 'longest-available' end

-- Whether the workspace declares `channel`.
local function declared(channel)
  local chs = settings().channels or DEFAULT_SETTINGS.channels
  for i = 1, #chs do
    if chs[i] == channel then return true end
  end
  return false
end

-- `what`: the detail's start, up to "not among"; `fields`: {path, channel} of each field naming
-- an undeclared channel, named in `errors`.
local function not_declared(what, fields)
  local among = ' not among this workspace\'s channels ('
    .. table.concat(settings().channels or DEFAULT_SETTINGS.channels, ', ') .. ')'
  local errors = {}
  for i = 1, #fields do
    errors[i] = { path = fields[i][1], message = '"' .. fields[i][2] .. '" is' .. among
      .. '; add it to the settings\' channels first (PUT /settings)' }
  end
  return problem(422, 'channel-not-declared', 'Channel not declared', what .. among
    .. '; add it to the settings\' channels first (PUT /settings).', errors)
end

-- A capacity per channel naming a channel the workspace does not declare: the problem.
local function capacity_refused(capacity)
  if type(capacity) ~= 'table' then return nil end
  local unknown = {}
  for ch in pairs(capacity) do
    if not declared(ch) then unknown[#unknown + 1] = ch end
  end
  if #unknown == 0 then return nil end
  table.sort(unknown, sorts_before)
  local named, fields = {}, {}
  for i = 1, #unknown do
    named[i] = '"' .. unknown[i] .. '"'
    fields[i] = { 'capacity.' .. unknown[i], unknown[i] }
  end
  return not_declared('capacity names ' .. table.concat(named, ', ') .. ',', fields)
end

-- A contact's routing steps as its document shows them (skills as JSON lists).
local function steps_view(steps)
  local out = {}
  for i = 1, #steps do
    local st = steps[i]
    out[i] = { afterMs = st.afterMs, skills = json_array(st.skills), priority = st.priority }
  end
  return json_array(out)
end

local function timer_add(due, member)
  redis.call('ZADD', K_TIMERS, int(due), member)
  wake() -- the clock (in the dispatcher) looks at the timers when it wakes
end

local function without(list, id)
  local out = {}
  for i = 1, #(list or {}) do
    if list[i] ~= id then out[#out + 1] = list[i] end
  end
  return out
end

-- Takes a contact (on `channel`) off an agent being changed (`a`, a copy): its capacity and its offers.
local function release(a, contact_id, channel)
  a.activeContacts = json_array(without(a.activeContacts, contact_id))
  load_add(a, channel, -1)
  local offers = without(a._offers, contact_id)
  a._offers = #offers > 0 and offers or nil
end

-- A contact's offer ends without an assignment (rejected, expired, withdrawn): the contact goes
-- back to its queue at its own place (its arrival is unchanged) and is not offered to that agent
-- again while among its last EXCLUDED_KEEP (includes/routing.lua). `a` is the agent being changed (a copy); the caller
-- writes it.
local function withdraw(d, a, at, pos, fact, extra)
  redis.call('ZREM', K_TIMERS, offer_timer(d))
  local agent_id = d.agentId
  d.state = 'queued'
  d.agentId, d.assignedAt, d._assignedAt, d.waitedMs = nil, nil, nil, nil
  d._offer, d._expiresMs, d.offerExpiresAt = nil, nil, nil
  local excluded = d.excludedAgents or {}
  excluded[#excluded + 1] = agent_id
  if #excluded > EXCLUDED_KEEP then
    local kept = {}
    for i = #excluded - EXCLUDED_KEEP + 1, #excluded do kept[#kept + 1] = excluded[i] end
    excluded = kept
  end
  d.excludedAgents = excluded
  -- Its arrival time is its position's until the position moves (queued_ms).
  d._queuedAt = queued_ms(d)
  d.position = pos
  queue_add(d)
  doc_put(K_CONTACTS, d)
  release(a, d.id, channel_of(d))
  local data = { contactId = d.id, agentId = agent_id }
  for k, v in pairs(extra) do data[k] = v end
  emit(fact, at, data)
end

local function end_wrap(a)
  if a._wrap then redis.call('ZREM', K_TIMERS, wrap_timer(a)) end
  a._wrap, a._wrapUntil, a.wrapUpUntil = nil, nil, nil
end

-- The agent's presence changes (from `before`, as it is now): offers withdrawn first, a wrap-up
-- running ends, then AgentStateChanged. `from` is the state named as before (default: before's).
local function presence_change(before, presence, at, pos, from)
  local a = copy(before)
  local offers = before._offers or {}
  for i = 1, #offers do
    withdraw(doc_get(K_CONTACTS, offers[i]), a, at, pos, 'AssignmentRejected',
      { rejectedAt = iso(at), reason = 'presence' })
  end
  a.presence = presence
  end_wrap(a)
  availability_sync(before, a, at)
  a.position = pos
  doc_put(K_AGENTS, a)
  emit('AgentStateChanged', at, {
    agentId = a.id, from = from or before.state, to = a.state, presence = a.presence, availableSince = a.availableSince,
  })
  return a
end

-- Each handler returns an outcome {status, body}; facts are emitted as it goes.
local handlers = {}

handlers.RegisterAgent = function(c, at, pos, meta)
  if doc_exists(K_AGENTS, c.agentId) then
    return problem(409, 'agent-exists', 'Agent already exists',
      'Agent "' .. c.agentId .. '" is registered; change it with PATCH.',
      field('id', '"' .. c.agentId .. '" is registered already; change that agent with PATCH, or use a new id'))
  end
  local refused = skill_sets_admit(c.skills, nil) or capacity_refused(c.capacity)
  if refused then return refused end
  skill_sets_add(c.skills)
  local a = {
    id = c.agentId, name = c.name, skills = json_array(c.skills), capacity = c.capacity,
    presence = 'offline', state = 'offline', activeContacts = json_array({}),
    availableSince = cjson.null, registeredAt = iso(at), position = pos, wrapUpMs = c.wrapUpMs,
  }
  -- The first agent of a workspace with none: the ids' index holds every agent from here on
  -- (a workspace with agents from before the index gets it from its first listing).
  if not ids_whole and redis.call('HLEN', K_AGENTS) == 0 and redis.call('ZCARD', K_AGENT_IDS) == 0 then
    ids_whole = true
  end
  doc_put(K_AGENTS, a)
  redis.call('ZADD', K_AGENT_IDS, 0, a.id)
  local view = agent_body(a, pos)
  return reply(201, view, emit('AgentRegistered', at, view))
end

handlers.UpdateAgent = function(c, at, pos, meta)
  local before = doc_get(K_AGENTS, c.agentId)
  if not before then return no_agent(c.agentId) end
  -- The model's order (and RegisterAgent's): the skill sets, then the channels.
  local refused = c.skills and skill_sets_admit(c.skills, before.skills)
  if refused then return refused end
  local no_channel = capacity_refused(c.capacity)
  if no_channel then return no_channel end
  if c.skills then
    skill_sets_remove(before.skills)
    skill_sets_add(c.skills)
  end
  local a = copy(before)
  if c.name then a.name = c.name end
  if c.skills then a.skills = json_array(c.skills) end
  if c.capacity then
    a.capacity = c.capacity
    a._load = nil
    -- Per channel: the contacts it holds count on their channels (at most its capacity: bounded).
    for i = 1, #a.activeContacts do
      local held = doc_get(K_CONTACTS, a.activeContacts[i])
      load_add(a, held and channel_of(held) or 'voice', 1)
    end
  end
  -- wrapUpMs null removes the agent's own wrap-up time: the workspace's applies again.
  if c.wrapUpMs == cjson.null then a.wrapUpMs = nil elseif c.wrapUpMs then a.wrapUpMs = c.wrapUpMs end
  availability_sync(before, a, at)
  a.position = pos
  doc_put(K_AGENTS, a)
  local view = agent_body(a, pos)
  return reply(200, view, emit('AgentUpdated', at, view))
end

handlers.ChangeAgentState = function(c, at, pos, meta)
  local before = doc_get(K_AGENTS, c.agentId)
  if not before then return no_agent(c.agentId) end
  if before.presence == c.state then
    if c.state ~= 'available' or not before._wrap then
      return { status = 200, body = agent_body(before, before.position) }
    end
    -- Available again while wrapping up: the wrap-up ends early.
    local a = copy(before)
    local n = a._wrap
    end_wrap(a)
    availability_sync(before, a, at)
    a.position = pos
    doc_put(K_AGENTS, a)
    emit('WrapUpEnded', at, { agentId = a.id, wrapUp = n, early = true, endedAt = iso(at) })
    return { status = 200, body = agent_body(a, pos) }
  end
  local a = presence_change(before, c.state, at, pos)
  return { status = 200, body = agent_body(a, pos) }
end

handlers.RemoveAgent = function(c, at, pos, meta)
  local a = doc_get(K_AGENTS, c.agentId)
  if not a then return no_agent(c.agentId) end
  local offered = {}
  for _, id in ipairs(a._offers or {}) do offered[id] = true end
  local held = {}
  for _, id in ipairs(a.activeContacts) do
    if not offered[id] then held[#held + 1] = id end
  end
  if #held > 0 then
    return problem(409, 'agent-busy', 'Agent has active contacts', 'Agent "' .. a.id .. '" holds '
      .. table.concat(held, ', ') .. '; complete them before removing the agent.')
  end
  -- Offers it holds go back to the queue first.
  local left = copy(a)
  for _, id in ipairs(a._offers or {}) do
    withdraw(doc_get(K_CONTACTS, id), left, at, pos, 'AssignmentRejected', { rejectedAt = iso(at), reason = 'removed' })
  end
  for _, seat in pairs(seats(a, a.skills, a._since, a._chsince)) do pool_leave(seat[1], seat[2], a.id) end
  end_wrap(left)
  skill_sets_remove(a.skills)
  doc_delete(K_AGENTS, a.id)
  redis.call('ZREM', K_AGENT_IDS, a.id)
  emit('AgentRemoved', at, { agentId = a.id })
  return { status = 200, body = { id = a.id, removed = true, position = pos } }
end

-- The workspace's last arrival number and tick (meta "seq" and "tick") as this step left them.
local arrival

handlers.QueueContact = function(c, at, pos, meta)
  if doc_exists(K_CONTACTS, c.contactId) then
    return problem(409, 'contact-exists', 'Contact already exists',
      'Contact "' .. c.contactId .. '" was queued before; use a new id.',
      field('id', '"' .. c.contactId .. '" was queued before; use a new id'))
  end
  local channel = c.channel or 'voice'
  if not declared(channel) then return not_declared('channel "' .. channel .. '" is', { { 'channel', channel } }) end
  -- Its arrival number and its arrival tick (routing.lua): strictly increasing, so aged routing
  -- orders never tie. Read once a step (only this handler moves them), written at each arrival.
  if not arrival then
    local m = redis.call('HMGET', K_META, 'seq', 'tick')
    arrival = { seq = tonumber(m[1] or '0'), tick = tonumber(m[2] or '0') }
  end
  local seq = arrival.seq + 1
  local tick = math.max((at - TICK_EPOCH) * TICKS_PER_MS, arrival.tick + 1)
  arrival.seq, arrival.tick = seq, tick
  redis.call('HSET', K_META, 'seq', int(seq), 'tick', int(tick))
  local d = {
    id = c.contactId, skills = json_array(c.skills), channel = channel, priority = c.priority, state = 'queued',
    queuedAt = iso(at), position = pos, _seq = seq, _tick = int(tick), _attrs = c._attrs,
    _cmd = meta.commandId, maxWaitMs = c.maxWaitMs,
  }
  local wait = c.maxWaitMs or settings().maxWaitMs
  if wait ~= cjson.null then
    d._deadline = at + wait
    d.expiresAt = iso(d._deadline)
    timer_add(d._deadline, wait_timer(d))
  end
  if c.steps then
    d.steps = steps_view(c.steps)
    d.step = 0
    timer_add(at + c.steps[1].afterMs, step_timer(d, 1))
  end
  if c.preferredAgents then
    d.preferredAgents = json_array(c.preferredAgents)
    d._preferUntil = at + (c.preferredForMs or 30000)
    d.preferredUntil = iso(d._preferUntil)
    timer_add(d._preferUntil, preference_timer(d))
  end
  queue_add(d)
  doc_put(K_CONTACTS, d)
  stat_add('queued')
  local view = agent_body(d, pos)
  return reply(201, view, emit('ContactQueued', at, view))
end

-- The contact a command is about, if it is in the state the command needs; else the problem.
local function contact_in(id, wanted, rule, read)
  local d = read or doc_get(K_CONTACTS, id)
  if not d then return nil, no_contact(id) end
  if d.state ~= wanted then
    return nil, problem(409, 'contact-not-' .. wanted, 'Contact is not ' .. wanted, 'Contact "' .. d.id .. '" is '
      .. d.state .. '; ' .. rule .. '.')
  end
  return d
end

-- A queued or offered contact leaves for good (abandoned, expired): out of its queue, or its offer
-- withdrawn (the agent freed); the timers of its wait go; it counts as finished.
local function leave(d, at, pos)
  if d.state == 'offered' then
    redis.call('ZREM', K_TIMERS, offer_timer(d))
    local before = doc_get(K_AGENTS, d.agentId)
    if before then
      local a = copy(before)
      release(a, d.id, channel_of(d))
      availability_sync(before, a, at)
      doc_put(K_AGENTS, a)
    end
    d.agentId, d.assignedAt, d._assignedAt = nil, nil, nil
    d._offer, d._expiresMs, d.offerExpiresAt = nil, nil, nil
  else
    queue_remove(d)
  end
  wait_timers_end(d)
  d.waitedMs = at - queued_ms(d)
  d.position = pos
  redis.call('ZADD', K_FINISHED, int(at), d.id)
end

-- How long an abandon or expiration counts in its queue's window (/stats), ms, and the most
-- recent kept per queue within it: the dispatcher's served window (dispatch-14.lua) and its cap.
local ENDED_WINDOW = 300000
local ENDED_KEEP = 64
-- The queues this step wrote ended members for, in the order of their first (window_trim at the end).
local ended_queues, ended_order

-- A waiting contact (queued or offered) left its queue `queue` at `at`, `kind` abandoned or expired.
local function ended_add(queue, at, kind, id)
  redis.call('ZADD', K_ENDED, '0', queue .. '|' .. string.format('%015d', at) .. '|' .. kind .. '|' .. id)
  if not ended_queues[queue] then
    ended_queues[queue] = true
    ended_order[#ended_order + 1] = queue
  end
end


-- The contact leaves (leave) and ends in `state` at `at` (its `field`), with the fact `fact`
-- {contactId, <field>, waitedMs}; the outcome is its document. It counts in its queue's window
-- (its requirements now, on its channel: the queue it waited in last).
local function left(d, at, pos, state, field, fact)
  -- An offered contact's offer is withdrawn: the event names that agent (its feed hears of it).
  local offered_to = d.state == 'offered' and d.agentId or nil
  leave(d, at, pos)
  ended_add(route_name(d), at, state, d.id)
  d.state = state
  d[field] = iso(at)
  doc_put(K_CONTACTS, d)
  stat_add(state)
  local data = { contactId = d.id, waitedMs = d.waitedMs, agentId = offered_to }
  data[field] = d[field]
  emit(fact, at, data)
  return { status = 200, body = agent_body(d, pos) }
end

handlers.AbandonContact = function(c, at, pos, meta)
  local d = doc_get(K_CONTACTS, c.contactId)
  if not d then return no_contact(c.contactId) end
  if d.state ~= 'queued' and d.state ~= 'offered' then
    return problem(409, 'contact-not-queued', 'Contact is not queued', 'Contact "' .. d.id .. '" is '
      .. d.state .. '; only a queued or offered contact can be abandoned.')
  end
  return left(d, at, pos, 'abandoned', 'abandonedAt', 'ContactAbandoned')
end

-- An assignment ends (completed, transferred): the agent is freed and starts its wrap-up, if it
-- has one (a running one is replaced). Returns the wrap-up's number and end, or nil.
local function assignment_ends(agent_id, d, at, pos)
  local before = doc_get(K_AGENTS, agent_id)
  if not before then return nil end
  local a = copy(before)
  release(a, d.id, channel_of(d))
  local wrap = a.wrapUpMs or settings().wrapUpMs
  local wrap_n, wrap_until
  if wrap > 0 and a.presence == 'available' then
    end_wrap(a)
    wrap_n = (a._wraps or 0) + 1
    wrap_until = at + wrap
    a._wraps, a._wrap, a._wrapUntil, a.wrapUpUntil = wrap_n, wrap_n, wrap_until, iso(wrap_until)
    timer_add(wrap_until, wrap_timer(a))
    a.position = pos
  end
  availability_sync(before, a, at)
  doc_put(K_AGENTS, a)
  return wrap_n, wrap_until
end

local function wrap_up_started(agent_id, at, wrap_n, wrap_until)
  if wrap_n then emit('WrapUpStarted', at, { agentId = agent_id, wrapUp = wrap_n, ['until'] = iso(wrap_until) }) end
end

handlers.CompleteContact = function(c, at, pos, meta)
  -- An agent key's completion names its agent (checked by the API when it arrived): a contact that
  -- left that agent since (transferred, and assigned to another) is refused as that check refuses it.
  local held
  if c.agentId then
    held = doc_get(K_CONTACTS, c.contactId)
    if held and held.agentId ~= c.agentId then
      return problem(403, 'forbidden', 'Forbidden', 'Contact "' .. c.contactId .. '" is not offered or assigned to agent "'
        .. c.agentId .. '", whom this key acts for.')
    end
  end
  local d, rejected = contact_in(c.contactId, 'assigned', 'only an assigned contact can be completed', held)
  if not d then return rejected end
  d.state = 'completed'
  d.completedAt = iso(at)
  d.position = pos
  doc_put(K_CONTACTS, d)
  redis.call('ZADD', K_FINISHED, int(at), d.id)
  local wrap_n, wrap_until = assignment_ends(d.agentId, d, at, pos)
  stat_add('completed')
  emit('ContactCompleted', at, {
    contactId = d.id, agentId = d.agentId, completedAt = d.completedAt, handledMs = at - (d._assignedAt or at),
  })
  wrap_up_started(d.agentId, at, wrap_n, wrap_until)
  return { status = 200, body = agent_body(d, pos) }
end

-- Back to the queue with new skills (and priority), keeping its arrival for ordering; the agent's
-- assignment ends as with a completion.
handlers.TransferContact = function(c, at, pos, meta)
  local d, rejected = contact_in(c.contactId, 'assigned', 'only an assigned contact can be transferred')
  if not d then return rejected end
  local agent_id = d.agentId
  d._queuedAt = queued_ms(d)
  d.state = 'queued'
  d.agentId, d.assignedAt, d._assignedAt, d.waitedMs, d.acceptedAt = nil, nil, nil, nil, nil
  d._deadline, d.expiresAt = nil, nil
  -- Its routing steps and preferred agents end: it needs what the transfer says.
  d.steps, d.step = nil, nil
  d.preferredAgents, d.preferredUntil, d._preferUntil = nil, nil, nil
  d.skills = json_array(c.skills)
  if c.priority then d.priority = c.priority end
  d.position = pos
  queue_add(d)
  doc_put(K_CONTACTS, d)
  local wrap_n, wrap_until = assignment_ends(agent_id, d, at, pos)
  stat_add('transferred')
  emit('ContactTransferred', at, {
    contactId = d.id, fromAgentId = agent_id, skills = public_skills(d.skills, 'minLevel'), priority = d.priority,
    transferredAt = iso(at),
  })
  wrap_up_started(agent_id, at, wrap_n, wrap_until)
  return { status = 200, body = agent_body(d, pos) }
end

handlers.ChangeSettings = function(c, at, pos, meta)
  -- Channels left out stay as they are; channels are added, never removed.
  local current = settings().channels or DEFAULT_SETTINGS.channels
  local channels = c.channels or current
  local kept, dropped = {}, {}
  for i = 1, #channels do kept[channels[i]] = true end
  for i = 1, #current do
    if not kept[current[i]] then dropped[#dropped + 1] = '"' .. current[i] .. '"' end
  end
  if #dropped > 0 then
    local why = 'leaves out ' .. table.concat(dropped, ', ') .. '; channels are added, never removed (contacts and '
      .. 'agents may use them): send every current channel too'
    return problem(422, 'channels-not-removable', 'Channels cannot be removed', 'channels ' .. why .. '.',
      field('channels', why))
  end
  local st = {
    offerTimeoutMs = c.offerTimeoutMs, wrapUpMs = c.wrapUpMs, missedOfferPresence = c.missedOfferPresence,
    maxWaitMs = c.maxWaitMs, channels = json_array(channels), priorityWeightMs = c.priorityWeightMs,
  }
  -- The defaults are left out (the settings read as before these existed).
  if c.agentSelection ~= 'longest-available' then st.agentSelection = c.agentSelection end
  -- Each conflict is named in `errors`, both when both hold (one refusal, not one per try); the title
  -- and detail are the first's, as the log's CommandRejected has always held them (an older log
  -- audits as it did: the model decides them alike).
  local title, detail, errors = nil, nil, {}
  local aging_now = settings().priorityWeightMs ~= nil
  if (st.priorityWeightMs ~= nil) ~= aging_now and redis.call('ZCARD', K_QUEUE) > 0 then
    local why = 'can be ' .. (aging_now and 'removed' or 'set') .. ' only while no contact is queued (strict and '
      .. 'aged routing orders do not mix); change its value instead, or try again when the queue is empty'
    title, detail = 'Contacts are queued', 'priorityWeightMs ' .. why .. '.'
    errors[#errors + 1] = { path = 'priorityWeightMs', message = why }
  end
  local pooled_now = settings().agentSelection == 'least-occupied'
  if (st.agentSelection == 'least-occupied') ~= pooled_now and redis.call('ZCARD', K_POOLS) > 0 then
    local why = 'can ' .. (pooled_now and 'leave' or 'become') .. ' "least-occupied" only while no agent can take '
      .. 'work (it orders the available agents differently); set the available agents away first, or try again later'
    if not title then title, detail = 'Agents are available', 'agentSelection ' .. why .. '.' end
    errors[#errors + 1] = { path = 'agentSelection', message = why }
  end
  if title then return problem(409, 'settings-conflict', title, detail, errors) end
  redis.call('HSET', K_META, 'settings', cjson.encode(st))
  settings_cache = st
  emit('SettingsChanged', at, st)
  local body = copy(st)
  body.position = pos
  return { status = 200, body = body }
end

-- The contact offered to `agent_id`, or the problem.
local function offered_to(id, agent_id, verb)
  local d = doc_get(K_CONTACTS, id)
  if not d then return nil, no_contact(id) end
  if d.state ~= 'offered' then
    return nil, problem(409, 'contact-not-offered', 'Contact is not offered', 'Contact "' .. id .. '" is ' .. d.state
      .. '; only an offered contact can be ' .. verb .. '.')
  end
  if d.agentId ~= agent_id then
    return nil, problem(409, 'offer-not-yours', 'Offer made to another agent', 'Contact "' .. id
      .. '" is offered to another agent, not to "' .. agent_id .. '"; only that agent can answer it.',
      field('agentId', '"' .. agent_id .. '" is not the agent this contact is offered to; only that agent can '
        .. 'answer it'))
  end
  return d
end

handlers.AcceptOffer = function(c, at, pos, meta)
  local d, rejected = offered_to(c.contactId, c.agentId, 'accepted')
  if not d then return rejected end
  redis.call('ZREM', K_TIMERS, offer_timer(d))
  wait_timers_end(d)
  d.state = 'assigned'
  d.acceptedAt = iso(at)
  d._offer, d._expiresMs, d.offerExpiresAt = nil, nil, nil
  -- Its arrival time is its position's until the position moves (queued_ms): a transfer reads it.
  d._queuedAt = queued_ms(d)
  d.position = pos
  doc_put(K_CONTACTS, d)
  local before = doc_get(K_AGENTS, c.agentId)
  if before then
    local a = copy(before)
    local offers = without(a._offers, d.id)
    a._offers = #offers > 0 and offers or nil
    a.state = agent_state(a)
    doc_put(K_AGENTS, a)
  end
  emit('AssignmentAccepted', at, { contactId = d.id, agentId = c.agentId, acceptedAt = d.acceptedAt })
  return { status = 200, body = agent_body(d, pos) }
end

handlers.RejectOffer = function(c, at, pos, meta)
  local d, rejected = offered_to(c.contactId, c.agentId, 'rejected')
  if not d then return rejected end
  local before = doc_get(K_AGENTS, c.agentId)
  local a = copy(before)
  withdraw(d, a, at, pos, 'AssignmentRejected', { rejectedAt = iso(at), reason = 'rejected' })
  availability_sync(before, a, at)
  doc_put(K_AGENTS, a)
  return { status = 200, body = agent_body(d, pos) }
end

-- Timer commands: each changes something only while its timer is current and due; otherwise it
-- is applied as nothing (a late or repeated firing).
local function stale(pos)
  return { status = 200, body = { current = false, position = pos } }
end

-- The contact a timer of its wait names (`c.contactId`, arrival `c.seq`), if it still waits in
-- that arrival (queued or offered); nil when the timer is stale.
local function still_waiting(c)
  local d = doc_get(K_CONTACTS, c.contactId)
  if d and d._seq == c.seq and (d.state == 'queued' or d.state == 'offered') then return d end
  return nil
end

handlers.ExpireOffer = function(c, at, pos, meta)
  local d = doc_get(K_CONTACTS, c.contactId)
  if not d or d.state ~= 'offered' or d._offer ~= c.offer or at < d._expiresMs then return stale(pos) end
  local before = doc_get(K_AGENTS, d.agentId)
  local a = copy(before)
  withdraw(d, a, at, pos, 'AssignmentExpired', { expiredAt = iso(at) })
  local missed = settings().missedOfferPresence
  if a.presence == missed then
    availability_sync(before, a, at)
    doc_put(K_AGENTS, a)
  else
    -- The agent let it ring out: its presence becomes the workspace's missedOfferPresence.
    local between = copy(a)
    availability_sync(before, between, at)
    presence_change(between, missed, at, pos, agent_state(between))
  end
  return { status = 200, body = agent_body(d, pos) }
end

handlers.EndWrapUp = function(c, at, pos, meta)
  local before = doc_get(K_AGENTS, c.agentId)
  if not before or before._wrap ~= c.wrapUp or at < before._wrapUntil then return stale(pos) end
  local a = copy(before)
  end_wrap(a)
  availability_sync(before, a, at)
  a.position = pos
  doc_put(K_AGENTS, a)
  emit('WrapUpEnded', at, { agentId = a.id, wrapUp = c.wrapUp, early = false, endedAt = iso(at) })
  return { status = 200, body = agent_body(a, pos) }
end

handlers.AdvanceStep = function(c, at, pos, meta)
  local d = still_waiting(c)
  local next_step = d and d.steps and d.steps[c.step]
  if not next_step or d.step ~= c.step - 1 or at < queued_ms(d) + next_step.afterMs then return stale(pos) end
  -- Its arrival stays (it keeps its place); the position moves, so the arrival is kept apart.
  d._queuedAt = queued_ms(d)
  -- A queued contact moves to the queue of its new requirements, at its place there; an offered
  -- one keeps its offer, and goes back with them if the offer ends.
  if d.state == 'queued' then queue_remove(d) end
  d.skills = json_array(next_step.skills)
  if next_step.priority then d.priority = next_step.priority end
  d.step = c.step
  d.position = pos
  if d.state == 'queued' then queue_add(d) end
  doc_put(K_CONTACTS, d)
  if d.steps[c.step + 1] then timer_add(d._queuedAt + d.steps[c.step + 1].afterMs, step_timer(d, c.step + 1)) end
  emit('ContactStepped', at, {
    contactId = d.id, step = c.step, skills = public_skills(d.skills, 'minLevel'), priority = d.priority,
    steppedAt = iso(at),
  })
  return { status = 200, body = agent_body(d, pos) }
end

handlers.EndPreference = function(c, at, pos, meta)
  local d = still_waiting(c)
  if not d or not d._preferUntil or at < d._preferUntil then return stale(pos) end
  d._queuedAt = queued_ms(d)
  -- Out of its queue and back at its place, now for anyone eligible.
  if d.state == 'queued' then queue_remove(d) end
  d.preferredAgents, d.preferredUntil, d._preferUntil = nil, nil, nil
  d.position = pos
  if d.state == 'queued' then queue_add(d) end
  doc_put(K_CONTACTS, d)
  emit('PreferenceEnded', at, { contactId = d.id, endedAt = iso(at) })
  return { status = 200, body = agent_body(d, pos) }
end

handlers.ExpireContact = function(c, at, pos, meta)
  local d = still_waiting(c)
  if not d or not d._deadline or at < d._deadline then return stale(pos) end
  return left(d, at, pos, 'expired', 'expiredAt', 'ContactExpired')
end

-- Documents removed by this step's ForgetContacts; past FORGET_BUDGET, the step ends after the
-- command (run), and the next step goes on.
local FORGET_BUDGET = 500
local forgotten

-- Finished contacts' documents go once they are older than the retention (the archiver appends
-- this command); at most `max` per command, oldest first, ties by id: the model's order.
handlers.ForgetContacts = function(c, at, pos, meta)
  local before = at - c.keepMs
  local ids = redis.call('ZRANGE', K_FINISHED, '-inf', '(' .. int(before), 'BYSCORE', 'LIMIT', 0, c.max)
  if #ids > 0 then
    redis.call('HDEL', K_CONTACTS, unpack(ids))
    redis.call('ZREM', K_FINISHED, unpack(ids))
    forgotten = forgotten + #ids
    emit('ContactsForgotten', at, { contactIds = ids, before = iso(before) })
  end
  return { status = 200, body = { forgotten = #ids, position = pos } }
end

-- The shape each command must have (the API checks it before appending; a foreign or corrupt
-- entry is refused here before any write, so it cannot leave part of itself behind).
local function is_id(v) return type(v) == 'string' and #v > 0 and #v <= 128 and not string.find(v, '[^%w._:-]') end
local function is_int(v, lo, hi) return type(v) == 'number' and v == math.floor(v) and v >= lo and v <= hi end
local function is_name(v) return v == nil or type(v) == 'string' end
-- Routing skills: a skill (1..64 of [A-Za-z0-9._-]), or one with a level "<skill>#<2..5>".
local function is_skills(v)
  if type(v) ~= 'table' or #v == 0 or #v > 160 then return false end
  for i = 1, #v do
    if type(v[i]) ~= 'string' then return false end
    local base = string.match(v[i], '^(.*)#[2-5]$') or v[i]
    if #base == 0 or #base > 64 or string.find(base, '[^%w._-]') then return false end
    -- Byte order, as the API sorts them (Lua's `>=` follows the server's locale).
    if i > 1 and not sorts_before(v[i - 1], v[i]) then return false end
  end
  return true
end
local PRESENCE = { available = true, away = true, offline = true }
local SELECTIONS = { ['longest-available'] = true, ['most-skilled'] = true, ['least-occupied'] = true }
local function is_channel(v)
  return type(v) == 'string' and #v >= 1 and #v <= 32 and string.find(v, '^[a-z][a-z0-9_-]*$') ~= nil
end
-- One number, or 1..16 channels each with a number.
local function is_capacity(v)
  if is_int(v, 1, 100) then return true end
  if type(v) ~= 'table' then return false end
  local n = 0
  for k, x in pairs(v) do
    if not is_channel(k) or not is_int(x, 1, 100) then return false end
    n = n + 1
  end
  return n >= 1 and n <= 16
end
local function is_preferred(v)
  if v == nil then return true end
  if type(v) ~= 'table' or #v == 0 or #v > 10 then return false end
  local seen = {}
  for i = 1, #v do
    if not is_id(v[i]) or seen[v[i]] then return false end
    seen[v[i]] = true
  end
  return true
end
local function is_channels(v)
  if v == nil then return true end
  if type(v) ~= 'table' or #v == 0 or #v > 16 then return false end
  for i = 1, #v do
    if not is_channel(v[i]) or (i > 1 and not sorts_before(v[i - 1], v[i])) then return false end
  end
  return true
end
local DAY = 86400000
local function is_wait(v) return v == nil or is_int(v, 1, 7 * DAY) end
local function is_steps(v)
  if v == nil then return true end
  if type(v) ~= 'table' or #v == 0 or #v > 8 then return false end
  for i = 1, #v do
    local st = v[i]
    if type(st) ~= 'table' or not is_wait(st.afterMs) or st.afterMs == nil or not is_skills(st.skills)
      or (st.priority ~= nil and not is_int(st.priority, 0, 9)) or (i > 1 and v[i - 1].afterMs >= st.afterMs) then
      return false
    end
  end
  return true
end
local shapes = {
  RegisterAgent = function(c)
    return is_id(c.agentId) and is_skills(c.skills) and is_capacity(c.capacity) and is_name(c.name)
      and (c.wrapUpMs == nil or is_int(c.wrapUpMs, 0, DAY))
  end,
  UpdateAgent = function(c)
    return is_id(c.agentId) and (c.skills == nil or is_skills(c.skills))
      and (c.capacity == nil or is_capacity(c.capacity)) and is_name(c.name)
      and (c.wrapUpMs == nil or c.wrapUpMs == cjson.null or is_int(c.wrapUpMs, 0, DAY))
  end,
  ChangeAgentState = function(c) return is_id(c.agentId) and PRESENCE[c.state] == true end,
  RemoveAgent = function(c) return is_id(c.agentId) end,
  QueueContact = function(c)
    return is_id(c.contactId) and is_skills(c.skills) and is_int(c.priority, 0, 9) and is_wait(c.maxWaitMs)
      and (c.channel == nil or is_channel(c.channel)) and is_steps(c.steps)
      and is_preferred(c.preferredAgents) and (c.preferredForMs == nil or (c.preferredAgents and is_wait(c.preferredForMs)))
  end,
  AbandonContact = function(c) return is_id(c.contactId) end,
  CompleteContact = function(c) return is_id(c.contactId) and (c.agentId == nil or is_id(c.agentId)) end,
  ForgetContacts = function(c) return is_int(c.keepMs, 0, 9007199254740991) and is_int(c.max, 1, 500) end,
  ChangeSettings = function(c)
    return is_int(c.offerTimeoutMs, 0, 3600000) and is_int(c.wrapUpMs, 0, DAY)
      and PRESENCE[c.missedOfferPresence] == true and (c.maxWaitMs == cjson.null or is_wait(c.maxWaitMs))
      and is_channels(c.channels)
      and (c.priorityWeightMs == nil or is_int(c.priorityWeightMs, 1, 3600000))
      and (c.agentSelection == nil or SELECTIONS[c.agentSelection] == true)
  end,
  TransferContact = function(c)
    return is_id(c.contactId) and is_skills(c.skills) and (c.priority == nil or is_int(c.priority, 0, 9))
  end,
  AcceptOffer = function(c) return is_id(c.contactId) and is_id(c.agentId) end,
  RejectOffer = function(c) return is_id(c.contactId) and is_id(c.agentId) end,
  ExpireOffer = function(c) return is_id(c.contactId) and is_int(c.offer, 1, 9007199254740991) end,
  EndWrapUp = function(c) return is_id(c.agentId) and is_int(c.wrapUp, 1, 9007199254740991) end,
  ExpireContact = function(c) return is_id(c.contactId) and is_int(c.seq, 1, 9007199254740991) end,
  EndPreference = function(c) return is_id(c.contactId) and is_int(c.seq, 1, 9007199254740991) end,
  AdvanceStep = function(c)
    return is_id(c.contactId) and is_int(c.seq, 1, 9007199254740991) and is_int(c.step, 1, 8)
  end,
}

-- The outcome of one command entry: its handler's, or a problem when it cannot be applied.
local function apply(f, at, pos, meta)
  local ok, c = pcall(cjson.decode, f.command or '')
  local handler = handlers[f.type]
  if not handler then
    return problem(422, 'unknown-command', 'Unknown command',
      'Command type "' .. tostring(f.type) .. '" cannot be applied by this version of Switchboard.'), nil
  end
  -- Attributes are spliced raw into the contact's document and its facts: a text that is not JSON
  -- (an entry Switchboard did not write) is refused with the rest, as the auditor decodes it.
  if not ok or type(c) ~= 'table' or not shapes[f.type](c)
    or (f.attributes ~= nil and not pcall(cjson.decode, f.attributes)) then
    return problem(422, 'malformed-command', 'Malformed command', 'The ' .. f.type .. ' entry at ' .. pos
      .. ' does not have the shape Switchboard appends; it was not applied. Send the command again through the API.'), nil
  end
  -- Attributes travel as their own field, as the client's JSON text, and are kept as such.
  c._attrs = f.attributes
  local done, outcome = pcall(handler, c, at, pos, meta)
  if not done then
    return problem(422, 'command-failed', 'Command could not be applied', 'Applying the ' .. f.type .. ' entry at '
      .. pos .. ' failed (' .. tostring(outcome) .. '); it was skipped. Report this with the position.'), c
  end
  return outcome, c
end

-- Whether ARGV[9] announces more than `n` commands to append (each is 5 + k arguments).
local function appends_over(ARGV, n)
  local last, i, count = 9 + (tonumber(ARGV[9]) or 0), 10, 0
  while i <= last do
    count = count + 1
    if count > n then return true end
    i = i + 5 + tonumber(ARGV[i])
  end
  return false
end

-- The commands ARGV[9] announces, appended in order; returns their answers, the index of the
-- first delivered entry, and the answers still without an outcome by command id, a list each (run
-- fills in the outcome of each it applies: the caller answers its request from the step's reply;
-- two requests of one Idempotency-Key in one step both name the one command appended).
local function append_commands(ARGV)
  local last = 9 + (tonumber(ARGV[9]) or 0)
  local answers, open = {}, {}
  local i = 10
  local now
  while i <= last do
    local k, idem, fingerprint, ttl_s, command_id = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local answer
    if idem ~= '' then
      now = now or now_ms()
      idem_purge(now)
      answer = idem_first(idem, now)
    end
    if not answer then
      local position = redis.call('XADD', K_COMMANDS, '*', unpack(ARGV, i + 5, i + 4 + k))
      if idem ~= '' then idem_record(idem, position, command_id, fingerprint, ttl_s, now) end
      answer = { position, command_id, 0, fingerprint, '' }
    end
    answers[#answers + 1] = answer
    if answer[5] == '' then
      local waiting = open[answer[2]]
      if waiting then waiting[#waiting + 1] = answer else open[answer[2]] = { answer } end
    end
    i = i + 5 + k
  end
  return answers, last + 1, open
end

-- Applies the commands after the checkpoint (see the header for what it returns). `open`: the
-- answers of the commands this step appended, by command id (a list each), whose outcome each takes here.
local function run(ARGV, first_delivered, open)
  local read_meta = redis.call('HMGET', K_META, 'applied', 'agentIds', 'agentIdsFrom')
  local checkpoint = read_meta[1] or '0-0'
  -- The agent ids' index is whole through `agentIds` (the checkpoint a step of this version left
  -- it at): a step of a version that keeps no index moved the checkpoint past it, so it is kept
  -- whole only from a checkpoint it names (or from a workspace's first agent, RegisterAgent).
  -- `agentIdsFrom`: where a making of the index began (src/adapters/redis/agent-ids.ts), carried
  -- the same way, so the making is marked whole only if no such step came meanwhile.
  ids_whole = read_meta[2] ~= false and read_meta[2] == checkpoint
  local ids_from = read_meta[3] ~= false and read_meta[3] == checkpoint
  local last_outcome
  local applied = {}
  -- The commands refused in this step, for the projector's log: position, status, problem type, title.
  local refused = {}
  -- Entries are read READ_CHUNK at a time, up to MAX in all, so a step the budget ends early has
  -- not read (and parsed) the rest of MAX for nothing. `ended`: the step stopped before an entry
  -- it could read; `exhausted`: the stream holds nothing more.
  local read, ended, exhausted = 0, false, false
  while not ended and not exhausted and read < MAX do
    local want = math.min(READ_CHUNK, MAX - read)
    local entries = redis.call('XRANGE', K_COMMANDS, '(' .. checkpoint, '+', 'COUNT', want)
    read = read + #entries
    if #entries < want then exhausted = true end
    -- A step of a few commands is bounded by them: only a longer one reads the clock.
    if BUDGET_US > 0 and not STARTED_US and #entries > BUDGET_EVERY then STARTED_US = now_us() end
    for i = 1, #entries do
      local pos = entries[i][1]
      local f = {}
      local raw = entries[i][2]
      for j = 1, #raw, 2 do f[raw[j]] = raw[j + 1] end
      local at = position_ms(pos)
      -- Who sent the command (the API key's id and role) rides along when the command names it.
      local meta = {
        commandId = f.commandId, idempotencyKey = f.idempotencyKey, requestId = f.requestId,
        keyId = f.keyId, role = f.role,
      }
      meta_json = cjson.encode(meta)
      local outcome, c = apply(f, at, pos, meta)
      if outcome.status >= 400 then
        refused[#refused + 1] = pos
        refused[#refused + 1] = outcome.status
        refused[#refused + 1] = outcome.body.type or ''
        refused[#refused + 1] = outcome.body.title or ''
        outcome.body.commandId = f.commandId
        emit('CommandRejected', at, {
          commandId = f.commandId, command = f.type, target = c and (c.contactId or c.agentId) or nil,
          status = outcome.status, title = outcome.body.title, detail = outcome.body.detail,
        })
      end
      local text
      if outcome.json then
        text = '{"status":' .. outcome.status .. ',"body":' .. outcome.json .. '}'
      else
        text = encode_around({ status = outcome.status, body = outcome.body }, outcome.body)
      end
      last_outcome = redis.call('XADD', K_OUTCOMES, 'MAXLEN', '~', OUTCOME_KEEP, '*', 'commandId', f.commandId or '',
        'position', pos, 'outcome', text)
      local waiting = open and f.commandId and open[f.commandId]
      if waiting then for _, answer in ipairs(waiting) do answer[5] = text end end
      local rec = f.idempotencyKey and redis.call('HGET', K_IDEM, f.idempotencyKey)
      local r = rec and cjson.decode(rec)
      -- An expired key reused before this entry applied names a newer command: leave that record be.
      if r and r.commandId == f.commandId then redis.call('HSET', K_IDEM_OUTCOMES, f.idempotencyKey, text) end
      applied[#applied + 1] = pos
      checkpoint = pos
      if forgotten >= FORGET_BUDGET
        or (STARTED_US and #applied % BUDGET_EVERY == 0 and now_us() - STARTED_US >= BUDGET_US) then
        ended = i < #entries or not exhausted
        exhausted = exhausted and not ended
        break
      end
    end
  end
  deferred_flush()
  -- Each queue this step wrote to keeps its members of the last ENDED_WINDOW ms, at most ENDED_KEEP.
  if #ended_order > 0 then window_trim(K_ENDED, ended_order, position_ms(checkpoint), ENDED_WINDOW, ENDED_KEEP) end
  if last_outcome then
    -- Outcomes older than the time anyone waits for one go (the stream's own clock: entry ids).
    redis.call('XTRIM', K_OUTCOMES, 'MINID', '~', int(position_ms(last_outcome) - OUTCOME_KEEP_MS))
  end
  if #applied > 0 then
    local moved = { 'applied', checkpoint }
    if ids_whole then moved[#moved + 1] = 'agentIds'; moved[#moved + 1] = checkpoint end
    if ids_from then moved[#moved + 1] = 'agentIdsFrom'; moved[#moved + 1] = checkpoint end
    redis.call('HSET', K_META, unpack(moved))
    if not ids_whole and read_meta[2] then redis.call('HDEL', K_META, 'agentIds') end
    if not ids_from and read_meta[3] then redis.call('HDEL', K_META, 'agentIdsFrom') end
    redis.call('XACK', K_COMMANDS, GROUP, unpack(applied))
    -- The group delivers from the checkpoint on: projectors wake on the next unapplied entry and
    -- never receive (read) entries this step already read.
    redis.call('XGROUP', 'SETID', K_COMMANDS, GROUP, checkpoint)
  end
  local delivered = {}
  for i = first_delivered, #ARGV do delivered[#delivered + 1] = ARGV[i] end
  if #delivered > 0 then redis.call('XACK', K_COMMANDS, GROUP, unpack(delivered)) end
  local more = 0
  if not exhausted then more = 1 end
  return { #applied, checkpoint, more, refused }
end

local function step(KEYS, ARGV)
  globals_reset()
  K_COMMANDS, K_EVENTS, K_OUTCOMES, K_META = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
  K_QUEUE, K_SKILLSETS, K_CAND, K_WAKE = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
  K_STATS, K_AGENTS, K_CONTACTS, K_POOLS = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
  K_PHEADS, K_QINDEX, K_QHEADS, K_IDEM, K_ASETS = KEYS[13], KEYS[14], KEYS[15], KEYS[16], KEYS[17]
  K_IDEM_OUTCOMES, K_FINISHED, K_TIMERS, K_ENDED, K_IDEM_EXPIRY = KEYS[18], KEYS[19], KEYS[20], KEYS[21], KEYS[22]
  K_AGENT_IDS = KEYS[23]
  WORKSPACE, GROUP = ARGV[2], ARGV[3]
  MAX, OUTCOME_KEEP, SKILL_SET_LIMIT = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
  OUTCOME_KEEP_MS = tonumber(ARGV[7])
  BUDGET_US = tonumber(ARGV[8]) or 0
  STARTED_US = nil
  -- A step appending more than a few commands counts its appends in its budget too: they are all
  -- appended, and it applies for what is left of it.
  if BUDGET_US > 0 and appends_over(ARGV, BUDGET_EVERY) then STARTED_US = now_us() end
  WORKSPACE_JSON = cjson.encode(WORKSPACE)
  ids_whole = false
  meta_json = nil
  settings_cache = nil
  arrival = nil
  forgotten = 0
  DEFAULT_SETTINGS = default_settings()
  ended_queues, ended_order = {}, {}
  deferred_reset()
  routing_reset()
  local appended, first_delivered, open = append_commands(ARGV)
  if #appended == 0 then return run(ARGV, first_delivered) end
  -- The appended commands are the caller's to name whatever happens next: a failure to apply
  -- them is answered, not raised (handlers write nothing before their checks pass).
  local ok, result = pcall(run, ARGV, first_delivered, open)
  if not ok then
    -- Nothing of the failed run is an outcome: the loop applies the commands later.
    for _, waiting in pairs(open) do for _, answer in ipairs(waiting) do answer[5] = '' end end
    return { -1, '', 0, {}, appended, type(result) == 'table' and (result.err or '?') or tostring(result) }
  end
  result[5] = appended
  return result
end

return step(KEYS, ARGV)
