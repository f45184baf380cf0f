-- query: every read of a board, in one read-only script (so one call is one consistent
-- view, and could run on a replica; the writer rolls the windows and stores rising's
-- order).  Runs after shards.lua, read.lua and rising.lua.
--
-- KEYS 1-5 and ARGV[1] as read.lua; ARGV[2] the question, ARGV[3..] its arguments:
--   top     ARGV 3 first, 4 last (0-based positions, inclusive); KEYS 6 sources.
--           Replies {updated_at, window size, {tag, score, rank, ...}, spellings, sources}
--   tag     ARGV 3 the case-folded tag, 4 neighbours each side, 5 hours in the chart
--           (0: no chart), 6 the start of its first hour, 7 bucket seconds; KEYS 6 the
--           first key of the chart's first bucket (its name ends in that start: the
--           other buckets' names are made from it).
--           Replies {updated_at, false} when the tag has no count in the window, else
--           {updated_at, its position, first position shown, {tag, score, rank, ...},
--           spellings, its count per hour, oldest first}
--   rising  KEYS 6-9 and ARGV 3-9 as rising.lua.
--           Replies {updated_at, candidates, {tag, count, expected, score, ...},
--           spellings, sources}
--   size    Replies {updated_at, window size}
--
-- Ranked order: score descending, the tags of one score in byte order (ZREVRANGE gives
-- them in reverse); a tag's rank is 1 + the number of tags scoring higher (standard
-- competition ranking: 1, 2, 2, 4).  Bounded: a few O(log N) calls per distinct score.

local function higher_than(score)
  return redis.call('ZCOUNT', z, '(' .. score, '+inf')
end

-- {tag, score, rank, ...} at 0-based positions first..last of the ranked order
local function ranked(first, last)
  if gone or last < first then return {} end
  local flat = redis.call('ZREVRANGE', z, first, last, 'WITHSCORES')
  local out, pos, i = {}, first, 1
  while i <= #flat do
    local score, take, j = flat[i + 1], 0, i
    while j <= #flat and flat[j + 1] == score do
      take = take + 1
      j = j + 2
    end
    local higher = higher_than(score)
    local group = redis.call('ZRANGEBYSCORE', z, score, score, 'LIMIT', pos - higher, take)
    for _, tag in ipairs(group) do
      out[#out + 1], out[#out + 2], out[#out + 3] = tag, score, higher + 1
    end
    pos, i = pos + take, j
  end
  return out
end

-- a tag's 0-based position in the ranked order, or nil
local function position(tag)
  if gone then return nil end
  local score = redis.call('ZSCORE', z, tag)
  if not score then return nil end
  local higher = higher_than(score)
  local ties = redis.call('ZCOUNT', z, score, score)
  local back = redis.call('ZREVRANK', z, tag) - higher  -- among its ties, reverse order
  return higher + ties - 1 - back
end

-- the tag's count in each hour: the sum of its counts in the hour's buckets
local function hourly(tag, hours, first, step)
  local out = {}
  if hours == 0 then return out end
  local prefix = string.sub(KEYS[6], 1, #KEYS[6] - #string.format('%d', first))
  local per_hour = 3600 / step
  local bases = {}
  for i = 0, hours * per_hour - 1 do
    bases[#bases + 1] = prefix .. string.format('%d', first + i * step)
  end
  local depth_keys = {}
  for i, base in ipairs(bases) do depth_keys[i] = base .. ':depth' end
  local depths = redis.call('MGET', unpack(depth_keys))  -- one call, not one a bucket
  for h = 1, hours do
    local sum = 0
    for i = (h - 1) * per_hour + 1, h * per_hour do
      sum = sum + bucket_count(bases[i], tonumber(depths[i]) or 0, tag)
    end
    out[h] = sum
  end
  return out
end

local question, updated = ARGV[2], meta[2]
if question == 'top' then
  local flat = ranked(tonumber(ARGV[3]), tonumber(ARGV[4]))
  local size = gone and 0 or redis.call('ZCARD', z)
  return {updated, size, flat, spelled(names_of(flat, 3)), redis.call('HGETALL', KEYS[6])}
elseif question == 'tag' then
  local r = position(ARGV[3])
  if not r then return {updated, false} end
  local n = tonumber(ARGV[4])
  local start = math.max(0, r - n)
  local flat = ranked(start, r + n)
  return {updated, r, start, flat, spelled(names_of(flat, 3)),
          hourly(ARGV[3], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))}
elseif question == 'rising' then
  -- the writer's stored order when it is current (a few O(log N) calls for the page),
  -- else the same order computed here
  local sources = redis.call('HGETALL', KEYS[7])
  if gone then return {updated, 0, {}, {}, sources} end
  if redis.call('HGET', KEYS[9], ARGV[9]) == rising_stamp() then
    local total, out, spellings = rising_page()
    return {updated, total, out, spellings, sources}
  end
  local names, count, expect, score = score_candidates()
  -- only the page is ordered in full: the scores (plain numbers: a fast sort) give the
  -- threshold of the page's last place, then the few above it are sorted with ties
  local first = tonumber(ARGV[4])
  local last = math.min(#names, first + tonumber(ARGV[5]))
  local out, picked = {}, {}
  if last > first then
    local order = {}
    for i = 1, #names do order[i] = score[i] end
    table.sort(order)
    local threshold = order[#order - last + 1]
    local top = {}
    for i = 1, #names do
      if score[i] >= threshold then top[#top + 1] = i end
    end
    table.sort(top, before(names, score))
    for r = first + 1, last do
      local i, o = top[r], #out
      out[o + 1], out[o + 2] = names[i], count[i]
      out[o + 3], out[o + 4] = tostring(expect[i]), tostring(score[i])
      picked[#picked + 1] = names[i]
    end
  end
  return {updated, #names, out, spelled(picked), sources}
elseif question == 'size' then
  return {updated, gone and 0 or redis.call('ZCARD', z)}
end
return redis.error_reply('unknown question ' .. tostring(question))
