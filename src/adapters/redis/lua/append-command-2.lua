--[[
  Appends a command to a workspace's command stream, honouring an Idempotency-Key atomically.

  KEYS[1] command stream
  KEYS[2] idempotency record of the key (a hash; any key of the workspace when there is none)

  ARGV[1] prefix (unused here; keeps ARGV[1] the prefix in every script)
  ARGV[2] command type
  ARGV[3] command id
  ARGV[4] command JSON
  ARGV[5] idempotency key ('' for none)
  ARGV[6] request fingerprint (method, path and body digest)
  ARGV[7] idempotency record lifetime, seconds
  ARGV[8] request id
  ARGV[9] attributes JSON text ('' for none): kept apart so that no Lua step ever re-encodes it

  Returns {position, commandId, repeated (0|1), fingerprint of the first request, outcome JSON or ''}.
]]
local idem = ARGV[5]
if idem ~= '' then
  local rec = redis.call('HMGET', KEYS[2], 'position', 'commandId', 'fingerprint', 'outcome')
  if rec[1] then
    return { rec[1], rec[2], 1, rec[3] or '', rec[4] or '' }
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
local position = redis.call('XADD', KEYS[1], '*', unpack(fields))
if idem ~= '' then
  redis.call('HSET', KEYS[2], 'position', position, 'commandId', ARGV[3], 'fingerprint', ARGV[6])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[7]))
end
return { position, ARGV[3], 0, ARGV[6], '' }
