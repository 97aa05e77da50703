--[[
  Renews a dispatcher's lease on a workspace if it still holds it.
  KEYS[1] the workspace's lease
  ARGV[1] owner id   ARGV[2] lifetime, ms
  Returns 1 when renewed, 0 when another owner holds it or it expired.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
