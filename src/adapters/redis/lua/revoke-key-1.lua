--[[
  An API key's revocation, as a compare-and-set on its record: the revoked record is written only
  when the stored one is still the one the caller read, so of revocations at the same moment one
  writes and the others see its time.
  KEYS[1] the workspace's key records (sb:{ws}:keys), a hash: key id -> the record's JSON
  ARGV[1] the key id
  ARGV[2] the record as the caller read it
  ARGV[3] the record revoked
  Returns the record stored afterwards (ARGV[3] when it was written; false when there is none).
  Commands: HGET, HSET.
]]
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored ~= ARGV[2] then
  return stored
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return ARGV[3]
