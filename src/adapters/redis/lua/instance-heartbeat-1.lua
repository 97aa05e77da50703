--[[
  Writes an API instance's heartbeat with Redis's own clock, so hosts with skewed clocks agree.
  KEYS[1] the instances registry (zset: member host:port, score = last heartbeat, ms)
  ARGV[1] the instance's member (host:port)
  Returns the score written.
]]
--@include "time"

local ms = now_ms()
redis.call('ZADD', KEYS[1], ms, ARGV[1])
return ms
