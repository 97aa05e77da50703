--[[
  GET /stats: the parts of a workspace's figures that are read as one snapshot (src/adapters/redis/
  projection-reads.ts `readStats`), so no projector or dispatcher step lands between them. Reads
  only; what it reads grows with the number of queues and with the decisions, abandons and
  expirations kept in the window (at most SERVED_KEEP a queue), never with the number of agents, and
  with the queued contacts only up to ARGV[1] of them: the ids of the oldest, and one document.
  KEYS[1] every queued contact by arrival      KEYS[2] the non-empty skill-set queues
  KEYS[3] the skill-set queues' members        KEYS[4] the contact documents
  KEYS[5] the counters of /stats               KEYS[6] the projections' meta (`applied`)
  KEYS[7] the decisions of the window          KEYS[8] the abandons and expirations of the window
  ARGV[1] the queued contacts read at most to find each queue's oldest (LONGEST_WAIT_READS)
  Returns {queued, queues, depths, oldest id or false, its document or false, counters (flat),
  applied or false, decisions, ended, the ARGV[1] oldest queued contacts' ids (none when none waits)}.
]]
local queued = redis.call('ZCARD', KEYS[1])
local sets = redis.call('ZRANGE', KEYS[2], '0', '-1')
local depths = {}
for i = 1, #sets do
  -- A member is "<queue>|...": the queue's members lie in ["<queue>|", "<queue>|\xff").
  depths[i] = redis.call('ZLEXCOUNT', KEYS[3], '[' .. sets[i] .. '|', '(' .. sets[i] .. '|\255')
end
-- The oldest queued contacts, in arrival order, among which readStats finds each waiting queue's
-- oldest. Their documents are read after this step (all but the oldest's): parsing them here would
-- hold Redis for as long as their attributes take to parse (500 of 64 KB: about 150 ms).
local first = queued > 0 and redis.call('ZRANGE', KEYS[1], '0', tonumber(ARGV[1]) - 1) or {}
local oldest = first[1] or false
local oldest_doc = oldest and redis.call('HGET', KEYS[4], oldest) or false

return {
  queued,
  sets,
  depths,
  oldest,
  oldest_doc,
  redis.call('HGETALL', KEYS[5]),
  redis.call('HGET', KEYS[6], 'applied'),
  redis.call('ZRANGEBYLEX', KEYS[7], '-', '+'),
  redis.call('ZRANGEBYLEX', KEYS[8], '-', '+'),
  first,
}
