--[[
  Hands a dispatcher's lease on a workspace back, if it still holds it.
  KEYS[1] the workspace's lease
  ARGV[1] owner id
  Returns 1 when released, 0 when another owner holds it or it expired.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
