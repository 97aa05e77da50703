-- Milliseconds since the epoch to ISO-8601 UTC (days-from-civil, proleptic Gregorian).
-- The last one is kept: a step formats the same millisecond over and over.
local iso_ms, iso_text
local function iso(ms)
  if ms == iso_ms then return iso_text end
  local s = math.floor(ms / 1000)
  local msr = ms - s * 1000
  local days = math.floor(s / 86400)
  local sod = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  iso_ms = ms
  iso_text = string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(sod / 3600), math.floor((sod % 3600) / 60), sod % 60, msr)
  return iso_text
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends an entry to the stream `key` at `ms`, the step's time read with TIME (`<ms>-*`): its
-- position is then at the millisecond the step decided at on every Redis, where an automatic id
-- takes the time of the XADD itself on Redis 7.0 (after the step's TIME) and the time the step began
-- from 7.2 on (before it: a decision a millisecond after its event's position, a timer appended a
-- millisecond before its due time). After the stream's last entry, as an automatic id is, when that
-- one is at a later millisecond (Redis's clock went back).
local function xadd_at(key, ms, ...)
  local id = redis.pcall('XADD', key, string.format('%d-*', ms), ...)
  if type(id) == 'table' and id.err then return redis.call('XADD', key, '*', ...) end
  return id
end

-- Microseconds since the epoch by Redis's clock: a step's time budget is measured by it.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A step's time budget (the projector's, the dispatcher's) is looked at every BUDGET_EVERY
-- commands or decisions: TIME costs about a microsecond in a step.
local BUDGET_EVERY = 4

-- A stream position's milliseconds: the time Redis accepted the entry.
local function position_ms(id)
  return tonumber(string.match(id, '^(%d+)'))
end
