-- The document port: agents and contacts as JSON strings (one key each). Fields starting with
-- "_" are internal (scores, raw attributes) and never leave Redis as they are. Where RedisJSON
-- is available, these two functions are the only ones to change.
local function doc_get(key)
  local s = redis.call('GET', key)
  if not s then return nil end
  local d = cjson.decode(s)
  if d.skills then json_array(d.skills) end
  if d.activeContacts then json_array(d.activeContacts) end
  return d
end

local function doc_put(key, d)
  redis.call('SET', key, json_encode(d))
end

local function agent_state(a)
  if a.presence ~= 'available' then return a.presence end
  if #a.activeContacts >= a.capacity then return 'busy' end
  return 'available'
end

local function can_take_work(a)
  return a.presence == 'available' and #a.activeContacts < a.capacity
end

-- The public view (API.md): internal fields dropped, raw attributes spliced in.
local function public_view(d)
  local out = {}
  for k, v in pairs(d) do
    if string.sub(k, 1, 1) ~= '_' then out[k] = v end
  end
  if d._attrs then out.attributes = json_raw(d._attrs) end
  return out
end
