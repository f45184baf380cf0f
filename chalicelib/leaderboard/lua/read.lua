-- What every script on a window shares: the reader's view of the window, byte order,
-- and the most common spellings.  Runs after shards.lua.
--
-- KEYS  1 the window's sorted set, 2 all time, 3 variants, 4 spellings, 5 meta
-- ARGV  1 the window's head at the reader's clock ("" for all time)
-- A window the writer has not rolled for longer than its length (every bucket in it has
-- left at the reader's clock) reads as empty: `gone`.

local meta = redis.call('HMGET', KEYS[5], 'cur', 'updated_at')
local z, gone = KEYS[1], false
if ARGV[1] ~= '' then
  local cur = tonumber(meta[1])
  gone = cur ~= nil and tonumber(ARGV[1]) > cur
end

-- bytewise a < b (Lua's own '<' follows the server's LC_COLLATE)
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- the most common spelling of each tag, all time: the case-folded spelling's count is
-- the tag's all-time count minus its other spellings' counts; ties go to the smallest
-- spelling in byte order
local function spelled(names)
  local out = {}
  if #names == 0 then return out end
  local variants = hmget_all(KEYS[3], names)
  for i, tag in ipairs(names) do
    local v = variants[i]
    if not v then
      out[i] = tag
    else
      local best, best_count, others = nil, -1, 0
      for s in string.gmatch(v, '[^\t]+') do
        local c = tonumber(redis.call('HGET', KEYS[4], s) or 0)
        others = others + c
        if c > best_count or (c == best_count and less(s, best)) then best, best_count = s, c end
      end
      local own = tonumber(redis.call('ZSCORE', KEYS[2], tag) or 0) - others
      if own > best_count or (own == best_count and less(tag, best)) then best = tag end
      out[i] = best
    end
  end
  return out
end

-- the tags of a flat reply {tag, x, ...} with `stride` fields a tag
local function names_of(flat, stride)
  local names = {}
  for i = 1, #flat, stride do names[#names + 1] = flat[i] end
  return names
end

