-- Writes a step makes once, at its end, however many commands or decisions asked for them: the
-- dispatcher's wake signal and the workspace's counters. A step calls deferred_flush() last (the
-- step is atomic, so nobody sees the counters or the signal before its other writes).
local wake_due = false
local wake_if_queued_due = false
local stat_counts = {}
local stat_fields = {}

-- A step starts with nothing deferred (a Redis Function's top level outlives its calls).
local function deferred_reset()
  wake_due, wake_if_queued_due, stat_counts, stat_fields = false, false, {}, {}
end

local function wake()
  wake_due = true
end

-- Wakes the dispatcher only if some contact is queued when the step ends: an agent who becomes
-- available with nobody waiting leaves its pool a candidate, which the next contact's wake-up
-- looks at; a dispatch step now would find nothing to do.
local function wake_if_queued()
  wake_if_queued_due = true
end

local function stat_add(field, n)
  local c = stat_counts[field]
  if not c then
    stat_fields[#stat_fields + 1] = field
    c = 0
  end
  stat_counts[field] = c + (n or 1)
end

local function deferred_flush()
  for i = 1, #stat_fields do
    redis.call('HINCRBY', K_STATS, stat_fields[i], int(stat_counts[stat_fields[i]]))
  end
  if wake_due or (wake_if_queued_due and redis.call('EXISTS', K_QUEUE) == 1) then
    redis.call('ZADD', K_WAKE, '0', 'w')
  end
end

-- A window set ("<queue>|<ms, 15 digits>|...", lexicographic): each of `queues` keeps its members
-- of the last `window_ms` before `now`, at most `keep` (the newest). A step calls it once at its
-- end for the queues it wrote, not per member: nobody reads the set within a step, so between
-- steps it holds what trimming after each member would leave, and a step's cost grows with its
-- own writes, not with the set. The newest member older than the `keep` newest is read (Redis
-- walks back `keep` members from the range's end) and, when there is one, the range is cut up to
-- it: one call each, with no count of the range and no members sent back to be removed.
local function window_trim(key, queues, now, window_ms, keep)
  local skip = int(keep)
  for i = 1, #queues do
    local queue = queues[i]
    local lo, hi = '[' .. queue .. '|', '(' .. queue .. '|\255'
    redis.call('ZREMRANGEBYLEX', key, lo, '(' .. queue .. '|' .. string.format('%015d', now - window_ms))
    local past = redis.call('ZRANGE', key, hi, lo, 'BYLEX', 'REV', 'LIMIT', skip, '1')[1]
    if past then redis.call('ZREMRANGEBYLEX', key, lo, '[' .. past) end
  end
end
