--[[
  A caller's request rate limit, counted in Redis so that every API instance shares it: GCRA (a
  token bucket kept as one number, the theoretical arrival time of the caller's next request).
  KEYS[1] the caller's counter: a string, the time (µs, Redis's clock) at which its budget is whole again
  ARGV[1] microseconds between requests at the sustained rate (1,000,000 / requests per second)
  ARGV[2] burst: how many requests a whole budget lets through at once
  Returns {1, requests left at once} when the request may go, {0, µs to wait} when it may not.
  Commands: TIME, GET, SET (PX). A refused request changes nothing.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now}
end
-- The counter lapses once the budget is whole again: an idle caller costs no memory.
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval)}
