-- Idempotency-Key records, for the steps that append commands (append-command-4.lua, and the
-- projector step's appends). Keys (set by the including file before these run):
-- K_IDEM          records (hash: key -> {position, commandId, fingerprint})
-- K_IDEM_EXPIRY   when each record may be forgotten (zset: key scored by ms)
-- K_IDEM_OUTCOMES the outcome JSON the projector recorded for each key, once

-- Forgets a few expired records on every append, so the hash stays bounded by the key lifetime.
-- This only bounds the hash: a record past its lifetime is already forgotten when read (idem_first).
local function idem_purge(now)
  local expired = redis.call('ZRANGEBYSCORE', K_IDEM_EXPIRY, '-inf', string.format('%d', now), 'LIMIT', '0', '16')
  if #expired > 0 then
    redis.call('HDEL', K_IDEM, unpack(expired))
    redis.call('HDEL', K_IDEM_OUTCOMES, unpack(expired))
    redis.call('ZREM', K_IDEM_EXPIRY, unpack(expired))
  end
end

-- The answer for a key seen before and not expired: {position, commandId, 1, fingerprint of the
-- first request, outcome JSON or ''}; nil for a new key. A record past its lifetime but not purged
-- yet is forgotten: the key is new again, and idem_record replaces it.
local function idem_first(idem, now)
  local rec = redis.call('HGET', K_IDEM, idem)
  local expires = rec and tonumber(redis.call('ZSCORE', K_IDEM_EXPIRY, idem))
  if expires and expires <= now then rec = false end
  if not rec then return nil end
  local r = cjson.decode(rec)
  return { r.position, r.commandId, 1, r.fingerprint or '', redis.call('HGET', K_IDEM_OUTCOMES, idem) or '' }
end

-- Records a key's first command, appended at `position`, for `ttl_s` seconds.
local function idem_record(idem, position, command_id, fingerprint, ttl_s, now)
  redis.call('HSET', K_IDEM, idem, cjson.encode({ position = position, commandId = command_id, fingerprint = fingerprint }))
  redis.call('HDEL', K_IDEM_OUTCOMES, idem)
  redis.call('ZADD', K_IDEM_EXPIRY, string.format('%d', now + tonumber(ttl_s) * 1000), idem)
end
