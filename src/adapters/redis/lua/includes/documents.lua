-- The document port: agents and contacts as JSON strings, one hash of them per workspace (a
-- declared key), field = id. Fields starting with "_" are internal (scores, raw attributes) and
-- never leave Redis as they are. Where RedisJSON is available, these functions are the only ones
-- to change (JSON.GET/JSON.SET on a path of one document per workspace).
local function doc_get(hash, id)
  local s = redis.call('HGET', hash, id)
  if not s then return nil end
  local d = cjson.decode(s)
  if d.skills then json_array(d.skills) end
  if d.activeContacts then json_array(d.activeContacts) end
  return d
end

-- Documents hold no raw JSON and no number past 14 digits, so Redis's own encoder (C) writes them;
-- it writes an empty list as {}, and activeContacts is the one list that can be empty (no string
-- value can hold an unescaped quote, so the pattern matches only the field itself).
local function doc_put(hash, d)
  local s = cjson.encode(d)
  if d.activeContacts and #d.activeContacts == 0 then
    s = string.gsub(s, '"activeContacts":{}', '"activeContacts":[]', 1)
  end
  redis.call('HSET', hash, d.id, s)
end

local function doc_exists(hash, id)
  return redis.call('HEXISTS', hash, id) == 1
end

local function doc_delete(hash, id)
  redis.call('HDEL', hash, id)
end

-- An agent's internal lifecycle fields: `_offers` (contacts offered and not accepted, also in
-- activeContacts; absent when none), `_wrap` (the wrap-up running, by number), `_wrapUntil` (its
-- end, ms) and `_wraps` (wrap-ups so far). A contact's: `_offer` (the offer outstanding, by
-- number), `_offers` (offers so far), `_expiresMs` (that offer's end) and `_deadline` (its maximum
-- wait's end, ms).
--
-- Capacity is one number (contacts at once on any channel) or a table channel → number; with a
-- table, `_load` counts the agent's contacts per channel (absent channels: none) and `_chsince`
-- holds each channel it has room on → its available-since (ms).

-- Room for one more contact on `channel` (one number: room on any channel).
local function has_room_on(a, channel)
  if type(a.capacity) == 'number' then return #a.activeContacts < a.capacity end
  local cap = a.capacity[channel]
  return cap ~= nil and ((a._load and a._load[channel]) or 0) < cap
end

local function has_room(a)
  if type(a.capacity) == 'number' then return #a.activeContacts < a.capacity end
  for ch in pairs(a.capacity) do
    if has_room_on(a, ch) then return true end
  end
  return false
end

local function agent_state(a)
  if a.presence ~= 'available' then return a.presence end
  if a._wrap then return 'wrapup' end
  if a._offers then return 'reserved' end
  if not has_room(a) then return 'busy' end
  return 'available'
end

local function can_take_work(a)
  return a.presence == 'available' and not a._wrap and has_room(a)
end

local function can_take_on(a, channel)
  return a.presence == 'available' and not a._wrap and has_room_on(a, channel)
end

-- A contact's channel (absent in data written before channels: voice).
local function channel_of(c)
  return c.channel or 'voice'
end

-- Counts a contact on `channel` in or out (`by` = 1 or -1) of an agent's per-channel load.
local function load_add(a, channel, by)
  if type(a.capacity) == 'number' then return end
  -- A new table: the agent being changed may share the old one with the agent as it was.
  local load = {}
  for ch, n in pairs(a._load or {}) do load[ch] = n end
  local n = (load[channel] or 0) + by
  if n > 0 then load[channel] = n else load[channel] = nil end
  a._load = next(load) and load or nil
end

-- Timers (a zset scored by due time, ms): members "o|<contact>|<offer>", "w|<agent>|<wrap-up>",
-- "m|<contact>|<arrival seq>", "r|<contact>|<arrival seq>|<step>", "f|<contact>|<arrival seq>". The clock step turns a due one
-- into its timer command; the step that makes one moot takes it out.
local function offer_timer(c) return 'o|' .. c.id .. '|' .. c._offer end
local function wrap_timer(a) return 'w|' .. a.id .. '|' .. a._wrap end
local function wait_timer(c) return 'm|' .. c.id .. '|' .. c._seq end
-- A contact's routing step k ("r|<contact>|<arrival seq>|<k>"): its requirements change then.
local function step_timer(c, k) return 'r|' .. c.id .. '|' .. c._seq .. '|' .. k end
-- The end of a contact's wait for its preferred agents ("f|<contact>|<arrival seq>").
local function preference_timer(c) return 'f|' .. c.id .. '|' .. c._seq end

-- A contact stops waiting (assigned, abandoned, expired): the timers of its wait go with it, its
-- maximum wait, its preference's end and its next routing step (each would fire as a command that
-- changes nothing). One ZREM of at most three members.
local function wait_timers_end(c)
  local moot = {}
  if c._deadline then moot[#moot + 1] = wait_timer(c) end
  if c._preferUntil then moot[#moot + 1] = preference_timer(c) end
  local step = c.step or 0
  if c.steps and c.steps[step + 1] then moot[#moot + 1] = step_timer(c, step + 1) end
  if #moot > 0 then redis.call('ZREM', K_TIMERS, unpack(moot)) end
end

-- Routing skills ("X", and "X#2".."X#5" for levels) as clients write them: a name, or
-- {name, <field>} with the highest level (field "level" for an agent, "minLevel" for a contact).
-- Routing strings are sorted, and "#" sorts before every skill character, so a skill's levels
-- follow its name and the names come out in order.
local function public_skills(routing, field)
  local leveled = false
  for i = 1, #routing do
    if string.find(routing[i], '#', 1, true) then
      leveled = true
      break
    end
  end
  if not leveled then return routing end
  local out, last = {}, nil
  for i = 1, #routing do
    local name, n = string.match(routing[i], '^([^#]*)#?(%d*)$')
    local level = tonumber(n) or 1
    if name == last then
      out[#out] = { name = name, [field] = level }
    else
      out[#out + 1] = level > 1 and { name = name, [field] = level } or name
      last = name
    end
  end
  return json_array(out)
end

-- A contact's steps with their skills as clients write them.
local function public_steps(steps)
  local out = {}
  for i = 1, #steps do
    local st = steps[i]
    out[i] = { afterMs = st.afterMs, skills = public_skills(st.skills, 'minLevel'), priority = st.priority }
  end
  return json_array(out)
end

-- The public view (API.md): internal fields dropped, raw attributes spliced in, skills as clients
-- write them.
local function public_view(d)
  local out = {}
  for k, v in pairs(d) do
    if string.sub(k, 1, 1) ~= '_' then out[k] = v end
  end
  if d._attrs then out.attributes = json_raw(d._attrs) end
  if d.skills then out.skills = public_skills(d.skills, d.presence and 'level' or 'minLevel') end
  if d.steps then out.steps = public_steps(d.steps) end
  return out
end

-- When a queued contact arrived (ms): the position of the command that queued it, which stays its
-- position while it waits; once an offer of it was withdrawn (its position moved), _queuedAt.
local function queued_ms(c)
  return c._queuedAt or position_ms(c.position)
end
