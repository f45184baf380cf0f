-- refresh_rising: the writer's half of rising.  Runs after shards.lua, read.lua and
-- rising.lua, with their KEYS and ARGV (ARGV 1, 2 unused).
-- Scores the window's candidates and stores their order (KEYS[8]) with its stamp
-- (KEYS[9]), unless the stored stamp is current.  Called at the end of every ingest and
-- import, so reads between two ingests take a page from the stored order (about a top
-- read's cost) instead of scoring every candidate (~2 us each).
-- Returns the number of candidates scored, or -1 when the stored order was current.

local stamp = rising_stamp()
if redis.call('HGET', KEYS[9], ARGV[9]) == stamp then return -1 end
local names, _, _, score = score_candidates()
local order = {}
for i = 1, #names do order[i] = i end
table.sort(order, before(names, score))
redis.call('DEL', KEYS[8])
for i = 1, #order, 1000 do
  local part = {}
  for j = i, math.min(i + 999, #order) do part[#part + 1] = names[order[j]] end
  redis.call('RPUSH', KEYS[8], unpack(part))
end
redis.call('HSET', KEYS[9], ARGV[9], stamp)
return #names
