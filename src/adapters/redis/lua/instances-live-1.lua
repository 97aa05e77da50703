--[[
  The instances whose heartbeat is younger than a window (Redis's clock); prunes old entries.
  KEYS[1] the instances registry (zset: member host:port, score = last heartbeat, ms)
  ARGV[1] window, ms
  ARGV[2] prune entries older than this, ms (0: keep all)
  Returns the live members.
]]
--@include "time"

local now = now_ms()
local prune = tonumber(ARGV[2])
if prune > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - prune)) end
return redis.call('ZRANGE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'BYSCORE')
