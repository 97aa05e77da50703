-- Availability sets, skill-set queues and the dispatcher's work lists. Needs KEYS named
-- K_QUEUE, K_SKILLSETS, K_DIRTY_AGENTS, K_DIRTY_CONTACTS, K_WAKE set by the including script.
local PRIORITY_STEP = 17592186044416 -- 2^44: priority outranks arrival order

local function queue_score(c)
  return (9 - c.priority) * PRIORITY_STEP + c._seq
end

local function skillset_name(skills)
  return table.concat(skills, ',')
end

local function wake()
  redis.call('ZADD', K_WAKE, 0, 'w')
end

local function availability_leave(skills, id)
  for i = 1, #skills do redis.call('ZREM', k_avail(skills[i]), id) end
  redis.call('ZREM', K_DIRTY_AGENTS, id)
end

-- Brings the sets in step with an agent after a change. `before` is the agent as it was (or
-- nil); `at` the time of the change. Keeps the LAA score while the agent stays able to work.
local function availability_sync(before, a, at)
  local was_in = before ~= nil and can_take_work(before)
  if not can_take_work(a) then
    if was_in then availability_leave(before.skills, a.id) end
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
      if not new_skill[s] then redis.call('ZREM', k_avail(s), a.id) end
    end
    for i = 1, #a.skills do if not old_skill[a.skills[i]] then changed = true end end
  else
    a._since = at
  end
  local since = int(a._since)
  for i = 1, #a.skills do redis.call('ZADD', k_avail(a.skills[i]), since, a.id) end
  a.availableSince = iso(a._since)
  a.state = agent_state(a)
  if changed then
    redis.call('ZADD', K_DIRTY_AGENTS, since, a.id)
    wake()
  end
end

local function queue_add(c)
  local score = int(queue_score(c))
  local name = skillset_name(c.skills)
  redis.call('ZADD', K_QUEUE, int(c._seq), c.id)
  redis.call('ZADD', k_skillset_queue(name), score, c.id)
  redis.call('ZADD', K_SKILLSETS, #c.skills, name)
  redis.call('ZADD', K_DIRTY_CONTACTS, score, c.id)
  wake()
end

local function queue_remove(c)
  local name = skillset_name(c.skills)
  local q = k_skillset_queue(name)
  redis.call('ZREM', K_QUEUE, c.id)
  redis.call('ZREM', q, c.id)
  if redis.call('EXISTS', q) == 0 then redis.call('ZREM', K_SKILLSETS, name) end
  redis.call('ZREM', K_DIRTY_CONTACTS, c.id)
end
