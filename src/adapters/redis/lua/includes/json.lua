-- JSON encoding that keeps what cjson loses: empty arrays stay arrays (tables marked with
-- ARRAY), integers up to 2^53 print exactly, and RAW splices a JSON text verbatim (a contact's
-- attributes are kept as the client sent them and never decoded here).
local ARRAY = {}
local RAW = {}
local function json_array(t) return setmetatable(t or {}, ARRAY) end
local function json_raw(s) return setmetatable({ s = s }, RAW) end

local json_encode
json_encode = function(v)
  local ty = type(v)
  if ty == 'string' then return cjson.encode(v) end
  if ty == 'number' then
    if v == math.floor(v) and v > -9007199254740992 and v < 9007199254740992 then
      return string.format('%d', v)
    end
    return string.format('%.17g', v)
  end
  if ty == 'boolean' then return v and 'true' or 'false' end
  if ty ~= 'table' then return 'null' end
  local mt = getmetatable(v)
  if mt == RAW then return v.s end
  if mt == ARRAY or #v > 0 then
    local parts = {}
    for i = 1, #v do parts[i] = json_encode(v[i]) end
    return '[' .. table.concat(parts, ',') .. ']'
  end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = cjson.encode(tostring(k)) .. ':' .. json_encode(x) end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- An integer as Redis expects it: Lua's own tostring keeps only 14 digits.
local function int(n) return string.format('%d', n) end
