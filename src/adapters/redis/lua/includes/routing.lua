-- Availability and queues, all in declared keys of the workspace:
--   K_AVAIL   one zset, every member "<skill>|<available-since, 15 digits>|<agent id>" (score 0):
--             a lexicographic range "<skill>|…" lists the agents with that skill, longest
--             available first (ties by id, byte order), so its first member is the LAA.
--   K_QINDEX  one zset, every member "<skill set>|<9 - priority>|<arrival, 16 digits>|<contact id>"
--             (score 0): a range "<skill set>|…" is that skill set's queue in routing order.
--   K_QUEUE   every queued contact scored by arrival (depth and longest wait).
--   K_SKILLSETS the non-empty skill sets, scored by their number of skills.
-- Skills and ids never hold "|" (API.md), and every skill character sorts before it.
-- Needs K_AVAIL, K_QINDEX, K_QUEUE, K_SKILLSETS, K_DIRTY_AGENTS, K_DIRTY_CONTACTS, K_WAKE.
local PRIORITY_STEP = 17592186044416 -- 2^44: priority outranks arrival order

local function queue_score(c)
  return (9 - c.priority) * PRIORITY_STEP + c._seq
end

local function skillset_name(skills)
  return table.concat(skills, ',')
end

-- The bounds of the lexicographic range of members that start with "<prefix>|".
local function lex_bounds(prefix)
  return '[' .. prefix .. '|', '(' .. prefix .. '|\255'
end

local function avail_member(skill, since, id)
  return skill .. '|' .. string.format('%015d', since) .. '|' .. id
end

local function queue_member(c)
  return skillset_name(c.skills) .. '|' .. (9 - c.priority) .. '|' .. string.format('%016d', c._seq) .. '|' .. c.id
end

local function wake()
  redis.call('ZADD', K_WAKE, 0, 'w')
end

local function availability_leave(skills, since, id)
  if since then
    for i = 1, #skills do redis.call('ZREM', K_AVAIL, avail_member(skills[i], since, id)) end
  end
  redis.call('ZREM', K_DIRTY_AGENTS, id)
end

-- Brings availability in step with an agent after a change. `before` is the agent as it was (or
-- nil); `at` the time of the change. Keeps the LAA score while the agent stays able to work.
local function availability_sync(before, a, at)
  local was_in = before ~= nil and can_take_work(before)
  if not can_take_work(a) then
    if was_in then availability_leave(before.skills, before._since, a.id) end
    a._since = nil
    a.availableSince = cjson.null
    a.state = agent_state(a)
    return
  end
  local new_skill = {}
  for i = 1, #a.skills do new_skill[a.skills[i]] = true end
  local changed = not was_in
  if was_in then
    a._since = before._since
    local old_skill = {}
    for i = 1, #before.skills do
      local s = before.skills[i]
      old_skill[s] = true
      if not new_skill[s] then redis.call('ZREM', K_AVAIL, avail_member(s, a._since, a.id)) end
    end
    for i = 1, #a.skills do if not old_skill[a.skills[i]] then changed = true end end
  else
    a._since = at
  end
  for i = 1, #a.skills do redis.call('ZADD', K_AVAIL, 0, avail_member(a.skills[i], a._since, a.id)) end
  a.availableSince = iso(a._since)
  a.state = agent_state(a)
  if changed then
    redis.call('ZADD', K_DIRTY_AGENTS, int(a._since), a.id)
    wake()
  end
end

local function queue_add(c)
  local name = skillset_name(c.skills)
  redis.call('ZADD', K_QUEUE, int(c._seq), c.id)
  redis.call('ZADD', K_QINDEX, 0, queue_member(c))
  redis.call('ZADD', K_SKILLSETS, #c.skills, name)
  redis.call('ZADD', K_DIRTY_CONTACTS, int(queue_score(c)), c.id)
  wake()
end

local function queue_remove(c)
  local name = skillset_name(c.skills)
  redis.call('ZREM', K_QUEUE, c.id)
  redis.call('ZREM', K_QINDEX, queue_member(c))
  local lo, hi = lex_bounds(name)
  if not redis.call('ZRANGEBYLEX', K_QINDEX, lo, hi, 'LIMIT', 0, 1)[1] then
    redis.call('ZREM', K_SKILLSETS, name)
  end
  redis.call('ZREM', K_DIRTY_CONTACTS, c.id)
end
