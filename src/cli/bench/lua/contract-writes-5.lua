--[[
  The writes users see of assignment cycles, alone (npm run bench -- contract): the stream entries
  and documents real cycles wrote, written again into keys of the bench's own, with none of the
  routing keys. What a cycle cannot cost less than while it keeps the same commands, events,
  outcomes and documents.

  KEYS[1] commands  KEYS[2] events  KEYS[3] outcomes  (streams)
  KEYS[4] contacts  KEYS[5] agents                    (documents, hashes of JSON)

  ARGV[1] 'texts': each document read is read, each written is written as recorded;
          'encoded': each document read is decoded, each written is encoded (from the table read
          last for it, or from its recorded text), as a step holding documents as JSON does;
          'no-outcomes': as 'texts', without the outcome entries (stream 3)
  ARGV[2] the number of stream entries; each: the stream (1..3), its number of fields and values,
          then those (as recorded)
  then    the number of document operations; each: 'r' or 'w', the hash (4|5), the id, and for a
          write its text

  Every key the step touches is one of these. Returns the number of stream entries read from ARGV.
]]
local encoded = ARGV[1] == 'encoded'
local outcomes = ARGV[1] ~= 'no-outcomes'
local i = 2
local entries = tonumber(ARGV[i])
i = i + 1
for _ = 1, entries do
  local s, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  i = i + 2
  if s ~= 3 or outcomes then redis.call('XADD', KEYS[s], '*', unpack(ARGV, i, i + n - 1)) end
  i = i + n
end
local held = {}
local ops = tonumber(ARGV[i])
i = i + 1
for _ = 1, ops do
  local op, hash, id = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2]
  i = i + 3
  if op == 'r' then
    local text = redis.call('HGET', hash, id)
    if encoded and text then held[hash .. id] = cjson.decode(text) end
  else
    local text = ARGV[i]
    i = i + 1
    if encoded then text = cjson.encode(held[hash .. id] or cjson.decode(text)) end
    redis.call('HSET', hash, id, text)
  end
end
return entries
