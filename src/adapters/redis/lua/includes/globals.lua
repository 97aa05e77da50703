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
local function globals_reset()
  redis, cjson, string, table, math, tonumber, tostring, type, pairs, ipairs, next, unpack,
    setmetatable, getmetatable, pcall = read_globals()
end
redis = loading_redis
