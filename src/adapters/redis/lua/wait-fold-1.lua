--[[
  Adds a fold of AssignmentMade waits to a workspace's wait histogram (src/adapters/http/
  wait-histogram.ts), once: only while the hash's cursor is still the one the fold started from,
  and it moves the cursor past the events folded in the same step. A fold that finds the cursor
  moved (another instance folded those events first) changes nothing.
  KEYS[1] the histogram hash (fields le:<s>, count, sum_ms, cursor)
  ARGV[1] the cursor the fold read from     ARGV[2] the cursor after the events it folded
  ARGV[3..] field, increment, field, increment, ...
  Returns 1 when added, 0 when the cursor had moved.
]]
if redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'cursor', ARGV[2])
return 1
