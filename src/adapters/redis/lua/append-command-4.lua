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
--@include "idempotency"

local now = now_ms()

idem_purge(now)
if idem ~= '' then
  local first = idem_first(idem, now)
  if first then return first end
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
if idem ~= '' then idem_record(idem, position, ARGV[3], ARGV[6], ARGV[7], now) end
return { position, ARGV[3], 0, ARGV[6], '' }
