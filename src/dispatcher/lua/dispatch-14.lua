--[[
  Makes routing decisions by rule 1 (docs/ROUTING.md, src/domain/routing.ts): repeatedly, the
  first queued contact in routing order (priority, then arrival) that has an eligible agent goes
  to the longest available of those agents. Each decision is atomic: the contact leaves its
  queues in the same step that gives it an agent, the agent leaves its pool when it is full, both
  documents change and AssignmentMade is appended, recording in meta.basedOn the command-stream
  position (the projector checkpoint) the decision was based on. Several dispatchers may call it.

  It never walks the queue or the agents. The candidates zset holds the skill-set queue of every
  contact that arrived and the pool (skill set) of every agent that became able to serve
  something, scored by a lower bound of the routing order of the contact it would lead to. The
  lowest candidate is taken:
  - a queue: when no lower candidate remains, its head is given to the head of the first pool (in
    LAA order) holding all its skills among the pools of its rarest skill, and the candidate is
    scored by the next head; with no such pool it is dropped (no contact of the queue has one);
  - a pool: the first non-empty skill-set queue whose skills its agents hold is found (from its
    score on), and the candidate is scored by that queue's head; when no lower candidate remains,
    that head is the first contact with an eligible agent, and it is assigned (to the longest
    available agent that can take it, in this pool or another).
  Scores only rise (contacts leave, agents leave), so a candidate re-scored lazily stays a lower
  bound, and the lowest candidate is always rule 1's next decision. When the set is empty no
  queued contact has an eligible available agent.

  A contact some agents turned down (rejected, or let its offer expire: `excludedAgents`, its last
  100) is not offered to them again, so it may be blocked while the contacts behind it in its queue are not.
  A queue's contacts are then looked at in order until one has an eligible agent (those without
  exclusions all share the queue's LAA); the candidate is re-scored by that contact when a lower
  candidate exists, and a queue whose contacts are all blocked is passed over (a pool looks at the
  next queue it serves). Blocked contacts stay blocked until an agent changes, which makes its pool
  a candidate that finds their queue again by its head.

  With the workspace's offerTimeoutMs > 0 (meta "settings"), a decision is an offer: the contact
  is `offered`, the agent `reserved` (the offer takes one unit of its capacity), and the offer's
  timeout is a timer (KEYS[13]) that the clock turns into an ExpireOffer command.

  KEYS[1] event stream                 KEYS[7]  agent documents (hash)
  KEYS[2] meta (projector checkpoint)  KEYS[8]  contact documents (hash)
  KEYS[3] queue (arrival order)        KEYS[9]  pools (lexicographic zset)
  KEYS[4] skill sets                   KEYS[10] pool heads (lexicographic zset)
  KEYS[5] candidates                   KEYS[11] skill-set queues (lexicographic zset)
  KEYS[6] stats                        KEYS[12] queue heads
                                       KEYS[13] timers (offers' timeouts)
                                       KEYS[14] served (each queue's recent decisions:
                                                "<queue>|<ms, 15 digits>|<waited ms>|<contact>")

  Every key the step touches is one of these.

  ARGV[1] key prefix of the workspace
  ARGV[2] workspace name
  ARGV[3] most decisions in this call
  ARGV[4] most reads in this call (the bound on its cost; a walk that runs out resumes next call)
  ARGV[5] most skill subsets an agent looks up directly rather than walking the queue heads
  ARGV[6] optional ('' for none): the time of the decisions (ms), instead of Redis's clock (a
          rebuild replays a decision at the time it was made)
  ARGV[7] optional: the step's time budget in microseconds (0 or none: no bound but ARGV[3] and
          ARGV[4]): once this long has passed since the step began (Redis's clock, TIME, looked at
          after every BUDGET_EVERY decisions), the step ends there, its candidates left for the
          next (more: 1), so a backlog drains in steps of about this length, never in one

  Returns {assignments made, more work left (0|1), the earliest timer's due time (ms; -1: none)}:
  the dispatcher runs its clock step only when a timer is due, and sets its alarm by it otherwise.
]]
--@include "globals"
-- The file runs as a Redis Function too (src/adapters/redis/scripts.ts): the top level only
-- defines; each call's keys, arguments and state are set in `step`, at the end.
local K_EVENTS, K_META, K_QUEUE, K_SKILLSETS
local K_CAND, K_STATS, K_AGENTS, K_CONTACTS
local K_POOLS, K_PHEADS, K_QINDEX, K_QHEADS
local K_TIMERS, K_SERVED
-- How long a decision counts in its queue's service rate (the estimated wait's window), ms.
local SERVED_WINDOW = 300000
-- The most recent decisions kept per queue (the window holds fewer when its queue is busier).
local SERVED_KEEP = 64
local WORKSPACE, MAX_DECISIONS, MAX_WORK
local ENUMERATE_MAX

--@include "json"
--@include "time"
--@include "documents"
--@include "deferred"
--@include "routing"

local WALK -- members read at a time in a walk: 64, or MAX_WORK when less
local FIRST_TRY = 8 -- pool heads read under a contact's first skill before looking for its rarest
-- FIRST_TRY and WALK as redis.call arguments, set by each step: Redis 7.0 formats a Lua number
-- argument with snprintf("%.17g"), about 0.3 us each, so steps give strings.
local FIRST_TRY_ARG, WALK_ARG
local work
-- Skills (each as a pool-heads range: a skill, or "<channel>/<skill>") no available agent's pool
-- holds, as this step found them. A dispatch step only takes agents out of pools (least-occupied
-- moves an agent within the pool it is in), so a range found empty stays empty until the step
-- ends: the channel range of a workspace whose agents all take any channel is read once a step,
-- not once a decision.
local no_heads
-- The workspace's settings, read once a step: its channels, whether priority aging is in force,
-- and its agent selection.
local channels, aging, strategy

-- The pool-heads member's "<key>|<agent>" (the order of agents: LAA first, ties by id). The key is
-- the available-since, after the share in use under least-occupied: ":<12 digits>" for a share of
-- 10 or more (routing.lua `seat_key`).
local function head_tail(m)
  return string.match(m, '^[^|]*|(:?%d+|[^ ]*) ')
end

-- What `holds` looks for, made once per lookup: each skill of `skills` but `under` (the members
-- looked at are all under it) as an inner element of a pool-heads member's skill set
-- ("<a>,<b>,<c>", after the member's one space), as its first, and as its last (the set's last
-- characters: ",<skill>", or " <skill>" when it is the only one). A walk reads up to as many
-- members as there are skill sets holding a skill (1,024), each a few hundred bytes: finding the
-- skill in place, instead of copying the set between commas for every member, halves the check.
local function needles(skills, under)
  local out = {}
  for i = 1, #skills do
    local s = skills[i]
    if s ~= under then out[#out + 1] = { ',' .. s .. ',', ' ' .. s .. ',', -(#s + 1), ',' .. s, ' ' .. s } end
  end
  return out
end

-- Whether the pool-heads member `m`, its one space at `sp`, holds every skill of `wanted` (needles).
-- Neither skills nor ids hold " " or ",", so a match from the space on is a whole element.
local function holds(m, sp, wanted)
  for i = 1, #wanted do
    local w = wanted[i]
    if not (string.find(m, w[1], sp, true) or string.find(m, w[2], sp, true)) then
      local last = string.sub(m, w[3])
      if last ~= w[4] and last ~= w[5] then return false end
    end
  end
  return true
end

-- The head ("<since>|<agent>") of the first pool-heads member holding every skill of `wanted`.
local function fits(members, wanted)
  for j = 1, #members do
    local m = members[j]
    if holds(m, string.find(m, ' ', 1, true), wanted) then return head_tail(m) end
  end
  return nil
end

-- The Longest Available Agent holding every skill, as "<since>|<agent>": the first pool, in LAA
-- order of its head, among the pools holding the rarest skill, whose skill set holds every other
-- skill too. The walk reads at most the number of distinct agent skill sets holding that skill (a
-- limit).
local function longest_available_in(skills)
  for i = 1, #skills do
    if no_heads[skills[i]] then return nil end
  end
  if #skills == 1 then
    local lo, hi = lex_bounds(skills[1])
    local m = redis.call('ZRANGEBYLEX', K_PHEADS, lo, hi, 'LIMIT', '0', '1')[1]
    work = work + 1
    if not m then no_heads[skills[1]] = true end
    return m and head_tail(m)
  end
  -- Any skill's range finds the same agent; the first skill's is tried briefly, then the rarest.
  local rarest = skills[1]
  local lo, hi = lex_bounds(rarest)
  local first = redis.call('ZRANGEBYLEX', K_PHEADS, lo, hi, 'LIMIT', '0', FIRST_TRY_ARG)
  work = work + 1 + #first
  if #first == 0 then no_heads[rarest] = true end
  local found = fits(first, needles(skills, rarest))
  if found or #first < FIRST_TRY then return found end
  local n
  for i = 1, #skills do
    lo, hi = lex_bounds(skills[i])
    local c = redis.call('ZLEXCOUNT', K_PHEADS, lo, hi)
    work = work + 1
    if c == 0 then
      no_heads[skills[i]] = true
      return nil
    end
    if not n or c < n then rarest, n = skills[i], c end
  end
  lo, hi = lex_bounds(rarest)
  local wanted = needles(skills, rarest)
  while true do
    local batch = redis.call('ZRANGEBYLEX', K_PHEADS, lo, hi, 'LIMIT', '0', WALK_ARG)
    work = work + 1 + #batch
    found = fits(batch, wanted)
    if found then return found end
    if #batch < WALK then return nil end
    lo = '(' .. batch[#batch]
  end
end

-- The first agent of pool `name` not in `excluded` (a set of `n_excluded`), as "<key>|<agent>"; nil
-- when they are all excluded. At most n_excluded + 1 members are read.
local function first_not_excluded(name, excluded, n_excluded)
  local plo, phi = lex_bounds(name)
  local members = redis.call('ZRANGEBYLEX', K_POOLS, plo, phi, 'LIMIT', '0', int(n_excluded + 1))
  work = work + 1 + #members
  for k = 1, #members do
    local t = string.sub(members[k], #name + 2)
    if not excluded[string.match(t, '|(.*)$')] then return t end
  end
  return nil
end

-- The Longest Available Agent holding every skill and not in `excluded` (a set), as
-- "<since>|<agent>": the pools are walked in LAA order of their heads; in each, the first agent
-- not excluded (at most as many reads as there are exclusions); a pool whose head comes after the
-- best found ends the walk.
local function longest_available_except_in(skills, excluded, n_excluded)
  local under = skills[1]
  local lo, hi = lex_bounds(under)
  local wanted = needles(skills, under)
  local best
  while true do
    local batch = redis.call('ZRANGEBYLEX', K_PHEADS, lo, hi, 'LIMIT', '0', WALK_ARG)
    work = work + 1 + #batch
    for j = 1, #batch do
      local m = batch[j]
      local tail = head_tail(m)
      if best and sorts_before(best, tail) then return best end
      local sp = string.find(m, ' ', 1, true)
      if holds(m, sp, wanted) then
        local t = first_not_excluded(string.sub(m, sp + 1), excluded, n_excluded)
        if t and (not best or sorts_before(t, best)) then best = t end
      end
    end
    if #batch < WALK then break end
    lo = '(' .. batch[#batch]
  end
  return best
end

-- A queue's skills (each "<channel>/<skill>") without their channel: the names the pools of agents
-- who take any channel use. Kept for the step.
local bare_of
local function bare(skills)
  local key = table.concat(skills, ',')
  local out = bare_of[key]
  if not out then
    out = {}
    for i = 1, #skills do out[i] = string.match(skills[i], '/(.*)$') or skills[i] end
    bare_of[key] = out
  end
  return out
end

-- The earlier of two "<since>|<agent>" heads, as the agent's id.
local function earlier(x, y)
  local t = x
  if not t or (y and sorts_before(y, t)) then t = y end
  return t and string.match(t, '|(.*)$')
end

-- Most-skilled: a skill set's level on each skill name ("Billing#3": Billing at 3; a plain name:
-- 1), kept for the step.
local levels_of
local function levels(set)
  local l = levels_of[set]
  if not l then
    l = {}
    for s in string.gmatch(set, '[^,]+') do
      local base, n = string.match(s, '^(.*)#(%d+)$')
      if base then n = tonumber(n) else base, n = s, 1 end
      if not l[base] or l[base] < n then l[base] = n end
    end
    levels_of[set] = l
  end
  return l
end

-- The sum of a skill set's levels on the skill names a contact needs (src/domain/routing.ts
-- `skillScore`).
local function skill_score(set, skills)
  local l = levels(set)
  local sum = 0
  for i = 1, #skills do sum = sum + (l[string.match(skills[i], '^(.*)#%d+$') or skills[i]] or 0) end
  return sum
end

-- Whether (score, tail) beats the best so far: a higher score, then the earlier tail.
local function better(score, tail, best_score, best_tail)
  return not best_tail or score > best_score or (score == best_score and sorts_before(tail, best_tail))
end

-- Most-skilled: the agent holding every skill (and not in `excluded`, a set, when given) with the
-- highest skill score, then longest available, as its score and "<key>|<agent>". Every pool
-- holding the rarest of the skills is looked at (at most the number of distinct agent skill sets
-- holding it, a limit); in a pool, its first agent not excluded (at most as many reads as
-- exclusions).
local function most_skilled_in(skills, excluded, n_excluded)
  -- Under the rarest of the skills: the fewest pools to look at.
  local under = skills[1]
  if #skills > 1 then
    local n
    for i = 1, #skills do
      local clo, chi = lex_bounds(skills[i])
      local c = redis.call('ZLEXCOUNT', K_PHEADS, clo, chi)
      work = work + 1
      if c == 0 then return nil end
      if not n or c < n then under, n = skills[i], c end
    end
  end
  local lo, hi = lex_bounds(under)
  local wanted = needles(skills, under)
  local best_score, best
  while true do
    local batch = redis.call('ZRANGEBYLEX', K_PHEADS, lo, hi, 'LIMIT', '0', WALK_ARG)
    work = work + 1 + #batch
    for j = 1, #batch do
      local m = batch[j]
      local sp = string.find(m, ' ', 1, true)
      if holds(m, sp, wanted) then
        local name = string.sub(m, sp + 1)
        local score = skill_score(name, skills)
        local tail = head_tail(m)
        if excluded and better(score, tail, best_score, best) then tail = first_not_excluded(name, excluded, n_excluded) end
        if tail and better(score, tail, best_score, best) then best_score, best = score, tail end
      end
    end
    if #batch < WALK then break end
    lo = '(' .. batch[#batch]
  end
  return best_score, best
end

-- Most-skilled over the channel's pools and those of agents who take any channel, as the agent's id.
local function most_skilled(skills, excluded, n_excluded)
  local s1, t1 = most_skilled_in(skills, excluded, n_excluded)
  local s2, t2 = most_skilled_in(bare(skills), excluded, n_excluded)
  if t2 and better(s2, t2, s1, t1) then s1, t1 = s2, t2 end
  return t1 and string.match(t1, '|(.*)$')
end

-- The agent for a queue's skills (on its channel) by the workspace's selection: the earlier of the
-- first of the channel's pools and the first of the pools of agents who take any channel (pools
-- order their agents by available-since, or by share in use then available-since); most-skilled
-- looks at every pool holding the skills.
local function longest_available(skills)
  if strategy == 'most-skilled' then return most_skilled(skills) end
  return earlier(longest_available_in(skills), longest_available_in(bare(skills)))
end

local function longest_available_except(skills, excluded, n_excluded)
  if strategy == 'most-skilled' then return most_skilled(skills, excluded, n_excluded) end
  return earlier(
    longest_available_except_in(skills, excluded, n_excluded),
    longest_available_except_in(bare(skills), excluded, n_excluded)
  )
end

-- The longest available of a contact's preferred agents that may take it now (it holds every
-- skill, has room on its channel, did not turn it down): at most one read per preferred agent.
local function preferred_agent(c, excluded)
  local channel = channel_of(c)
  local best, best_score
  for i = 1, #c.preferredAgents do
    local id = c.preferredAgents[i]
    if not (excluded and excluded[id]) then
      local a = doc_get(K_AGENTS, id)
      work = work + 1
      if a and can_take_on(a, channel) then
        local held = {}
        for j = 1, #a.skills do held[a.skills[j]] = true end
        local all = true
        for j = 1, #c.skills do
          if not held[c.skills[j]] then
            all = false
            break
          end
        end
        local since = all and (type(a.capacity) == 'number' and a._since or (a._chsince and a._chsince[channel]))
        if since then
          local tail = pool_tail(seat_key(occupancy(a), since), id)
          local score = strategy == 'most-skilled' and skill_score(table.concat(a.skills, ','), c.skills) or 0
          if better(score, tail, best_score, best) then best_score, best = score, tail end
        end
      end
    end
  end
  return best and string.match(best, '|(.*)$')
end

-- The agents a contact may not be offered to (its last EXCLUDED_KEEP: includes/routing.lua), as a
-- set and a count; nil when none.
local function exclusions(c)
  local list = c.excludedAgents
  if not list or #list == 0 then return nil end
  local set, n = {}, 0
  for i = math.max(1, #list - EXCLUDED_KEEP + 1), #list do
    if not set[list[i]] then n = n + 1 end
    set[list[i]] = true
  end
  return set, n
end

-- The most skills a queued contact needs. Read once a step: within a step contacts only leave,
-- so a stale value only makes a lookup try subsets that are empty.
local widest_queued

local function binomial(n, k)
  local r = 1
  for i = 1, k do r = r * (n - i + 1) / i end
  return r
end

-- The queue names a pool looks up directly: each subset of its skills up to `widest` skills, as
-- queues spell it (for a pool of agents who take any channel, whose skills are bare, on each
-- channel, channel by channel); nil when there are more than ENUMERATE_MAX. Each name is joined
-- from the skills as spelled, once. Kept for the step (a step looks at the same pools again and
-- again).
local names_of
local function lookup_names(skills, widest, anywhere)
  local key = widest .. '#' .. table.concat(skills, ',')
  local known = names_of[key]
  if known ~= nil then return known or nil end
  local subsets = 0
  for k = 1, widest do subsets = subsets + binomial(#skills, k) end
  if subsets * (anywhere and #channels or 1) > ENUMERATE_MAX then
    names_of[key] = false
    return nil
  end
  local names, chosen, spelled = {}, {}, skills
  local function walk(first, depth)
    for i = first, #spelled do
      chosen[depth] = spelled[i]
      names[#names + 1] = table.concat(chosen, ',', 1, depth)
      if depth < widest then walk(i + 1, depth + 1) end
    end
  end
  for c = 1, anywhere and #channels or 1 do
    if anywhere then spelled = on_channel(skills, channels[c]) end
    walk(1, 1)
  end
  names_of[key] = names
  return names
end

-- The skills of a skill set's name, kept for the step.
local skills_of
local function split_skills(name)
  local skills = skills_of[name]
  if not skills then
    skills = {}
    for skill in string.gmatch(name, '[^,]+') do skills[#skills + 1] = skill end
    skills_of[name] = skills
  end
  return skills
end


-- A pool's skills as queue names spell them ("<channel>/<skill>"), as a set: those of a pool of
-- agents who take any channel on every channel (its skills are bare). A walk over the queue heads
-- looks each queue's skills up in it as they are, with no string made per skill but the skill
-- itself. Kept for the step (channels are added, never removed, so every queue's is among them).
local held_of
local function held_set(skills, anywhere)
  local key = table.concat(skills, ',')
  local held = held_of[key]
  if not held then
    held = {}
    for i = 1, #skills do
      if anywhere then
        for c = 1, #channels do held[channels[c] .. '/' .. skills[i]] = true end
      else
        held[skills[i]] = true
      end
    end
    held_of[key] = held
  end
  return held
end

-- The first non-empty skill-set queue, in routing order of its head and from score `from` on,
-- whose skills are all among `skills` (a pool's: on one channel, or bare for agents who take any
-- channel, who serve the queues of every channel). Returns its head's score and its name; or nil
-- and the score to resume from when the walk used its share of the call; or nil when there is none.
local function first_servable(skills, from, skip)
  if not widest_queued then
    local top = redis.call('ZRANGE', K_SKILLSETS, '-1', '-1', 'WITHSCORES')
    work = work + 1
    widest_queued = tonumber(top[2]) or 0
  end
  if widest_queued == 0 then return nil end
  local anywhere = not string.find(skills[1], '/', 1, true)
  local names = lookup_names(skills, math.min(widest_queued, #skills), anywhere)
  if names then
    local scores = redis.call('ZMSCORE', K_QHEADS, unpack(names))
    work = work + 1 + #names
    local best_score, best_name
    for i = 1, #names do
      local s = tonumber(scores[i])
      if s and s >= from and not skip[names[i]] and (not best_score or s < best_score) then
        best_score, best_name = s, names[i]
      end
    end
    return best_score, best_name
  end
  local held = held_set(skills, anywhere)
  local lo, share = int(from), math.max(WALK, MAX_WORK - work)
  local seen = 0
  -- The batch before: under priority aging queue heads can tie, so the next batch starts at the
  -- last head's score itself (its ties not passed by) and leaves out the names already read.
  local before = {}
  -- Names only: Redis formats every score it sends (WITHSCORES: about 26 us a batch of 64 here,
  -- against 5.5 us without), and the walk needs two, the head's it finds and where it stops.
  while true do
    local batch = redis.call('ZRANGEBYSCORE', K_QHEADS, lo, '+inf', 'LIMIT', '0', WALK_ARG)
    work = work + 1 + #batch
    local read = {}
    for j = 1, #batch do
      -- Each of the queue's skills, between commas, looked up as it is spelled.
      local name, at = batch[j], 1
      local ok = not before[name] and not skip[name]
      read[name] = true
      while ok do
        local comma = string.find(name, ',', at, true)
        if not held[string.sub(name, at, comma and comma - 1)] then
          ok = false
          break
        end
        if not comma then break end
        at = comma + 1
      end
      if ok then return tonumber(redis.call('ZSCORE', K_QHEADS, name)), name end
    end
    if #batch < WALK then return nil end
    seen = seen + WALK
    local last = redis.call('ZSCORE', K_QHEADS, batch[#batch])
    work = work + 1
    -- A whole batch of one score already read (more ties than a batch): past that score.
    local fresh = false
    for j = 1, #batch do
      if not before[batch[j]] then fresh = true end
    end
    if fresh then lo, before = last, read else lo, before = '(' .. last, {} end
    if seen >= share then return nil, nil, tonumber(last) end
  end
end

local made
-- The queues this step made decisions for, in the order of their first (window_trim at the end).
local served_queues, served_order

local now, now_015, based_on, offer_timeout
-- Whether `now` is Redis's clock (TIME), not a time given (tests): the events are appended at it.
local own_clock
-- The step's time budget (ARGV[7]) and when it began, in microseconds of Redis's clock
-- (now_us; looked at every BUDGET_EVERY decisions: includes/time.lua).
local BUDGET_US, STARTED_US
selection = function() return strategy end

-- A step's start: the time, the checkpoint it decides on, and the workspace's settings.
local function begin(ARGV)
  made = 0
  served_queues, served_order = {}, {}
  BUDGET_US = tonumber(ARGV[7]) or 0
  local at = tonumber(ARGV[6])
  -- One read of the clock gives the decisions' time and the budget's start.
  local us = (not at or BUDGET_US > 0) and now_us() or nil
  now = at or math.floor(us / 1000)
  own_clock = not at
  STARTED_US = BUDGET_US > 0 and us or nil
  now_015 = string.format('%015d', now)
  based_on = redis.call('HGET', K_META, 'applied') or '0-0'
  offer_timeout = 0
  channels = { 'voice' }
  -- Priority aging in force: every queue member is keyed (see routing.lua).
  aging = false
  strategy = 'longest-available'
  local st = redis.call('HGET', K_META, 'settings')
  if st then
    local decoded = cjson.decode(st)
    offer_timeout = tonumber(decoded.offerTimeoutMs) or 0
    if type(decoded.channels) == 'table' and #decoded.channels > 0 then channels = decoded.channels end
    aging = tonumber(decoded.priorityWeightMs) ~= nil
    if decoded.agentSelection then strategy = decoded.agentSelection end
  end
end

-- `after`: the member behind `c` in its queue when the caller read `c` as its head (false: none).
local function assign(c, a, at_head, after)
  queue_remove(c, at_head, after)
  c.agentId = a.id
  c._assignedAt = now
  c.assignedAt = iso(now)
  c.waitedMs = now - queued_ms(c)
  local offer
  if offer_timeout > 0 then
    -- An offer: the agent has until then to accept it.
    c.state = 'offered'
    c._offers = (c._offers or 0) + 1
    c._offer = c._offers
    c._expiresMs = now + offer_timeout
    c.offerExpiresAt = iso(c._expiresMs)
    redis.call('ZADD', K_TIMERS, int(c._expiresMs), offer_timer(c))
    local offers = a._offers or {}
    offers[#offers + 1] = c.id
    a._offers = offers
    offer = { id = c._offer, expiresAt = c.offerExpiresAt }
  else
    c.state = 'assigned'
    -- Assigned: its maximum wait, preference and routing steps no longer apply.
    wait_timers_end(c)
  end
  doc_put(K_CONTACTS, c)
  -- The agent's keys in its pools as they were (its load is about to change).
  local occ = occupancy(a)
  a.activeContacts[#a.activeContacts + 1] = c.id
  local channel = channel_of(c)
  if type(a.capacity) == 'number' then
    if not can_take_work(a) then
      pool_leave(a.skills, seat_key(occ, a._since), a.id, true)
      a._since = nil
      a.availableSince = cjson.null
    end
  else
    -- Capacity per channel: the contact takes room on its channel only.
    load_add(a, channel, 1)
    if not has_room_on(a, channel) then
      local chsince = a._chsince or {}
      pool_leave(on_channel(a.skills, channel), seat_key(occ, chsince[channel]), a.id, true)
      chsince[channel] = nil
      if a.availableSinceByChannel then a.availableSinceByChannel[channel] = nil end
      local first
      for _, s in pairs(chsince) do
        if not first or s < first then first = s end
      end
      if first then
        a._since, a.availableSince = first, iso(first)
      else
        a._since, a._chsince, a.availableSince, a.availableSinceByChannel = nil, nil, cjson.null, nil
      end
    end
  end
  if occ then
    -- Least-occupied: its load went up, so it moves back within each pool it stays in (joined
    -- at its new key first: the pool never looks empty, so it stays a candidate).
    local after = occupancy(a)
    for _, seat in pairs(seats(a, a.skills, a._since, a._chsince)) do
      pool_join(seat[1], seat_key(after, seat[3]), a.id)
      pool_leave(seat[1], seat_key(occ, seat[3]), a.id)
    end
  end
  a.state = agent_state(a)
  doc_put(K_AGENTS, a)
  stat_add('assignments')
  -- The queue's service rate: this decision counts for the window (its older ones go at the end
  -- of the step, once per queue: window_trim).
  local queue = route_name(c)
  redis.call('ZADD', K_SERVED, '0', queue .. '|' .. now_015 .. '|' .. c.waitedMs .. '|' .. c.id)
  if not served_queues[queue] then
    served_queues[queue] = true
    served_order[#served_order + 1] = queue
  end
  local data = {
    contactId = c.id, agentId = a.id, skills = public_skills(c.skills, 'minLevel'), channel = channel,
    priority = c.priority,
    queuedAt = c.queuedAt, assignedAt = c.assignedAt, waitedMs = c.waitedMs, offer = offer,
  }
  local env = { type = 'AssignmentMade', workspace = WORKSPACE, at = c.assignedAt, data = data,
    meta = { causationId = c._cmd, basedOn = based_on } }
  -- Nothing in it is raw JSON or an empty list: Redis's own encoder writes it.
  local event = cjson.encode(env)
  if own_clock then xadd_at(K_EVENTS, now, 'type', 'AssignmentMade', 'event', event)
  else redis.call('XADD', K_EVENTS, '*', 'type', 'AssignmentMade', 'event', event) end
  made = made + 1
end

-- The contact at the head of a skill-set queue, and the member behind it (false: none).
local function queue_head(name)
  local lo, hi = lex_bounds(name)
  local m = redis.call('ZRANGEBYLEX', K_QINDEX, lo, hi, 'LIMIT', '0', '2')
  return doc_get(K_CONTACTS, string.match(m[1], '|([^|]*)$')), m[2] or false
end

-- The first contact of a skill-set queue, in routing order and from order `from` on, that has an
-- eligible agent now. `plain` is the queue's LAA ignoring exclusions (the agent of every contact
-- that has none). Returns the contact, its agent's id, its routing order, the member behind it
-- (false: none; nil: not read) and whether the contact heads the queue (its first member: under
-- priority aging a contact behind a blocked head can have the head's very order, so the order
-- does not say it). Returns nil when every contact from `from` on is blocked; false and
-- the order just past the last contact looked at when the walk used its share of the call (blocked
-- contacts stay blocked until an agent changes, so the caller's candidate may resume there).
local function first_assignable(name, plain, from)
  local lo, hi = lex_bounds(name)
  if from and aging then
    lo = '[' .. name .. '|A|' .. string.format('%016d', from)
  elseif from then
    local p = math.floor(from / PRIORITY_STEP)
    lo = '[' .. name .. '|' .. p .. '|' .. string.format('%016d', from - p * PRIORITY_STEP)
  end
  -- The head and the one behind it first (the head is rarely blocked); then longer batches.
  local size = 1
  local first = not from
  while true do
    local batch = redis.call('ZRANGEBYLEX', K_QINDEX, lo, hi, 'LIMIT', '0', int(size + 1))
    work = work + 1 + #batch
    local n = math.min(#batch, size)
    for j = 1, n do
      local c = doc_get(K_CONTACTS, string.match(batch[j], '|([^|]*)$'))
      work = work + 1
      local excluded, count = exclusions(c)
      local agent = plain
      if c.preferredAgents then
        agent = preferred_agent(c, excluded)
      elseif excluded then
        agent = longest_available_except(split_skills(name), excluded, count)
      end
      local order = order_of(c)
      if agent then return c, agent, order, batch[j + 1] or false, first and j == 1 end
      -- Out of reads: resume at the next member's order. Never inside a run of one order (under
      -- priority aging keys set under different weights can tie): resuming there would pass the
      -- rest by, or read the run again for ever, so the run is read to its end first (its length
      -- is at most the number of weights the workspace has had).
      if work >= MAX_WORK and (j < #batch) then
        local next_order = member_score(name, batch[j + 1])
        if next_order ~= order then return false, next_order end
      end
    end
    if #batch <= size then return nil end
    first = false
    lo = '(' .. batch[size]
    size = WALK
  end
end

-- The most queues a decision looks at for priority aging's exact tie (tie_break).
local TIE_MAX = 64

-- Priority aging's one exact tie: keys set under different weights can be equal across queues
-- (docs/ROUTING.md), and rule 1 then takes the lower contact id, as a queue's members sort within
-- one queue. `c`, found by routing order at key `order` with agent `agent` (at the head of its
-- queue or not, and the member behind it), gives way to a contact of another queue keyed `order`
-- too, with a lower id and an eligible agent. Without aging keys never tie: nothing is read.
-- Returns the contact, agent, at-head and member behind to assign.
local function tie_break(c, agent, order, at_head, after)
  if not aging then return c, agent, at_head, after end
  local tied = redis.call('ZRANGEBYSCORE', K_QHEADS, int(order), int(order), 'LIMIT', 0, TIE_MAX)
  work = work + 1 + #tied
  local own = route_name(c)
  for i = 1, #tied do
    local name = tied[i]
    if name ~= own then
      -- A queue's members at one key sort by contact id: a head with no lower id than c's means
      -- none behind it at this key has one either. Only then is its agent looked for.
      local lo, hi = lex_bounds(name)
      local head = redis.call('ZRANGEBYLEX', K_QINDEX, lo, hi, 'LIMIT', '0', '1')[1]
      work = work + 2
      local head_id = head and string.match(head, '|([^|]*)$')
      local plain = head_id and sorts_before(head_id, c.id) and longest_available(split_skills(name))
      if plain then
        -- The queue's head is at `order`: its walk reads that whole run before it may stop (false:
        -- none of the run has an eligible agent).
        local h, chosen, h_order, h_after, first = first_assignable(name, plain)
        if h and h_order == order and sorts_before(h.id, c.id) then
          -- The member behind h is known only when h heads its queue (false: none behind).
          c, agent, at_head, after = h, chosen, first, nil
          if first then after = h_after end
        end
      end
    end
  end
  return c, agent, at_head, after
end

-- Makes the step's decisions (see the header for what it returns).
local function run()
  local check_at = BUDGET_EVERY
  while made < MAX_DECISIONS and work < MAX_WORK do
    if STARTED_US and made >= check_at then
      check_at = made + BUDGET_EVERY
      if now_us() - STARTED_US >= BUDGET_US then break end
    end
    -- The lowest candidate, and the score of the next one.
    local top = redis.call('ZRANGE', K_CAND, '0', '1', 'WITHSCORES')
    work = work + 1
    if not top[1] then break end
    local member, next_score = top[1], tonumber(top[4])
    local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
    if kind == 'q' then
      -- A skill-set queue: its head is the first of its contacts, and they all need the same skills.
      local head_score = tonumber(redis.call('ZSCORE', K_QHEADS, id))
      work = work + 1
      if not head_score then
        redis.call('ZREM', K_CAND, member)
      elseif next_score and next_score < head_score then
        -- Lazily re-scored: a lower candidate comes first.
        redis.call('ZADD', K_CAND, int(head_score), member)
      else
        local agent = longest_available(split_skills(id))
        -- Assigning the head re-scores the candidate by the next head (or drops it with the queue).
        -- No agent for the head: none for any contact of the queue until some agent changes, and
        -- that agent's pool becomes a candidate.
        if not agent then
          redis.call('ZREM', K_CAND, member)
        else
          -- From the candidate's own score when a walk past blocked contacts moved it on.
          local from = tonumber(top[2])
          local c, chosen, order, after, first = first_assignable(id, agent, from > head_score and from or nil)
          if c == nil then
            -- Every contact of the queue is blocked (turned down by the agents there are).
            redis.call('ZREM', K_CAND, member)
          elseif c == false then
            -- Blocked up to here: resume after them.
            redis.call('ZADD', K_CAND, int(chosen), member)
          elseif order ~= head_score and next_score and next_score < order then
            -- Blocked contacts first: a lower candidate may come before the one found.
            redis.call('ZADD', K_CAND, int(order), member)
          else
            local at_head = first
            local agent_id
            -- `after` is the member behind a head (false: none, so taking it empties the queue).
            if not at_head then after = nil end
            c, agent_id, at_head, after = tie_break(c, chosen, order, at_head, after)
            assign(c, doc_get(K_AGENTS, agent_id), at_head, after)
          end
        end
      end
    elseif kind == 'c' then
      -- One contact (data written before queues were candidates).
      redis.call('ZREM', K_CAND, member)
      local c = doc_get(K_CONTACTS, id)
      if c and c.state == 'queued' then
        local excluded, n = exclusions(c)
        local agent
        local skills = on_channel(c.skills, channel_of(c))
        if c.preferredAgents then
          agent = preferred_agent(c, excluded)
        elseif excluded then
          agent = longest_available_except(skills, excluded, n)
        else
          agent = longest_available(skills)
        end
        if agent then assign(c, doc_get(K_AGENTS, agent)) end
      end
    else
      -- A pool: every agent in it holds the skill set `id`, so they all serve the same contacts.
      -- Its queues are looked at in routing order of their heads; one whose contacts are all
      -- blocked is passed over.
      local skills = split_skills(id)
      local from = tonumber(top[2])
      local outcome
      -- Queues looked at in this walk: the next is looked for from the same head score (under
      -- priority aging another queue's head can tie with it), these left out.
      local skip = {}
      while true do
        local score, name, resume = first_servable(skills, from, skip)
        if not score then
          outcome = resume and { 'rescore', resume } or { 'drop' }
          break
        end
        if next_score and next_score < score then
          -- Lazily re-scored: a lower candidate comes first.
          outcome = { 'rescore', score }
          break
        end
        -- No lower candidate: the first contact of this queue with an eligible agent is the one. If
        -- the queue's head has none, this pool is empty (its agents would be eligible).
        local plain = longest_available(split_skills(name))
        if not plain then
          outcome = { 'drop' }
          break
        end
        local c, chosen, order, after, first = first_assignable(name, plain)
        if c == false then
          -- Blocked up to here: the queue's own candidate resumes after them, and this pool looks
          -- at its next queue (blocked contacts wait for an agent to change).
          redis.call('ZADD', K_CAND, 'LT', int(chosen), queue_candidate(name))
          outcome = { 'rescore', score + 1 }
          break
        elseif c ~= nil and order == score then
          -- `after` is known only for the queue's head (one behind it at the head's order is not it).
          outcome = { 'assign', score, c, chosen, first, first and after or nil }
          break
        elseif c ~= nil then
          -- Past blocked contacts: another queue of this pool may have an earlier head. The queue's
          -- own candidate takes this contact, and this pool looks at its next queue.
          redis.call('ZADD', K_CAND, 'LT', int(order), queue_candidate(name))
          if not next_score or order < next_score then next_score = order end
        end
        -- The next queue this pool serves, after this one (at this head score or later).
        skip[name] = true
        from = score
        if work >= MAX_WORK then
          -- The next step starts past this score (it cannot know which queues this one read).
          outcome = { 'rescore', score + 1 }
          break
        end
      end
      local what = outcome[1]
      if what == 'rescore' then
        redis.call('ZADD', K_CAND, int(outcome[2]), member)
      elseif what == 'assign' then
        redis.call('ZADD', K_CAND, int(outcome[2]), member)
        local c, agent_id, at_head, after = tie_break(outcome[3], outcome[4], outcome[2], outcome[5], outcome[6])
        assign(c, doc_get(K_AGENTS, agent_id), at_head, after)
      elseif what == 'drop' then
        redis.call('ZREM', K_CAND, member)
      else
        break
      end
    end
  end
  -- Each queue this step served keeps its decisions of the last SERVED_WINDOW ms, at most SERVED_KEEP.
  window_trim(K_SERVED, served_order, now, SERVED_WINDOW, SERVED_KEEP)
  deferred_flush()
  local more = 0
  if redis.call('EXISTS', K_CAND) == 1 then more = 1 end
  local first_timer = redis.call('ZRANGE', K_TIMERS, '0', '0', 'WITHSCORES')[2]
  return { made, more, first_timer and tonumber(first_timer) or -1 }
end

local function step(KEYS, ARGV)
  globals_reset()
  K_EVENTS, K_META, K_QUEUE, K_SKILLSETS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
  K_CAND, K_STATS, K_AGENTS, K_CONTACTS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
  K_POOLS, K_PHEADS, K_QINDEX, K_QHEADS = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
  K_TIMERS, K_SERVED = KEYS[13], KEYS[14]
  WORKSPACE, MAX_DECISIONS, MAX_WORK = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  ENUMERATE_MAX = tonumber(ARGV[5])
  WALK = math.min(64, MAX_WORK)
  FIRST_TRY_ARG, WALK_ARG = int(FIRST_TRY), int(WALK)
  work = 0
  -- What a step keeps once computed lasts the step only (the workspace's skill sets and
  -- channels are another step's, or another workspace's, next time).
  bare_of, levels_of, names_of, skills_of, held_of = {}, {}, {}, {}, {}
  no_heads = {}
  widest_queued = nil
  deferred_reset()
  routing_reset()
  begin(ARGV)
  return run()
end

return step(KEYS, ARGV)
