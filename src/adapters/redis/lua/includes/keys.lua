-- Per-document and per-skill keys of the workspace, from the prefix in ARGV[1]; the spelling
-- is the same as src/adapters/redis/keys.ts (a test keeps them in step).
local P = ARGV[1]
local function k_agent(id) return P .. 'agent:' .. id end
local function k_contact(id) return P .. 'contact:' .. id end
local function k_avail(skill) return P .. 'avail:' .. skill end
local function k_skillset_queue(name) return P .. 'q:' .. name end
local function k_idempotency(key) return P .. 'idem:' .. key end
