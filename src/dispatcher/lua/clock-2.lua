--[[
  The clock: turns the timers that are due into commands, in one step. A timer is removed in the
  same step that appends its command, so however many dispatchers run the clock, each timer is
  appended once. The projector applies the command like any other, and it changes something only
  if its timer is still current (an offer not answered meanwhile, the same wrap-up, the same
  contact still waiting): time never changes state by itself, the log says when it did.

  KEYS[1] timers (zset: due ms, member; src/adapters/redis/lua/includes/documents.lua)
  KEYS[2] command stream

  ARGV[1] most timers fired in this call
  ARGV[2] optional: the time now (ms), instead of Redis's clock (tests); '' for Redis's clock
  ARGV[3] optional: '1' to have the command ids of the timers fired returned too

  Returns {timers fired, the next due time (ms) or -1 when none, the command ids appended...}
  (the ids with ARGV[3] only).
]]
local K_TIMERS, K_COMMANDS = KEYS[1], KEYS[2]
local MAX = tonumber(ARGV[1])

--@include "json"
--@include "time"

local given = tonumber(ARGV[2])
local now = given or now_ms()
local named = ARGV[3] == '1'
local ids = {}
local due = redis.call('ZRANGE', K_TIMERS, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, MAX, 'WITHSCORES')
local fired = 0
for i = 1, #due, 2 do
  local member, at = due[i], due[i + 1]
  local kind, id, n = string.match(member, '^(%a)|(.*)|(%d+)$')
  local type_, command
  if kind == 'o' then
    type_, command = 'ExpireOffer', { contactId = id, offer = tonumber(n) }
  elseif kind == 'w' then
    type_, command = 'EndWrapUp', { agentId = id, wrapUp = tonumber(n) }
  elseif kind == 'm' then
    type_, command = 'ExpireContact', { contactId = id, seq = tonumber(n) }
  elseif kind == 'f' then
    type_, command = 'EndPreference', { contactId = id, seq = tonumber(n) }
  elseif kind == 'r' then
    -- "r|<contact>|<arrival seq>|<step>": the id part holds the contact and its arrival.
    local contact, seq = string.match(id, '^(.*)|(%d+)$')
    if contact then type_, command = 'AdvanceStep', { contactId = contact, seq = tonumber(seq), step = tonumber(n) } end
  end
  redis.call('ZREM', K_TIMERS, member)
  if type_ then
    local command_id = 'timer:' .. member .. ':' .. at
    -- At the step's time by Redis's clock (xadd_at): never before the timer's due time.
    if given then
      redis.call('XADD', K_COMMANDS, '*', 'type', type_, 'commandId', command_id, 'command', cjson.encode(command))
    else
      xadd_at(K_COMMANDS, now, 'type', type_, 'commandId', command_id, 'command', cjson.encode(command))
    end
    fired = fired + 1
    if named then ids[fired] = command_id end
  end
end
local next_due = redis.call('ZRANGE', K_TIMERS, 0, 0, 'WITHSCORES')[2]
local out = { fired, tonumber(next_due) or -1 }
for i = 1, #ids do out[i + 2] = ids[i] end
return out
