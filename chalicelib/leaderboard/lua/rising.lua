-- Rising, shared by the read script (query.lua) and the writer's refresh_rising.lua.
-- Runs after shards.lua and read.lua.
--
-- KEYS  1-5 as read.lua, 6 the baseline window's sorted set, 7 sources, 8 the window's
--       candidates in rising order as the writer scored them (a LIST: a page is one
--       LRANGE; a sorted set of float scores costs ~2 ms to build in a script), 9 the
--       stamps of those orders (a HASH window -> stamp)
-- ARGV  3 candidates, 4 offset, 5 page size, 6 the window's seconds, 7 the baseline
--       window's seconds, 8 smoothing, 9 the window's name
-- A candidate (one of the window's `candidates` highest tags by count) with count c in
-- the window and b in the baseline window, which ends where the window ends, is expected
-- e = (b - c) * W / (L - W) in the window (its rate over the rest of the baseline); its
-- score is (c - e) / sqrt(e + smoothing): how far, in Poisson standard deviations, it
-- beats its expected count.

-- a tag's expected count and score from its counts in the window and the baseline
local function rising_of(c, b)
  local w = tonumber(ARGV[6])
  local e = math.max(0, (tonumber(b) or c) - c) * w / (tonumber(ARGV[7]) - w)
  return e, (c - e) / math.sqrt(e + tonumber(ARGV[8]))
end

-- what an order was computed from: the writers bump meta's gen on every change to the
-- windows; updated_at and the arguments in too
local function rising_stamp()
  local m = redis.call('HMGET', KEYS[5], 'gen', 'updated_at')
  return table.concat({m[1] or '0', m[2] or '', ARGV[3], ARGV[6], ARGV[7], ARGV[8]}, ':')
end

-- the window's ARGV[3] highest tags: names, counts, expected counts, scores
local function score_candidates()
  local flat = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
  local names, count, expect, score = names_of(flat, 2), {}, {}, {}
  if #names == 0 then return names, count, expect, score end
  local base = redis.call('ZMSCORE', KEYS[6], unpack(names))
  for i = 1, #names do
    count[i] = tonumber(flat[2 * i])
    expect[i], score[i] = rising_of(count[i], base[i])
  end
  return names, count, expect, score
end

-- scores descending, ties in byte order: the one order both paths list
local function before(names, score)
  return function(a, b)
    if score[a] ~= score[b] then return score[a] > score[b] end
    return less(names[a], names[b])
  end
end

-- from the writer's stored order: candidates, {tag, count, expected, score, ...}, spellings
local function rising_page()
  local first, n = tonumber(ARGV[4]), tonumber(ARGV[5])
  local total = redis.call('LLEN', KEYS[8])
  if n == 0 or first >= total then return total, {}, {} end
  local names = redis.call('LRANGE', KEYS[8], first, first + n - 1)
  local counts = redis.call('ZMSCORE', KEYS[1], unpack(names))
  local base = redis.call('ZMSCORE', KEYS[6], unpack(names))
  local out = {}
  for i = 1, #names do
    local c = tonumber(counts[i]) or 0
    local e, score = rising_of(c, base[i])
    local o = #out
    out[o + 1], out[o + 2] = names[i], c
    out[o + 3], out[o + 4] = tostring(e), tostring(score)
  end
  return total, out, spelled(names)
end

