-- The globals a step uses, as locals of the file (its functions' upvalues), set by each call
-- (globals_reset, first thing in `step`). Run as a Redis Function, a step reads a global through
-- its library's empty globals table and that table's __index, a second lookup each time (about 10 %
-- of a busy step's time); an upvalue is one read. At FUNCTION LOAD the globals are another, smaller
-- set (no cjson), so they are read per call, not when the file loads.
local function read_globals()
  return redis, cjson, string, table, math, tonumber, tostring, type, pairs, ipairs, next, unpack,
    setmetatable, getmetatable, pcall
end
-- The `redis` there is while the file loads: a library's loader (register_function, the file's
-- last line), or Redis's own for a script (whose `step` runs at once and resets it anyway).
local loading_redis = redis
local redis, cjson, string, table, math, tonumber, tostring, type, pairs, ipairs, next, unpack,
  setmetatable, getmetatable, pcall

-- Byte order of two strings, whatever the server's locale. Lua's `<` on strings follows the
-- collation redis-server takes from its environment (LC_COLLATE), which is byte order only in the
-- C locales: under en_US.UTF-8, "a" < "B". Contact and agent ids, and the pool members that hold
-- them, sort by bytes in Redis and in the rule (src/domain/routing.ts), so every comparison of them
-- in a step goes through `sorts_before`, set per call by globals_reset: `<` itself where the collation
-- is byte order, a byte-by-byte walk elsewhere.
local function bytes_before(a, b)
  if a == b then return false end
  local n = #a < #b and #a or #b
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function native_before(a, b) return a < b end
local sorts_before

local function globals_reset()
  redis, cjson, string, table, math, tonumber, tostring, type, pairs, ipairs, next, unpack,
    setmetatable, getmetatable, pcall = read_globals()
  sorts_before = ('B' < 'a' and 'a-' < 'a0' and 'aZ' < 'a|') and native_before or bytes_before
end
redis = loading_redis

