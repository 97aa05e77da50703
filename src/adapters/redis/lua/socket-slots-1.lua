--[[
  WebSocket connections per caller (API key), across API instances: a zset per caller, one member
  per open socket scored by when it lapses (ms, Redis's clock) unless its instance renews it, so
  the sockets of an instance that died stop counting by themselves. Closing a socket removes its
  member (ZREM, from the instance).
  KEYS[1] the caller's zset of open sockets
  ARGV[1] 'take' or 'keep'
  take: ARGV[2] the cap, ARGV[3] lifetime ms, ARGV[4] the new socket's member
        returns 1 when taken, 0 when the caller holds the cap already (nothing changed)
  keep: ARGV[2] lifetime ms, ARGV[3..] the members still open on the calling instance
        returns how many were brought back: a member that lapsed while its instance could not
        renew it (Redis away longer than the lifetime) is a socket still open, and counts again
        (over the cap if need be: new sockets are refused until enough close). A socket's member
        is removed on the same connection after any renewal that names it, so a closed one is
        never brought back.
  Commands: TIME, ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[1] == 'take' then
  local cap = tonumber(ARGV[2])
  local ttl = tonumber(ARGV[3])
  if redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
local ttl = tonumber(ARGV[2])
local back = 0
for i = 3, #ARGV do
  back = back + redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ttl)
return back
