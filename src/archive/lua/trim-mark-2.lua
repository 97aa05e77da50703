--[[
  Trims a stream up to an archived segment's last entry and marks that segment, in one step, only
  if the mark is behind it: the mark never moves back, so an archiver that kept running after it
  lost its lease (and another took the workspace further) cannot undo the newer mark. Trimming to
  an older position than an earlier trim would be a no-op anyway.

  KEYS[1] the stream (commands or events)
  KEYS[2] the archive marks (hash: field = stream name, value = the mark's JSON)

  ARGV[1] the stream's name (the field)
  ARGV[2] the first position to keep (the segment's last position's successor; '' when that last
          is the largest position there is, which no entry can follow: the stream is emptied)
  ARGV[3] the mark's JSON
  ARGV[4] the segment's index
  ARGV[5] the segment's last position (optional): the stream must still hold it
  ARGV[6..] that entry's fields and values, as the segment holds them (optional): the entry the
          stream holds there must have these (a Redis whose clock is behind the lost entries'
          makes new ones at their positions)

  Returns 1 when trimmed and marked, 0 when the mark was already at or past the segment, -1 when
  the stream no longer holds the segment's last entry: the step read it there, so Redis lost it
  since (restarted from an older copy between the read and this step), and marking the segment
  would chain the archive of what it lost onto what it holds; nothing is changed, and the
  archiver's next look at the stream refuses it with what to do.
]]
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current then
  local ok, mark = pcall(cjson.decode, current)
  if ok and type(mark) == 'table' and tonumber(mark.index) and tonumber(mark.index) >= tonumber(ARGV[4]) then
    return 0
  end
end
if ARGV[5] and ARGV[5] ~= '' then
  local held = redis.call('XRANGE', KEYS[1], ARGV[5], ARGV[5], 'COUNT', 1)[1]
  if not held then return -1 end
  if #ARGV > 5 then
    local fields = held[2]
    if #fields ~= #ARGV - 5 then return -1 end
    for i = 1, #fields do
      if fields[i] ~= ARGV[i + 5] then return -1 end
    end
  end
end
if ARGV[2] == '' then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
else
  redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
