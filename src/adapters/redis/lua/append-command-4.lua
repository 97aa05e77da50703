--[[
  Appends a command to a workspace's command stream, honouring an Idempotency-Key atomically.

  KEYS[1] command stream
  KEYS[2] idempotency records (hash: key -> {position, commandId, fingerprint})
  KEYS[3] idempotency expiry (zset: key scored by the time its record may be forgotten)
  KEYS[4] idempotency outcomes (hash: key -> the outcome JSON the projector recorded, once)

  ARGV[1] prefix (unused here; keeps ARGV[1] the prefix in every script)
  ARGV[2] command type
  ARGV[3] command id
  ARGV[4] command JSON
  ARGV[5] idempotency key ('' for none)
  ARGV[6] request fingerprint (method, path and body digest)
  ARGV[7] idempotency record lifetime, seconds
  ARGV[8] request id
  ARGV[9] attributes JSON text ('' for none): kept apart so that no Lua step ever re-encodes it
  ARGV[10] API key id of the sender ('' for none)
  ARGV[11] that key's role ('' for none)

  Returns {position, commandId, repeated (0|1), fingerprint of the first request, outcome JSON or ''}.
]]
local K_COMMANDS, K_IDEM, K_IDEM_EXPIRY, K_IDEM_OUTCOMES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local idem = ARGV[5]

--@include "time"

local now = now_ms()

-- Forget a few expired records on every append, so the hash stays bounded by the key lifetime.
-- This only bounds the hash: a record past its lifetime is already forgotten when read (below).
local expired = redis.call('ZRANGEBYSCORE', K_IDEM_EXPIRY, '-inf', string.format('%d', now), 'LIMIT', 0, 16)
if #expired > 0 then
  redis.call('HDEL', K_IDEM, unpack(expired))
  redis.call('HDEL', K_IDEM_OUTCOMES, unpack(expired))
  redis.call('ZREM', K_IDEM_EXPIRY, unpack(expired))
end

if idem ~= '' then
  local rec = redis.call('HGET', K_IDEM, idem)
  -- A record past its lifetime but not purged yet is forgotten: the key is new again, and the
  -- record is replaced below.
  local expires = rec and tonumber(redis.call('ZSCORE', K_IDEM_EXPIRY, idem))
  if expires and expires <= now then rec = false end
  if rec then
    local r = cjson.decode(rec)
    return { r.position, r.commandId, 1, r.fingerprint or '', redis.call('HGET', K_IDEM_OUTCOMES, idem) or '' }
  end
end
local fields = { 'type', ARGV[2], 'commandId', ARGV[3], 'command', ARGV[4] }
if idem ~= '' then
  fields[#fields + 1] = 'idempotencyKey'
  fields[#fields + 1] = idem
end
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'attributes'
  fields[#fields + 1] = ARGV[9]
end
if ARGV[8] ~= '' then
  fields[#fields + 1] = 'requestId'
  fields[#fields + 1] = ARGV[8]
end
if (ARGV[10] or '') ~= '' then
  fields[#fields + 1] = 'keyId'
  fields[#fields + 1] = ARGV[10]
end
if (ARGV[11] or '') ~= '' then
  fields[#fields + 1] = 'role'
  fields[#fields + 1] = ARGV[11]
end
local position = redis.call('XADD', K_COMMANDS, '*', unpack(fields))
if idem ~= '' then
  redis.call('HSET', K_IDEM, idem, cjson.encode({ position = position, commandId = ARGV[3], fingerprint = ARGV[6] }))
  redis.call('HDEL', K_IDEM_OUTCOMES, idem)
  redis.call('ZADD', K_IDEM_EXPIRY, string.format('%d', now + tonumber(ARGV[7]) * 1000), idem)
end
return { position, ARGV[3], 0, ARGV[6], '' }
