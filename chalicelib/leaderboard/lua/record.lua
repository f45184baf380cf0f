-- record: count a batch of tweets exactly once, roll the windows, move the checkpoint.
-- Runs after shards.lua and write.lua.  Also the writer's bounded roll: a call with no
-- tweets and touch 0 only rolls.
--
-- KEYS  1 meta, 2-4 the windows 1h, 24h, 7d, 5 all time, 6 variants, 7 spellings,
--       8 progress, 9 sources; then the first keys of: the `leaving` buckets (see
--       write.lua's roll), the tweets' buckets (one per entry of bucket_starts), the
--       marker groups (marker_groups of them)
-- ARGV[1] a JSON object:
--   expected_heads, new_heads, roll   the roll plan (write.lua)
--   leaving           how many leaving buckets follow KEYS[9]
--   bucket_starts     start time of each tweet bucket
--   bucket_ttls       TTL in seconds of each tweet bucket
--   marker_groups     how many marker groups
--   tweets            per tweet [bucket index (0: older than the 7d window, no bucket),
--                     marker group index, id, spelling...]
--   id_hashes         per tweet, id_hash of its id (Python's keys.marker_hash)
--   folded            {spelling: case-folded key} for spellings other than their key
--   marker_ttl        seconds a marker lives at least
--   marker_set_max    most ids a marker set holds
--   bucket_shard_max  most tags a bucket key holds
--   progress_set      [field, value...] set in the progress hash
--   progress_delete   [field...] deleted from it
--   source            the source's name, "" for none
--   updated_at        the clock time to store as meta's updated_at
--   touch             1: a record call (progress, updated_at); 0: a roll only
-- Returns {1, tweets newly counted, h1h, h24h, h7d, cur}, or {0, 0, the stored heads...}
-- when the plan was made from an outdated view: nothing was written.

local p = cjson.decode(ARGV[1])
local n_buckets, n_groups, n_tweets = #p.bucket_starts, p.marker_groups, #p.tweets
local bucket_at = 9 + p.leaving
local group_at = bucket_at + n_buckets
-- every check before the first write: a script that fails midway keeps what it wrote
check_types(1, 1, 'hash')
check_types(2, 5, 'zset')
check_types(6, 9, 'hash')
for i = 10, group_at do check_group(KEYS[i], 'hash', 'string') end

-- which tweets are new: one SMISMEMBER per marker set, not one call per tweet
-- (a marker key of another type fails here, before any write)
local members, owners = {}, {}
for g = 1, n_groups do members[g], owners[g] = {}, {} end
for i = 1, n_tweets do id_hashes[p.tweets[i][3]] = p.id_hashes[i] end
for i = 1, n_tweets do
  local g = p.tweets[i][2]
  local m = members[g]
  m[#m + 1] = p.tweets[i][3]
  owners[g][m[#m]] = owners[g][m[#m]] or i
end
local fresh, once, added, depth = {}, {}, {}, {}
for g = 1, n_groups do
  local base = KEYS[group_at + g]
  local d = depth_of(base)
  depth[g] = d
  local add = {}
  for k, ids in pairs(by_shard(SET, members[g], d)) do
    local key = shard_key(base, d, k)
    for first = 1, #ids, 4000 do
      local last = math.min(first + 3999, #ids)
      local there = redis.call('SMISMEMBER', key, unpack(ids, first, last))
      for q = first, last do
        local id = ids[q]
        if there[q - first + 1] == 0 and not once[id] then
          once[id] = true
          fresh[owners[g][id]] = true
          add[#add + 1] = id
        end
      end
    end
  end
  added[g] = add
end

local heads, stored = roll(1, 10, p)
if not heads then return {0, 0, stored[1], stored[2], stored[3], stored[4]} end

local in_window = {}
for j = 1, n_buckets do
  local b = p.bucket_starts[j]
  in_window[j] = {b >= heads[1], b >= heads[2], b >= heads[3]}
end
local folded = p.folded
local by_spelling = {}             -- spelling -> occurrences in new tweets
local by_bucket = {}               -- bucket index -> {tag -> count}
local by_window = {{}, {}, {}}     -- window -> {tag -> count}
for j = 1, n_buckets do by_bucket[j] = {} end
local new = 0
for i = 1, n_tweets do
  if fresh[i] then
    new = new + 1
    local tweet = p.tweets[i]
    local j = tweet[1]
    local bucket, w1, w2, w3
    if j > 0 then
      bucket = by_bucket[j]
      w1, w2, w3 = in_window[j][1], in_window[j][2], in_window[j][3]
    end
    for q = 4, #tweet do
      local s = tweet[q]
      if s ~= '' then
        by_spelling[s] = (by_spelling[s] or 0) + 1
        if bucket then
          local tag = folded[s] or s
          bucket[tag] = (bucket[tag] or 0) + 1
          if w1 then by_window[1][tag] = (by_window[1][tag] or 0) + 1 end
          if w2 then by_window[2][tag] = (by_window[2][tag] or 0) + 1 end
          if w3 then by_window[3][tag] = (by_window[3][tag] or 0) + 1 end
        end
      end
    end
  end
end

for g = 1, n_groups do
  add_markers(KEYS[group_at + g], depth[g], added[g], p.marker_set_max, p.marker_ttl)
end

if new > 0 then
  local all_time = {}
  for s, c in pairs(by_spelling) do
    local tag = folded[s]
    if tag then
      -- a spelling other than its case-folded key: count it; note it once per tag
      if redis.call('HINCRBY', KEYS[7], s, c) == c then
        local v = redis.call('HGET', KEYS[6], tag)
        redis.call('HSET', KEYS[6], tag, v and (v .. '\t' .. s) or s)
      end
    else
      tag = s
    end
    all_time[tag] = (all_time[tag] or 0) + c
  end
  zincr_many(KEYS[5], all_time)
  for w = 1, 3 do zincr_many(KEYS[1 + w], by_window[w]) end
  redis.call('HINCRBY', KEYS[1], 'gen', 1)  -- the windows changed (see rising_stamp)
  if p.source ~= '' then redis.call('HINCRBY', KEYS[9], p.source, new) end
  for j = 1, n_buckets do
    add_counts(KEYS[bucket_at + j], by_bucket[j], p.bucket_shard_max, p.bucket_ttls[j])
  end
end

if p.touch == 1 then
  if #p.progress_set > 0 then redis.call('HSET', KEYS[8], unpack(p.progress_set)) end
  if #p.progress_delete > 0 then redis.call('HDEL', KEYS[8], unpack(p.progress_delete)) end
  redis.call('HSET', KEYS[1], 'updated_at', p.updated_at)
end
return {1, new, stored[1], stored[2], stored[3], stored[4]}
