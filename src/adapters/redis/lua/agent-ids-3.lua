--[[
  The agent ids' index (a lexicographic zset, score 0) made whole for a workspace whose agents
  were registered before the projector kept it, or by an older projector beside a newer one (an
  upgrade): a step at a time, each bounded by its COUNT, so none grows with the agents.

  KEYS[1] agent documents (hash)   KEYS[2] agent ids (zset)   KEYS[3] meta (hash)

  ARGV[1] 'fill', ARGV[2] an HSCAN cursor, ARGV[3] COUNT: adds the ids of that page of documents;
          returns the next cursor ('0': every document present throughout was seen).
  ARGV[1] 'prune', ARGV[2] the last id looked at ('' for the first), ARGV[3] how many: takes out
          the ids after it that have no document; returns the last id looked at ('' at the end).
  ARGV[1] 'begin', ARGV[2] a new making's token; returns the token to mark with: that of a
          making under way whose "agentIdsFrom" is still the checkpoint (joined: both fill and
          prune, the first mark counts), else ARGV[2], set as meta "agentIdsMaking" (a making that
          began before, across a step that keeps no index, then marks nothing), and meta
          "agentIdsFrom" set to the projections' checkpoint ("applied"), before a
          fill: each projector step of this version moves it on with the checkpoint while the two
          are equal, and drops it otherwise (a step of a version that keeps no index moves the
          checkpoint alone).
  ARGV[1] 'mark', ARGV[2] the making's token: once the fill and prune are done, if the token is
          still the one "agentIdsMaking" holds, meta "agentIds" set to the checkpoint if
          "agentIdsFrom" is still equal to it (every step since the making began kept the index),
          "agentIdsFrom" dropped; returns 1 when marked, 0 when not (a step that kept no index
          came meanwhile: the next listing makes it again).
  ARGV[1] 'check': {1 when meta "agentIds" is "applied" (else 0), ids in the index, documents}.

  No step is refused while a cluster moves the slot: none empties a key and touches it again, and
  a fill or prune cut short leaves nothing a later one does not mend.

  Every page runs against the documents as they are at its step, and the projector adds and takes
  out ids in the step that writes or deletes the document, so a fill beside a projector leaves
  neither a removed agent's id nor a missing one.
]]
local mode = ARGV[1]
if mode == 'check' then
  local meta = redis.call('HMGET', KEYS[3], 'applied', 'agentIds')
  local marked = 0
  if meta[2] and meta[2] == (meta[1] or '0-0') then marked = 1 end
  return { marked, redis.call('ZCARD', KEYS[2]), redis.call('HLEN', KEYS[1]) }
end
if mode == 'begin' then
  local meta = redis.call('HMGET', KEYS[3], 'applied', 'agentIdsFrom', 'agentIdsMaking')
  local applied = meta[1] or '0-0'
  -- A making under way that no step that keeps no index has come across: joined (its token), so
  -- instances listing at once do not each cancel the other's.
  if meta[3] and meta[2] == applied then return meta[3] end
  redis.call('HSET', KEYS[3], 'agentIdsFrom', applied, 'agentIdsMaking', ARGV[2])
  return ARGV[2]
end
if mode == 'mark' then
  local meta = redis.call('HMGET', KEYS[3], 'applied', 'agentIdsFrom', 'agentIdsMaking')
  local applied = meta[1] or '0-0'
  -- Another making began since this one (its own mark decides): this one marks nothing.
  if meta[3] ~= ARGV[2] then return 0 end
  redis.call('HDEL', KEYS[3], 'agentIdsFrom', 'agentIdsMaking')
  if meta[2] ~= applied then return 0 end
  redis.call('HSET', KEYS[3], 'agentIds', applied)
  return 1
end
if mode == 'fill' then
  local page = redis.call('HSCAN', KEYS[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
  local flat = page[2]
  local args = {}
  for i = 1, #flat, 2 do
    args[#args + 1] = 0
    args[#args + 1] = flat[i]
  end
  if #args > 0 then redis.call('ZADD', KEYS[2], unpack(args)) end
  return page[1]
end
if mode == 'prune' then
  local from = '-'
  if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
  local ids = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
  local stale = {}
  for i = 1, #ids do
    if redis.call('HEXISTS', KEYS[1], ids[i]) == 0 then stale[#stale + 1] = ids[i] end
  end
  if #stale > 0 then redis.call('ZREM', KEYS[2], unpack(stale)) end
  if #ids < tonumber(ARGV[3]) then return '' end
  return ids[#ids]
end
return redis.error_reply('agent-ids: unknown mode ' .. tostring(mode))
