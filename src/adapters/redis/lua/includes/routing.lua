-- Pools, queues and candidates, all in declared keys of the workspace:
--   K_POOLS     one zset, every member "<skill set>|<available-since, 15 digits>|<agent>" (score 0):
--               the available agents grouped by their whole skill set, LAA first in each pool
--               (ties by id, byte order).
--   K_PHEADS    one zset, every member "<skill>|<since>|<agent> <skill set>" (score 0): the head of
--               each non-empty pool, once under each of its skills. A skill's range lists the pools
--               holding that skill in LAA order of their heads; its first member is the LAA of the skill.
--   K_QINDEX    one zset, every member "<skill set>|<9 - priority>|<arrival, 16 digits>|<contact>"
--               (score 0): a range "<skill set>|…" is that skill set's queue in routing order.
--   K_QHEADS    one zset: every non-empty skill-set queue, scored by its head's routing order.
--   K_QUEUE     every queued contact scored by arrival (depth and longest wait).
--   K_SKILLSETS the non-empty skill-set queues, scored by their number of skills.
--   K_CAND      the dispatcher's candidates, each scored by a lower bound of the routing order of
--               the first contact it may lead to (0 when unknown): "q:<skill set>" (a skill-set queue:
--               its contacts all need the same skills, so its head stands for all of them) and
--               "p:<skill set>" (a pool: its agents all serve the same contacts). Every queued
--               contact that has an eligible agent is covered by a candidate whose score is at most
--               its routing order. ("c:<contact>", one contact, is only in data written before
--               queues were candidates.)
--   K_META      "excluded": how many queued contacts some agent turned down (see availability_sync).
--   K_ASETS     hash: "s:<skill set>" → registered agents with that skill set; "k:<skill>" → the
--               number of distinct agent skill sets holding the skill (the limit that bounds a walk).
-- Skills and ids never hold "|" or " " (API.md), every id character sorts after " " and every
-- skill character before "|", so these orders are the routing orders.
--
-- Channels: a contact's queue is named by its skills on its channel, "<channel>/<skill>" each
-- (voice/Billing,voice/English). An agent with one capacity number takes any channel: its pool is
-- named by its bare skills, and such pools serve the queues of every channel. An agent with
-- capacity per channel is in one pool per channel it has room on, named by its skills on that
-- channel, with that channel's available-since.

-- The most agents a contact remembers as having turned it down, its last ones
-- (MAX_EXCLUDED_AGENTS in src/domain/model.ts): a decision for it reads at most one pool member
-- more per fitting pool, and its document stays small; one written with more is read by its last.
local EXCLUDED_KEEP = 100
local PRIORITY_STEP = 17592186044416 -- 2^44: priority outranks arrival order

local function order_score(priority, seq)
  return (9 - priority) * PRIORITY_STEP + seq
end

-- Priority aging (the workspace's priorityWeightMs, src/domain/model.ts `agedKey`): a contact's
-- routing key is (tick + (9 - priority) * weight * TICKS_PER_MS) * 10 + (9 - priority), its tick
-- being its arrival in 1/TICKS_PER_MS ms since TICK_EPOCH, strictly increasing in a workspace
-- (`_tick`). The key (`_key`, a string: it passes 14 digits) is set each time the contact enters
-- its queue, with the weight then in force; its queue member is "<skill set>|A|<key, 16 digits>|<contact>".
-- A queue holds members of one kind only: the settings switch between strict and aged priority
-- only while no contact is queued.
local TICK_EPOCH = 1767225600000
local TICKS_PER_MS = 128
-- The weight in force (nil: strict priority); the projector points it at its settings.
local priority_weight = function() return nil end

-- A contact's routing order: its aged key, or its priority and arrival.
local function order_of(c)
  if c._key then return tonumber(c._key) end
  return order_score(c.priority, c._seq)
end

local function skillset_name(skills)
  return table.concat(skills, ',')
end

-- Skills as a channel's queues and pools name them.
local function on_channel(skills, channel)
  local out = {}
  for i = 1, #skills do out[i] = channel .. '/' .. skills[i] end
  return out
end

-- The name of a contact's queue: its skills on its channel.
local function route_name(c)
  return skillset_name(on_channel(c.skills, channel_of(c)))
end

-- The bounds of the lexicographic range of members that start with "<prefix>|".
local function lex_bounds(prefix)
  return '[' .. prefix .. '|', '(' .. prefix .. '|\255'
end

-- Agent selection (the workspace's agentSelection; the scripts point `selection` at their
-- settings). Under least-occupied a pool orders its agents by their share of capacity in use
-- (contacts in hand over capacity, on every channel together, in 1/10^7, 8 digits), then
-- available-since: an agent's key in a pool is "<share, 8 digits><since, 15 digits>" instead of
-- "<since, 15 digits>", and it moves within its pool whenever its load changes. Capacities are at
-- most 100 per channel and 16 channels, so distinct shares never round to the same key. A share
-- is at most 1 (8 digits) while capacity holds what the agent has in hand; one lowered below it
-- leaves a share of up to 1,600, written ":<share, 12 digits>" (':' sorts after every digit), so
-- keys still sort as the shares do.
local selection = function() return 'longest-available' end

-- An agent's share of capacity in use under least-occupied; nil otherwise.
local function occupancy(a)
  if selection() ~= 'least-occupied' then return nil end
  local total = 0
  if type(a.capacity) == 'number' then
    total = a.capacity
  else
    for _, n in pairs(a.capacity) do total = total + n end
  end
  return math.floor(#a.activeContacts * 10000000 / total)
end

-- An agent's key in a pool: its available-since, after its share of capacity in use if given.
local function seat_key(occ, since)
  if occ and occ >= 100000000 then return string.format(':%012d%015d', occ, since) end
  if occ then return string.format('%08d%015d', occ, since) end
  return string.format('%015d', since)
end

local function pool_tail(key, id)
  return key .. '|' .. id
end

-- The head of a pool as "<since15>|<agent>", or nil when the pool is empty.
local function pool_head(name)
  local lo, hi = lex_bounds(name)
  local m = redis.call('ZRANGEBYLEX', K_POOLS, lo, hi, 'LIMIT', '0', '1')[1]
  return m and string.sub(m, #name + 2)
end

local function pool_heads_move(skills, name, old, new)
  if old == new then return end
  local gone, added = {}, {}
  for i = 1, #skills do
    if old then gone[#gone + 1] = skills[i] .. '|' .. old .. ' ' .. name end
    if new then
      added[#added + 1] = '0'
      added[#added + 1] = skills[i] .. '|' .. new .. ' ' .. name
    end
  end
  if old then redis.call('ZREM', K_PHEADS, unpack(gone)) end
  if new then redis.call('ZADD', K_PHEADS, unpack(added)) end
end

-- Returns whether the pool held other agents already.
local function pool_join(skills, key, id)
  local name = skillset_name(skills)
  local head = pool_head(name)
  local tail = pool_tail(key, id)
  redis.call('ZADD', K_POOLS, '0', name .. '|' .. tail)
  if not head or sorts_before(tail, head) then pool_heads_move(skills, name, head, tail) end
  return head ~= nil
end

-- `at_head`: the caller knows the agent heads its pool (the dispatcher takes pool heads).
local function pool_leave(skills, key, id, at_head)
  local name = skillset_name(skills)
  local tail = pool_tail(key, id)
  if string.byte(key, 1) == 58 and not redis.call('ZSCORE', K_POOLS, name .. '|' .. tail) then
    -- A share of 10 or more joined before such shares were written ":<12 digits>" (their 9 to 11
    -- digits as they were): that member is the one that leaves.
    tail = pool_tail(string.format('%d', tonumber(string.sub(key, 2, 13))) .. string.sub(key, 14), id)
  end
  local head = at_head and tail or pool_head(name)
  redis.call('ZREM', K_POOLS, name .. '|' .. tail)
  if head == tail then
    local after = pool_head(name)
    pool_heads_move(skills, name, head, after)
    -- An empty pool serves nobody: it is no candidate.
    if not after then redis.call('ZREM', K_CAND, 'p:' .. name) end
  end
end

-- How many queued contacts some agent turned down (meta "excluded"), read once a step and kept in
-- step with the step's own changes.
local excluded_count
local function turned_down()
  if not excluded_count then excluded_count = tonumber(redis.call('HGET', K_META, 'excluded') or '0') end
  return excluded_count > 0
end
-- A step reads it afresh (a Redis Function's top level outlives its calls).
local function routing_reset()
  excluded_count = nil
end
local function excluded_add(n)
  turned_down()
  excluded_count = excluded_count + n
  redis.call('HINCRBY', K_META, 'excluded', n)
end

-- The pools an agent is in while it can take work: channel ('' for any channel) → {skills, key in
-- the pool, since}.
local function seats(a, skills, since, chsince)
  local out = {}
  if not can_take_work(a) then return out end
  local occ = occupancy(a)
  if type(a.capacity) == 'number' then
    out[''] = { skills, seat_key(occ, since), since }
    return out
  end
  for ch in pairs(a.capacity) do
    if has_room_on(a, ch) and chsince and chsince[ch] then
      out[ch] = { on_channel(skills, ch), seat_key(occ, chsince[ch]), chsince[ch] }
    end
  end
  return out
end

-- Room on a channel ('' for any), for telling whether an agent may now serve more than before.
local function free_on(a, ch)
  if not can_take_work(a) then return 0 end
  if ch == '' then return type(a.capacity) == 'number' and a.capacity - #a.activeContacts or 0 end
  if type(a.capacity) == 'number' then return 0 end
  return (a.capacity[ch] or 0) - ((a._load and a._load[ch]) or 0)
end

-- Brings the pools in step with an agent after a change. `before` is the agent as it was (or
-- nil); `at` the time of the change. Keeps the LAA score while the agent stays able to work (on
-- each channel, with capacity per channel), and makes a pool of it a candidate whenever the agent
-- may now serve a contact it could not serve before.
local function availability_sync(before, a, at)
  local old = before and seats(before, before.skills, before._since, before._chsince) or {}
  -- Each seat keeps its since while the agent stays able to take work there (an agent given
  -- capacity per channel keeps its since on every channel, and back).
  local function kept(ch)
    if not before or not can_take_work(before) then return nil end
    if type(before.capacity) == 'number' then return before._since end
    if ch == '' then return before._since end
    return old[ch] and old[ch][3]
  end
  local since, chsince, first
  if can_take_work(a) then
    if type(a.capacity) == 'number' then
      since = kept('') or at
      first = since
    else
      chsince = {}
      for ch in pairs(a.capacity) do
        if has_room_on(a, ch) then
          local s = kept(ch) or at
          chsince[ch] = s
          if not first or s < first then first = s end
        end
      end
    end
  end
  local new = seats(a, a.skills, since, chsince)
  for ch, seat in pairs(old) do
    local n = new[ch]
    if not n or n[2] ~= seat[2] or skillset_name(n[1]) ~= skillset_name(seat[1]) then pool_leave(seat[1], seat[2], a.id) end
  end
  local woke = false
  for ch, seat in pairs(new) do
    local o = old[ch]
    local moved = not o or o[2] ~= seat[2] or skillset_name(o[1]) ~= skillset_name(seat[1])
    -- Whether the agent's pool held available agents before it came (itself, when it stays there
    -- and only gains room).
    local others = true
    if moved then others = pool_join(seat[1], seat[2], a.id) end
    if moved or free_on(a, ch) > free_on(before, ch) then
      if turned_down() then
        -- Some queued contact was turned down by an agent (or waits for its preferred agents):
        -- such a contact may be blocked while its queue has other agents, so no candidate
        -- covers it; this agent may serve it, and its pool looks again from the start.
        redis.call('ZADD', K_CAND, 'LT', '0', 'p:' .. skillset_name(seat[1]))
        woke = true
      elseif not others then
        -- The pool was empty: the agent may serve contacts nobody could. A pool already a
        -- candidate keeps its score (a lower bound of the first contact it can serve, whichever
        -- of its agents serves it; contacts queued since are their queues' candidates).
        redis.call('ZADD', K_CAND, 'NX', '0', 'p:' .. skillset_name(seat[1]))
        woke = true
      end
      -- Otherwise the pool's agents, with the same skills on the same channel and nobody
      -- blocked, serve the same contacts as this one: every contact it could serve had an
      -- eligible agent already, so a candidate covers it (or it is being served). No candidate
      -- and no dispatch step: an agent freeing up beside idle colleagues while only contacts
      -- they cannot serve wait wakes nobody.
    end
  end
  if woke then wake_if_queued() end
  a._since = first
  a._chsince = chsince and next(chsince) and chsince or nil
  a.availableSince = first and iso(first) or cjson.null
  if a._chsince then
    local by = {}
    for ch, s in pairs(a._chsince) do by[ch] = iso(s) end
    a.availableSinceByChannel = by
  else
    a.availableSinceByChannel = nil
  end
  a.state = agent_state(a)
end

local function queue_member(c)
  if c._key then return route_name(c) .. '|A|' .. string.format('%016d', tonumber(c._key)) .. '|' .. c.id end
  return route_name(c) .. '|' .. (9 - c.priority) .. '|' .. string.format('%016d', c._seq) .. '|' .. c.id
end

-- The routing-order score of a skill-set queue member.
local function member_score(name, m)
  local p = string.sub(m, #name + 2, #name + 2)
  if p == 'A' then return tonumber(string.sub(m, #name + 4, #name + 19)) end
  p = tonumber(p)
  local seq = tonumber(string.sub(m, #name + 4, #name + 19))
  return p * PRIORITY_STEP + seq
end

local function queue_candidate(name)
  return 'q:' .. name
end

-- The contact enters its queue (the caller writes its document afterwards: its key is set here).
local function queue_add(c)
  local w = priority_weight()
  if w then
    local p = 9 - c.priority
    c._key = int((tonumber(c._tick or 0) + p * w * TICKS_PER_MS) * 10 + p)
  else
    c._key = nil
  end
  local name = route_name(c)
  -- Contacts not every agent of their queue may take (turned down, or waiting for preferred agents).
  if c.excludedAgents or c.preferredAgents then excluded_add(1) end
  local score = int(order_of(c))
  redis.call('ZADD', K_QUEUE, int(c._seq), c.id)
  redis.call('ZADD', K_QINDEX, '0', queue_member(c))
  if redis.call('ZADD', K_QHEADS, 'LT', 'CH', score, name) == 1 then
    -- The contact heads its queue (perhaps a new one): the queue is listed, and its candidate
    -- is scored at most by the contact's order.
    redis.call('ZADD', K_SKILLSETS, int(#c.skills), name)
    redis.call('ZADD', K_CAND, 'LT', score, queue_candidate(name))
    wake()
  elseif turned_down() then
    -- Behind an earlier head, with contacts some agent turned down (or waiting for preferred
    -- agents) queued: the queue's candidate, if it was dropped (every contact blocked, or no agent
    -- for the head then), comes back to look again, scored 0 (unknown) until the dispatcher reads
    -- the head. One moved past blocked contacts (dispatch step) comes back to this one.
    if redis.call('ZADD', K_CAND, 'NX', '0', queue_candidate(name)) == 0 then
      redis.call('ZADD', K_CAND, 'XX', 'LT', score, queue_candidate(name))
    end
    wake()
  end
  -- Behind an earlier head with nobody blocked, the contact has its head's eligible agents (same
  -- skills, channel and queue): the queue's candidate is either there (the dispatcher was woken for
  -- it and reaches this contact through it) or was dropped because no agent can take the head, so
  -- none can take this one until some agent changes, whose pool then becomes a candidate. Neither
  -- needs a candidate or a wake-up: a queue that builds while every agent is busy costs no
  -- dispatch step per arrival.
end

-- `at_head`: the caller knows the contact heads its skill set's queue; `after` (with at_head) is
-- the member behind it as the caller read it (false when there is none), or nil when not read.
local function queue_remove(c, at_head, after)
  local name = route_name(c)
  if c.excludedAgents or c.preferredAgents then excluded_add(-1) end
  redis.call('ZREM', K_QUEUE, c.id)
  redis.call('ZREM', K_QINDEX, queue_member(c))
  if not at_head and tonumber(redis.call('ZSCORE', K_QHEADS, name)) ~= order_of(c) then return end
  local head = after
  if head == nil then
    local lo, hi = lex_bounds(name)
    head = redis.call('ZRANGEBYLEX', K_QINDEX, lo, hi, 'LIMIT', '0', '1')[1]
  end
  if head then
    local score = int(member_score(name, head))
    redis.call('ZADD', K_QHEADS, score, name)
    -- The queue's candidate, if it has one, is scored by its new head.
    redis.call('ZADD', K_CAND, 'XX', score, queue_candidate(name))
  else
    redis.call('ZREM', K_QHEADS, name)
    redis.call('ZREM', K_SKILLSETS, name)
    redis.call('ZREM', K_CAND, queue_candidate(name))
  end
end
