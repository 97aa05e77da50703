--[[
  Applies one batch of events to a workspace's live interval projection: what the batch adds to
  each 15-minute interval's tallies, the queues of the contacts it changed, and the checkpoint (the
  last event of the batch), all in this one step. A process killed at any instruction leaves
  either none or all of them, so no event is lost or counted twice. The caller computed the
  additions (src/domain/intervals.ts decides what each event adds); this step only adds numbers.
  It applies only if the checkpoint is still the one the caller read (another holder may have
  applied the batch meanwhile): otherwise it changes nothing and returns 0.

  KEYS[1]  the projection's meta (hash: checkpoint, serviceLevelMs)
  KEYS[2]  contact -> queue (hash)
  KEYS[3]  the index of kept intervals (zset: start ms)
  KEYS[4..] one hash per interval the batch adds to (`<tally>`, `<tally> <queue>` -> integer)

  ARGV[1] the checkpoint read ('' for none)    ARGV[4] ms an interval is kept after its end
  ARGV[2] the new checkpoint                   ARGV[5] the interval length, ms
  ARGV[3] the service-level threshold, ms      ARGV[6] the number of contacts whose queue is set, s
  then for each KEYS[4..]: its start ms, its number of fields n, then n pairs (field, integer)
  then s pairs (contact, queue), then the contacts whose queue goes

  An interval already past its retention is not written (it would expire at once). Returns 1
  when applied, 0 when the checkpoint had moved.
]]
local K_META, K_CONTACTS, K_INDEX = KEYS[1], KEYS[2], KEYS[3]
local KEPT, LENGTH = tonumber(ARGV[4]), tonumber(ARGV[5])

--@include "time"

if (redis.call('HGET', K_META, 'checkpoint') or '') ~= ARGV[1] then return 0 end

local now = now_ms()
local a = 7
for k = 4, #KEYS do
  local start, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local ttl = start + LENGTH + KEPT - now
  if ttl > 0 then
    for j = a, a + 2 * n - 1, 2 do redis.call('HINCRBY', KEYS[k], ARGV[j], ARGV[j + 1]) end
    redis.call('PEXPIRE', KEYS[k], ttl)
    redis.call('ZADD', K_INDEX, start, ARGV[a - 2])
  end
  a = a + 2 * n
end
redis.call('ZREMRANGEBYSCORE', K_INDEX, '-inf', '(' .. (now - KEPT - LENGTH))

local sets = tonumber(ARGV[6])
for j = a, a + 2 * sets - 1, 2 do redis.call('HSET', K_CONTACTS, ARGV[j], ARGV[j + 1]) end
a = a + 2 * sets
for j = a, #ARGV, 500 do redis.call('HDEL', K_CONTACTS, unpack(ARGV, j, math.min(j + 499, #ARGV))) end

redis.call('HSET', K_META, 'checkpoint', ARGV[2], 'serviceLevelMs', ARGV[3])
return 1
