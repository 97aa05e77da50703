--[[
  Makes routing decisions. Each decision is atomic: the contact leaves its queues in the same
  step that gives it an agent, the agent leaves its availability sets when it is full, both
  documents change and AssignmentMade is appended. Several dispatchers may call it at once.

  Work comes from two lists the projector fills: agents that became able to take work (taken
  first, longest available first) and contacts that arrived. An agent takes the first contact
  in queue order (priority, then arrival) among those whose skills it holds; a contact takes the
  Longest Available Agent among those holding all its skills. Neither walks the queue: an agent
  looks only at the heads of the skill-set queues it can serve, a contact only at agents.

  KEYS[1] event stream          KEYS[7]  wake
  KEYS[2] queue (arrival order) KEYS[8]  agent documents (hash)
  KEYS[3] skill sets            KEYS[9]  contact documents (hash)
  KEYS[4] dirty agents          KEYS[10] availability (lexicographic zset)
  KEYS[5] dirty contacts        KEYS[11] skill-set queues (lexicographic zset)
  KEYS[6] stats

  Every key the step touches is one of these.

  ARGV[1] key prefix of the workspace
  ARGV[2] workspace name
  ARGV[3] most work items to look at in this call

  Returns {assignments made, more work left (0|1)}.
]]
local K_EVENTS, K_QUEUE, K_SKILLSETS, K_DIRTY_AGENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_DIRTY_CONTACTS, K_STATS, K_WAKE, K_AGENTS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_CONTACTS, K_AVAIL, K_QINDEX = KEYS[9], KEYS[10], KEYS[11]
local WORKSPACE, MAX = ARGV[2], tonumber(ARGV[3])

--@include "json"
--@include "time"
--@include "documents"
--@include "routing"

-- The agent id of an availability member "<skill>|<since>|<id>", and its since part.
local function avail_parts(member)
  local since, id = string.match(member, '^[^|]*|(%d+)|(.*)$')
  return id, since
end

-- The Longest Available Agent holding every skill: walk the smallest skill's range of the
-- availability set in order and stop at the first agent present under all the other skills.
local function longest_available(skills)
  if #skills == 1 then
    local lo, hi = lex_bounds(skills[1])
    local first = redis.call('ZRANGEBYLEX', K_AVAIL, lo, hi, 'LIMIT', 0, 1)[1]
    return first and (avail_parts(first))
  end
  local smallest, n = nil, nil
  for i = 1, #skills do
    local lo, hi = lex_bounds(skills[i])
    local c = redis.call('ZLEXCOUNT', K_AVAIL, lo, hi)
    if c == 0 then return nil end
    if not n or c < n then smallest, n = skills[i], c end
  end
  local lo, hi = lex_bounds(smallest)
  local offset = 0
  while offset < n do
    local batch = redis.call('ZRANGEBYLEX', K_AVAIL, lo, hi, 'LIMIT', offset, 32)
    if #batch == 0 then return nil end
    for j = 1, #batch do
      local id, since = avail_parts(batch[j])
      local all = true
      for i = 1, #skills do
        if skills[i] ~= smallest and not redis.call('ZSCORE', K_AVAIL, skills[i] .. '|' .. since .. '|' .. id) then
          all = false
          break
        end
      end
      if all then return id end
    end
    offset = offset + 32
  end
  return nil
end

local function binomial(n, k)
  local r = 1
  for i = 1, k do r = r * (n - i + 1) / i end
  return r
end

-- The first queued contact (queue order) whose skills the agent holds all of. Candidates are the
-- non-empty skill-set queues that are subsets of the agent's skills: enumerated from the agent's
-- skills, or read from the list of non-empty skill sets, whichever is shorter.
local function first_servable_contact(a)
  local top = redis.call('ZRANGE', K_SKILLSETS, -1, -1, 'WITHSCORES')
  if not top[1] then return nil end
  local widest = math.min(tonumber(top[2]), #a.skills)
  local subsets = 0
  for k = 1, widest do subsets = subsets + binomial(#a.skills, k) end
  local best_id, best_score
  -- A head member is "<skill set>|<9 - priority>|<arrival>|<id>": past the skill set, its text
  -- orders heads of different skill sets in routing order.
  local function consider(name)
    local lo, hi = lex_bounds(name)
    local head = redis.call('ZRANGEBYLEX', K_QINDEX, lo, hi, 'LIMIT', 0, 1)[1]
    if head then
      local order, id = string.sub(head, #name + 2, #name + 19), string.sub(head, #name + 21)
      if not best_score or order < best_score then best_id, best_score = id, order end
    end
  end
  if subsets <= redis.call('ZCARD', K_SKILLSETS) then
    local skills, chosen = a.skills, {}
    local function walk(from, depth)
      for i = from, #skills do
        chosen[depth] = skills[i]
        local name = table.concat(chosen, ',', 1, depth)
        if redis.call('ZSCORE', K_SKILLSETS, name) then consider(name) end
        if depth < widest then walk(i + 1, depth + 1) end
      end
    end
    walk(1, 1)
  else
    local held = {}
    for i = 1, #a.skills do held[a.skills[i]] = true end
    local names = redis.call('ZRANGEBYSCORE', K_SKILLSETS, 1, widest)
    for i = 1, #names do
      local ok = true
      for s in string.gmatch(names[i], '[^,]+') do
        if not held[s] then ok = false break end
      end
      if ok then consider(names[i]) end
    end
  end
  return best_id
end

local made = 0
local now = now_ms()

local function assign(c, a)
  queue_remove(c)
  c.state = 'assigned'
  c.agentId = a.id
  c._assignedAt = now
  c.assignedAt = iso(now)
  c.waitedMs = now - c._queuedAt
  doc_put(K_CONTACTS, c)
  local before_in = can_take_work(a)
  a.activeContacts[#a.activeContacts + 1] = c.id
  if before_in and not can_take_work(a) then
    availability_leave(a.skills, a._since, a.id)
    a._since = nil
    a.availableSince = cjson.null
  end
  a.state = agent_state(a)
  doc_put(K_AGENTS, a)
  redis.call('HINCRBY', K_STATS, 'assignments', 1)
  local data = {
    contactId = c.id, agentId = a.id, skills = c.skills, priority = c.priority,
    queuedAt = c.queuedAt, assignedAt = c.assignedAt, waitedMs = c.waitedMs,
  }
  local env = { type = 'AssignmentMade', workspace = WORKSPACE, at = c.assignedAt, data = data,
    meta = { causationId = c._cmd } }
  redis.call('XADD', K_EVENTS, '*', 'type', 'AssignmentMade', 'event', json_encode(env))
  made = made + 1
end

for _ = 1, MAX do
  local agent_id = redis.call('ZRANGE', K_DIRTY_AGENTS, 0, 0)[1]
  if agent_id then
    local a = doc_get(K_AGENTS, agent_id)
    local contact_id = a and can_take_work(a) and first_servable_contact(a)
    if contact_id then
      assign(doc_get(K_CONTACTS, contact_id), a)
    else
      redis.call('ZREM', K_DIRTY_AGENTS, agent_id)
    end
  else
    local contact_id = redis.call('ZRANGE', K_DIRTY_CONTACTS, 0, 0)[1]
    if not contact_id then return { made, 0 } end
    redis.call('ZREM', K_DIRTY_CONTACTS, contact_id)
    local c = doc_get(K_CONTACTS, contact_id)
    if c and c.state == 'queued' then
      local agent = longest_available(c.skills)
      if agent then assign(c, doc_get(K_AGENTS, agent)) end
    end
  end
end
local more = 0
if redis.call('EXISTS', K_DIRTY_AGENTS) == 1 or redis.call('EXISTS', K_DIRTY_CONTACTS) == 1 then more = 1 end
return { made, more }
