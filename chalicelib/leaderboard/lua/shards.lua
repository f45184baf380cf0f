-- Groups of keys that split as they grow, so that every key keeps a compact encoding.
--
-- A group is named by its first key `base`; its depth d is in the key base .. ':depth'
-- (absent: 0).  At depth d its members are spread over 2^d keys by a hash of the member:
-- `base` itself at depth 0, else base:<d>.<k> for k = hash % 2^d.  Before a key would pass
-- `limit` members the whole group splits to depth d + 2 (each key into four), so keys
-- stay 1/8 to full whatever the rate, and a key's own overhead is spread over many members.
-- Redis (and MemoryDB) keep a set of at most set-max-intset-entries (512) integers as an
-- intset, 8 B a member, and a hash of at most hash-max-listpack-entries (128) short fields
-- as a listpack, ~15 B a field; past those limits either becomes a hash table, ~65-80 B a
-- member.  The keys of depth > 0 are named here, from `base` (which the caller passes in
-- KEYS): which exist is state only the script sees, and every one carries the board's
-- {hash tag}, so all of them stay in the board's cluster slot.
--
-- Two kinds of group:
--   SET   dedupe markers of one hour of tweet ids (members: ids, hashed by id_hash)
--   HASH  a time bucket's counts (fields: case-folded tag -> count, hashed by tag_hash)
-- A bucket may also be a plain string, one JSON line [tag, count, ...] per batch, as
-- boards written by earlier releases hold them: it is read as such, and turned into a
-- hash group by its next write (log_counts, bucket_counts, bucket_count, add_counts).

local MAX_DEPTH = 16  -- 65,536 keys: past that, keys grow instead
local SPLIT_STEP = 2
local HP, HA = 2147483629, 2654435  -- a prime < 2^31 and a multiplier (see id_hash)
local fmod = math.fmod

-- fmod(fmod(id as a double, HP) * HA, HP): tonumber and fmod are exact IEEE operations
-- (Python's float() and math.fmod give the same: keys.marker_hash), every product stays
-- below 2^53, and the multiplier spreads ids that differ only in high bits.  Python sends
-- the hashes of a batch's ids (Lua is slow at this: ~1 us an id); the script hashes only
-- the ids a split moves.
local id_hashes = {}
local function id_hash(id)
  local h = id_hashes[id]
  if h then return h end
  h = fmod(fmod(tonumber(id), HP) * HA, HP)
  id_hashes[id] = h
  return h
end

-- a polynomial hash of the tag's bytes modulo HP (exact in doubles: h * 31 + 255 < 2^53)
local tag_hashes = {}
local function tag_hash(tag)
  local h = tag_hashes[tag]
  if h then return h end
  h = 0
  for i = 1, #tag do h = fmod(h * 31 + string.byte(tag, i), HP) end
  tag_hashes[tag] = h
  return h
end

local SET = {read = 'SMEMBERS', write = 'SADD', size = 'SCARD', stride = 1, hash = id_hash}
local HASH = {read = 'HGETALL', write = 'HSET', size = 'HLEN', stride = 2, hash = tag_hash}

local function shard_key(base, d, k)
  if d == 0 then return base end
  return base .. ':' .. d .. '.' .. string.format('%d', k)
end

local function depth_of(base)
  return tonumber(redis.call('GET', base .. ':depth') or 0)
end

local function shard_of(kind, member, d)
  if d == 0 then return 0 end
  return kind.hash(member) % (2 ^ d)
end

-- flat entries {member, [value,] ...} by the key that holds them at depth d: {k: {...}}
local function by_shard(kind, flat, d)
  local by, stride = {}, kind.stride
  for i = 1, #flat, stride do
    local k = shard_of(kind, flat[i], d)
    local t = by[k]
    if not t then
      t = {}
      by[k] = t
    end
    for j = 0, stride - 1 do t[#t + 1] = flat[i + j] end
  end
  return by
end

local function write_all(kind, key, flat)
  for first = 1, #flat, 4000 do  -- 4000: whole entries of either kind
    redis.call(kind.write, key, unpack(flat, first, math.min(first + 3999, #flat)))
  end
end

local function hmget_all(key, names)
  local out, n = {}, #names
  for i = 1, n, 500 do
    local part = redis.call('HMGET', key, unpack(names, i, math.min(i + 499, n)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end

-- every key of depth d into 2^SPLIT_STEP keys of depth d + SPLIT_STEP (k, k + 2^d,
-- k + 2 * 2^d...), keeping each one's TTL.  Four at a time, not two: each member moves a
-- third as often as with doubling, for keys that are 1/8 to full instead of 1/4 to full.
local function split(kind, base, d)
  for k = 0, 2 ^ d - 1 do
    local old = shard_key(base, d, k)
    local flat = redis.call(kind.read, old)
    if #flat > 0 then
      local ttl = redis.call('PTTL', old)
      for j, part in pairs(by_shard(kind, flat, d + SPLIT_STEP)) do
        local key = shard_key(base, d + SPLIT_STEP, j)
        write_all(kind, key, part)
        if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
      end
      redis.call('DEL', old)
    end
  end
end

-- the group's depth once no key would pass `limit` with `flat` added: splits as needed.
-- fresh(key, part) is how many of part's entries key does not hold yet.
local function make_room(kind, base, d, flat, limit, fresh)
  while d + SPLIT_STEP <= MAX_DEPTH do
    local full = false
    for k, part in pairs(by_shard(kind, flat, d)) do
      local key = shard_key(base, d, k)
      if redis.call(kind.size, key) + fresh(key, part) > limit then
        full = true
        break
      end
    end
    if not full then break end
    split(kind, base, d)
    d = d + SPLIT_STEP
    redis.call('SET', base .. ':depth', d)
  end
  return d
end

-- add ids none of the group's keys holds (group `base` at depth d); every key added to,
-- and the depth key, live `ttl` seconds more
local function add_markers(base, d, ids, limit, ttl)
  if #ids == 0 then return end
  d = make_room(SET, base, d, ids, limit, function(_, part) return #part end)
  for k, part in pairs(by_shard(SET, ids, d)) do
    local key = shard_key(base, d, k)
    write_all(SET, key, part)
    redis.call('EXPIRE', key, ttl)
  end
  if d > 0 then redis.call('EXPIRE', base .. ':depth', ttl) end
end

-- a log bucket's counts: {tag: count}, added into `into`
local function log_counts(log, into)
  for line in string.gmatch(log, '[^\n]+') do
    local counts = cjson.decode(line)
    for q = 1, #counts, 2 do
      into[counts[q]] = (into[counts[q]] or 0) + counts[q + 1]
    end
  end
  return into
end

-- every count of a bucket group, added into `into` ({tag: count})
local function bucket_counts(base, into)
  local t = redis.call('TYPE', base)
  if (t.ok or t) == 'string' then return log_counts(redis.call('GET', base), into) end
  local d = depth_of(base)
  for k = 0, 2 ^ d - 1 do
    local flat = redis.call('HGETALL', shard_key(base, d, k))
    for i = 1, #flat, 2 do into[flat[i]] = (into[flat[i]] or 0) + tonumber(flat[i + 1]) end
  end
  return into
end

-- one tag's count in a bucket group at depth d (one call: the chart reads a day of them)
local function bucket_count(base, d, tag)
  local v = redis.pcall('HGET', shard_key(base, d, shard_of(HASH, tag, d)), tag)
  if type(v) == 'table' and v.err then  -- not a hash: a log bucket
    return log_counts(redis.call('GET', base), {})[tag] or 0
  end
  return tonumber(v or 0)
end

local function delete_group(base)
  local d = depth_of(base)
  for k = 0, 2 ^ d - 1 do redis.call('DEL', shard_key(base, d, k)) end
  redis.call('DEL', base .. ':depth')
end

-- add {tag: count} to a bucket group; every key added to, and the depth key, live `ttl`
-- seconds more
local function add_counts(base, counts, limit, ttl)
  local flat = {}
  for tag, c in pairs(counts) do
    flat[#flat + 1] = tag
    flat[#flat + 1] = c
  end
  if #flat == 0 then return end
  local t = redis.call('TYPE', base)
  if (t.ok or t) == 'string' then  -- a log bucket: its counts join the new ones
    local old = log_counts(redis.call('GET', base), {})
    redis.call('DEL', base)
    for i = 1, #flat, 2 do old[flat[i]] = (old[flat[i]] or 0) + flat[i + 1] end
    flat = {}
    for tag, c in pairs(old) do
      flat[#flat + 1] = tag
      flat[#flat + 1] = c
    end
  end
  local held = {}  -- key -> its current values of the part's tags (HMGET, in part order)
  local function current(key, part)
    local names = {}
    for i = 1, #part, 2 do names[#names + 1] = part[i] end
    held[key] = hmget_all(key, names)
    return held[key]
  end
  local function fresh(key, part)
    local n = 0
    for _, v in ipairs(current(key, part)) do
      if not v then n = n + 1 end
    end
    return n
  end
  local d = make_room(HASH, base, depth_of(base), flat, limit, fresh)
  for k, part in pairs(by_shard(HASH, flat, d)) do
    local key = shard_key(base, d, k)
    local now = held[key] or current(key, part)
    for i = 2, #part, 2 do part[i] = (tonumber(now[i / 2]) or 0) + part[i] end
    write_all(HASH, key, part)
    redis.call('EXPIRE', key, ttl)
  end
  if d > 0 then redis.call('EXPIRE', base .. ':depth', ttl) end
end

-- every key of a group fails with WRONGTYPE unless it is absent or of type `want`
-- (`also`: a type its first key may have too); call before the script's first write
local function check_group(base, want, also)
  local d = depth_of(base)
  for k = 0, 2 ^ d - 1 do
    local key = shard_key(base, d, k)
    local t = redis.call('TYPE', key)
    t = t.ok or t
    if t ~= 'none' and t ~= want and not (k == 0 and d == 0 and t == also) then
      error('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. want)
    end
  end
end

