--[[
  The hardware floor (npm run bench -- floor; BENCH.md): the least any assignment can cost on this
  Redis. Pops the head contact, ZINTERs the availability sets of its two skills (the longest
  available agent is the lowest score), takes the agent out of both, records the assignment in a
  hash and appends one stream entry. With zero handle time the agent re-enters both sets at once
  (now as score), as in the seed workload, so the run never runs dry.

  KEYS[1] queue: contacts "<id>|<skill>|<skill>" scored by arrival
  KEYS[2] assignments (hash: contact -> agent)
  KEYS[3] stream
  KEYS[4..] one availability set per skill: agents scored by the time they became available

  ARGV[i] the skill of KEYS[3 + i]

  Every key the step touches is one of these. Returns 1 when the head contact was assigned, 0 when
  no available agent holds both its skills, -1 when the queue is empty.
]]
--@include "time"

local popped = redis.call('ZPOPMIN', KEYS[1])
local member = popped[1]
if not member then return -1 end
local id, s1, s2 = string.match(member, '^([^|]+)|([^|]+)|([^|]+)$')
local availability = {}
for i = 1, #ARGV do availability[ARGV[i]] = KEYS[3 + i] end
local k1, k2 = availability[s1], availability[s2]
if not k1 or not k2 then return redis.error_reply('no availability set declared for ' .. member) end
local agents = redis.call('ZINTER', 2, k1, k2, 'AGGREGATE', 'MIN')
local agent = agents[1]
if not agent then return 0 end
redis.call('ZREM', k1, agent)
redis.call('ZREM', k2, agent)
redis.call('HSET', KEYS[2], id, agent)
redis.call('XADD', KEYS[3], '*', 'contact', id, 'agent', agent)
local now = now_ms()
redis.call('ZADD', k1, now, agent)
redis.call('ZADD', k2, now, agent)
return 1
