"""The hashtag leaderboard in Redis: exactly-once counting, rolling windows, ranks.

Keys of one board.  Every key carries the hash tag ``{<name>}``, so all of them live
in one cluster slot and a script may touch any of them (Amazon MemoryDB always runs
as a cluster); scripts get every key they touch in KEYS, computed here in Python
(but the split marker sets, named in the script from their group's first set: see
_LUA_MARKERS).

    pulse:lb:{name}:z:all         ZSET  case-folded tag (str.casefold) -> count, all time
    pulse:lb:{name}:z:1h|24h|7d   ZSET  the same, for each rolling window
    pulse:lb:{name}:b:<start>     STR   counts of one time bucket (created_at in
                                        [start, start + bucket_seconds)): a log of one
                                        JSON line [tag, count, ...] per batch
    pulse:lb:{name}:seen:<hour>[:<d>.<k>]  SET  dedupe markers: ids of counted tweets of
                                        one hour of snowflake time, spread over 2^d sets
                                        of at most 512 (intsets: ~8.5 B a tweet at any
                                        rate), TTL marker_ttl
    pulse:lb:{name}:seen:<hour>:depth STR that hour's d (absent: 0, one set)
    pulse:lb:{name}:spellings     HASH  spelling other than its case-folded key -> count
    pulse:lb:{name}:variants      HASH  case-folded tag -> its other spellings (tab-separated)
    pulse:lb:{name}:meta          HASH  window heads h1h/h24h/h7d, roll position cur,
                                        updated_at, gen (bumped by every change to
                                        the windows)
    pulse:lb:{name}:rising:1h|24h LIST  the window's rising candidates in order, as the
                                        writer scored them
    pulse:lb:{name}:rising        HASH  window -> the stamp (gen...) its order was scored at
    pulse:lb:{name}:progress      HASH  the ingest orchestrator's checkpoint (since_id...)
    pulse:lb:{name}:schedule      HASH  the scheduler's notes: served_at, rate_limited_until
    pulse:lb:{name}:sources       HASH  source name (twitter|archive|synthetic) -> tweets
                                        counted from it
    pulse:lb:{name}:imports       HASH  SHA-256 of each archive file imported -> path, time
    pulse:lb:{name}:hz:<hour>     ZSET  tag -> count of the tweets created in that hour,
                                        for the last 24 h (a tag's hourly chart), TTL 26 h

Counting: `record` is one Lua script per batch.  It asks each marker set which ids
it holds (one SMISMEMBER per set, not a call per tweet), counts only the tweets not
there yet (and each id once within the batch), adds their ids (SADD, EXPIRE
marker_ttl: a marker lives at least that long; a group whose set would pass 512 ids
first splits, see _LUA_MARKERS), so replaying a batch (a retried
call, a resumed run, the same archive twice) changes nothing.  Occurrences are
summed in Lua tables first, then applied per distinct (key, tag): a sorted set gets
one ZMSCORE and one ZADD of the new scores per 2000 tags (cheaper than a ZINCRBY
call per tag; the script runs alone, so reading then writing is safe), a time
bucket one APPEND (a bucket is only ever read whole, when it leaves a window).
A script runs alone and to the end (its type checks come before its first write;
with effects replication a replica or the AOF gets it as one MULTI/EXEC), so a
crash never leaves half a batch, and `progress` (the checkpoint) moves in the same
script.  A retried call (redis-py's Retry after a lost reply) is harmless for the
same reason a replay is.

Windows are maintained incrementally, so a window's top-10 read is one ZREVRANGE
(O(log N + 10)), never a union of buckets.  Window W holds the tweets whose bucket
start is >= its head = cur - W, cur being the start of the current bucket: "the last
W" rounded out to whole buckets (a tweet stays between W and W + bucket_seconds).
Rolling time forward moves each head and subtracts the buckets that leave (GET
bucket, sum its lines, subtract them from the window's scores, ZREMRANGEBYSCORE
window -inf 0); the 7d window, the longest, also deletes the buckets it leaves.  A
window none of whose buckets is left (no roll for longer than W) is simply deleted.
Rolling is the writer's job: the record script rolls, and the scheduled ingest calls
`roll()` every run, at most ROLL_STEP buckets per window per script call (a long-idle
board catches up in several bounded calls).  Reads never write: a read is one
read-only script (counts, ranks, size and updated_at from one consistent view), as
fast after any idle time as after none, and could be served by a replica.  Between two
rolls a window holds what the last roll left (at most one ingest interval stale); a
window none of whose buckets is left at the reader's clock reads as empty.  The heads
live in the meta hash; the writer caches them to
name the leaving buckets' keys, and every script checks them: when another process
moved them first, the script writes nothing and says so, and the call is planned
again.

Spellings: the most common spelling is worked out on read for the tags shown (a few
calls each), not maintained per write: a write only counts spellings other than
their case-folded key (HINCRBY) and notes a new one in `variants`; the key's own
spelling's count is the all-time count minus the others.  Keys are case-folded
(`str.casefold`: "Großbritannien" and "GROSSBRITANNIEN" are one tag), so are lookups.

Choices where the issue is silent:
- A tag a tweet lists twice counts twice: we count entity occurrences, as the API's
  `entities.hashtags` lists them (and as `extract_hashtags` returns them).
- The most common spelling is taken over all time (not per window); ties go to the
  smallest spelling in byte order ("KPOP" < "KPop" < "kpop"): a pure function of
  the counts, so it never depends on how tweets were split into batches.
- A tweet dated in the future (clock skew) counts in the current bucket; one older
  than 7d goes to all time only (no bucket).  An empty tag is ignored.
- Needs Redis >= 6.2 (SMISMEMBER, ZMSCORE); MemoryDB runs 6.2 and 7.x.  All of a board lives
  in one slot, so on one shard: boards scale out by name, a board does not.
- Equal scores share a rank (standard competition ranking, 1, 2, 2, 4) and are
  listed by key in byte order (for case-folded keys: alphabetical by code point), the
  same in `top`, `rank_for` and `around_me`; `offset` counts places in that order.
- `updated_at` is the clock time of the last `record` call, even one that counted
  nothing new (the counts are current as of then).
- Markers live at least `marker_ttl` (8 days; X's recent search reaches 7 days
  back).  An archive imported again later is skipped by its content hash (see
  ingest.import_archive); the same tweets from another file after that are counted.
- Rising scores only the window's RISING_CANDIDATES highest tags: a tag below them
  cannot rise in the list however fast it grows (bounded work, as the issue asks).
  The writer scores them once per ingest (`refresh_rising`, stamped with meta's gen),
  and reads serve pages from that order; a read that finds the stamp out of date (an
  ingest in progress, a writer that stopped before it) scores them itself: the same
  answer, ~0.4 ms more in redis-server.
- A tag's hourly counts are kept per hour of `created_at` for the last 24 h (one sorted
  set an hour, ~180-250 B a tag in all): reading them is 24 ZSCOREs, where summing the
  5-minute bucket logs for one tag would read every tag's counts of the day.
- Buckets carry a TTL of 2 x 7d + 2 buckets + 1h, a safety net only: the 7d roll
  deletes them, but a window that rolls after a long idle time may need a bucket up
  to twice the window's length after the bucket's start.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.leaderboard import RISING_BASELINE, WINDOW_SECONDS, WINDOWS

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chalicelib.leaderboard.model import Tweet


def _json_dumps(obj: Any) -> bytes:
    # "replace": a lone surrogate (json.loads lets "\ud800" through) becomes "?"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


try:  # orjson when installed (dev, benchmarks): ~10x faster on a batch's payload
    import orjson

    def _dumps(obj: Any) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError:  # orjson.JSONEncodeError: text that is not valid UTF-8
            return _json_dumps(obj)
except ImportError:  # pragma: no cover - depends on the environment
    _dumps = _json_dumps


ROLLING = WINDOWS[1:]
ROLL_STEP = 64  # buckets subtracted per window per script call (bounded work)
HOURLY_SECONDS = 86400  # a tag's hourly counts reach back 24 h
# Rising: a window's count against the rate of the longer window before it.  The score
# (count - expected) / sqrt(expected + RISING_SMOOTHING) is how far, in Poisson standard
# deviations, a tag beats its expected count; the smoothing keeps a tag from 0 to 2
# (score 0.6) below one from 500 to 2,000 an hour (score 67).
RISING_CANDIDATES = 200  # the window's highest tags that get a score (bounded work)
RISING_SMOOTHING = 10
MARKER_GROUP_MS = 3_600_000  # dedupe markers are grouped by the hour of the tweet id
# the most ids one marker set holds: Redis's (and MemoryDB's) default
# set-max-intset-entries, up to which a set of integers is a compact intset
MARKER_SET_MAX = 512
_HASH_PRIME, _HASH_MULTIPLIER = 2147483629, 2654435  # _LUA_MARKERS's HP, HA


def marker_hash(tweet_id: int) -> int:
    """What _LUA_MARKERS's id_hash gives for the decimal id: the same IEEE operations."""
    return int(math.fmod(math.fmod(float(tweet_id), _HASH_PRIME) * _HASH_MULTIPLIER,
                         _HASH_PRIME))
_LONGEST = WINDOW_SECONDS["7d"]


@dataclass(frozen=True)
class Entry:
    rank: int  # 1-based position
    hashtag: str  # the most common spelling
    score: int


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    total: int  # distinct tags in the window
    updated_at: float | None  # clock time of the last record call
    sources: dict[str, int]  # source name -> tweets it contributed to the board


@dataclass(frozen=True)
class Standing:
    entry: Entry
    above: list[Entry]  # best first
    below: list[Entry]
    updated_at: float | None
    hourly: list[tuple[int, int]]  # (hour start, count) over the last 24 h, oldest first


@dataclass(frozen=True)
class Riser:
    rank: int  # 1-based position by score
    hashtag: str
    count: int  # in the window
    expected: float  # what the tag's rate over the baseline window predicts
    score: float  # (count - expected) / sqrt(expected + RISING_SMOOTHING)


@dataclass(frozen=True)
class RisingPage:
    items: list[Riser]
    candidates: int  # tags scored (the window's highest, at most RISING_CANDIDATES)
    updated_at: float | None
    sources: dict[str, int]


# --- Lua -------------------------------------------------------------------------------
# What the record script needs: type checks before any write, the roll of the windows.
# `plan` (JSON from Python): exp = the meta fields h1h/h24h/h7d/cur as Python last saw
# them ("" = absent), new = their values after this roll, roll = per window -1 (delete
# the window: all of it has left) or the number of leaving buckets, whose keys follow
# the three window keys in KEYS.
_LUA_WRITE_COMMON = r"""
local function check_types(first, last, want)
  for i = first, last do
    local t = redis.call('TYPE', KEYS[i])
    t = t.ok or t
    if t ~= 'none' and t ~= want then
      error('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want)
    end
  end
end

-- ZINCRBY of many members at once: one ZMSCORE and one ZADD per 2000 members
-- instead of a call per member (the script runs alone, so read-then-write is safe)
local function zincr_many(key, deltas)
  local names, by = {}, {}
  for m, c in pairs(deltas) do
    names[#names + 1] = m
    by[#by + 1] = c
  end
  for i = 1, #names, 2000 do
    local last = math.min(i + 1999, #names)
    local now = redis.call('ZMSCORE', key, unpack(names, i, last))
    local args = {}
    for k = i, last do
      args[#args + 1] = (tonumber(now[k - i + 1]) or 0) + by[k]
      args[#args + 1] = names[k]
    end
    redis.call('ZADD', key, unpack(args))
  end
end

-- KEYS[base] is meta, KEYS[base + 1 .. base + 3] the windows, and the leaving
-- buckets start at KEYS[first].  Returns heads {h1h, h24h, h7d} as numbers and the
-- meta fields as strings, or nil and the stored fields when the plan was made from
-- an outdated view.
local function roll(base, first, plan)
  local meta = KEYS[base]
  local st = redis.call('HMGET', meta, 'h1h', 'h24h', 'h7d', 'cur')
  for i = 1, 4 do st[i] = st[i] or '' end
  local same = true
  for i = 1, 4 do
    if st[i] ~= plan.exp[i] then same = false end
  end
  if not same then
    -- someone else rolled: fine when they rolled at least as far as we meant to
    for i = 1, 4 do
      local s = tonumber(st[i])
      if s == nil or s < tonumber(plan.new[i]) then return nil, st end
    end
    return {tonumber(st[1]), tonumber(st[2]), tonumber(st[3])}, st
  end
  local k = first
  local moved = false
  for w = 1, 3 do
    local mode = plan.roll[w]
    local win = KEYS[base + w]
    if mode < 0 then
      redis.call('DEL', win)
      moved = true
    elseif mode > 0 then
      local leaving = {}
      for _ = 1, mode do
        local log = redis.call('GET', KEYS[k])
        if log then
          for line in string.gmatch(log, '[^\n]+') do
            local counts = cjson.decode(line)
            for q = 1, #counts, 2 do
              local tag = counts[q]
              leaving[tag] = (leaving[tag] or 0) + counts[q + 1]
            end
          end
        end
        if w == 3 then redis.call('DEL', KEYS[k]) end
        k = k + 1
      end
      for tag, c in pairs(leaving) do leaving[tag] = -c end
      zincr_many(win, leaving)
      redis.call('ZREMRANGEBYSCORE', win, '-inf', 0)
    end
  end
  for i = 1, 4 do
    if plan.new[i] ~= st[i] then moved = true end
  end
  if moved then
    redis.call('HSET', meta, 'h1h', plan.new[1], 'h24h', plan.new[2], 'h7d', plan.new[3],
               'cur', plan.new[4])
    redis.call('HINCRBY', meta, 'gen', 1)  -- the windows changed (see rising_stamp)
  end
  return {tonumber(plan.new[1]), tonumber(plan.new[2]), tonumber(plan.new[3])}, plan.new
end

"""

# What the read script needs: spellings, byte order.
_LUA_READ_COMMON = r"""
local function hmget_all(key, names)
  local out, n = {}, #names
  for i = 1, n, 500 do
    local part = redis.call('HMGET', key, unpack(names, i, math.min(i + 499, n)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
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
"""


# Dedupe markers of one hour of tweet ids (a "group"): at depth d its ids are spread over
# 2^d sets by a hash of the id, and no set grows past `ml` members (Redis's
# set-max-intset-entries, 512 by default and in MemoryDB): a set of at most that many
# integers stays an intset, 8 B an id, where a larger one becomes a hash table at ~65 B
# an id.  Before a set would pass `ml`, the whole group splits to depth d + 2 (each set
# into four), so sets stay 1/8 to full whatever the rate, and a group's key overhead is
# spread over 64 to 512 ids.  The sets of depth d > 0 are named here, from the group's
# first set (which Python names in KEYS, as it does the depth key): which of them exist
# is state only the script sees, and every one carries the board's {hash tag}, so all
# stay in the board's cluster slot.
_LUA_MARKERS = r"""
local MAX_DEPTH = 16  -- 65,536 sets an hour: past ~30M tweets an hour sets grow instead
local HP, HA = 2147483629, 2654435  -- a prime < 2^31 and a multiplier (see id_hash)
local fmod = math.fmod
-- fmod(fmod(id as a double, HP) * HA, HP): tonumber and fmod are exact IEEE operations
-- (Python's float() and math.fmod give the same), every product stays below 2^53, and
-- the multiplier spreads ids that differ only in high bits.  Python sends the hashes of
-- a batch's ids (Lua is slow at this: ~1 µs an id); the script hashes only the ids a
-- split moves.
local hashes = {}
local function id_hash(id)
  local h = hashes[id]
  if h then return h end
  h = fmod(fmod(tonumber(id), HP) * HA, HP)
  hashes[id] = h
  return h
end

local function shard_key(base, d, k)
  if d == 0 then return base end
  return base .. ':' .. d .. '.' .. string.format('%d', k)
end

local function shard_of(id, d)
  if d == 0 then return 0 end
  return id_hash(id) % (2 ^ d)
end

-- ids by the set that holds (or will hold) them at depth d: {k: {ids}}
local function by_shard(ids, d)
  local by = {}
  for _, id in ipairs(ids) do
    local k = shard_of(id, d)
    local t = by[k]
    if not t then
      t = {}
      by[k] = t
    end
    t[#t + 1] = id
  end
  return by
end

local function sadd_all(key, ids)
  for first = 1, #ids, 4000 do
    redis.call('SADD', key, unpack(ids, first, math.min(first + 3999, #ids)))
  end
end

-- every set of depth d into 2^STEP sets of depth d + STEP (k, k + 2^d, k + 2 * 2^d...),
-- keeping each one's TTL.  Four at a time, not two: each id moves a third as often as
-- with doubling, for sets that are 1/8 to full instead of 1/4 to full.
local SPLIT_STEP = 2
local function split(base, d)
  for k = 0, 2 ^ d - 1 do
    local old = shard_key(base, d, k)
    local ids = redis.call('SMEMBERS', old)
    if #ids > 0 then
      local ttl = redis.call('PTTL', old)
      for j, part in pairs(by_shard(ids, d + SPLIT_STEP)) do
        local key = shard_key(base, d + SPLIT_STEP, j)
        sadd_all(key, part)
        if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
      end
      redis.call('DEL', old)
    end
  end
end

-- add new ids to a group (first set `base`, depth key `dkey`, depth d), splitting first
-- when a set would pass `limit`; every set added to and the depth key live `ttl` more
local function add_markers(base, dkey, d, ids, limit, ttl)
  if #ids == 0 then return end
  local by
  while true do
    by = by_shard(ids, d)
    local full = false
    if d + SPLIT_STEP <= MAX_DEPTH then
      for k, part in pairs(by) do
        if redis.call('SCARD', shard_key(base, d, k)) + #part > limit then
          full = true
          break
        end
      end
    end
    if not full then break end
    split(base, d)
    d = d + SPLIT_STEP
    redis.call('SET', dkey, d)
  end
  for k, part in pairs(by) do
    local key = shard_key(base, d, k)
    sadd_all(key, part)
    redis.call('EXPIRE', key, ttl)
  end
  if d > 0 then redis.call('EXPIRE', dkey, ttl) end
end
"""

# KEYS: 1 meta, 2-4 windows 1h/24h/7d, 5 all, 6 variants, 7 spellings, 8 progress,
# 9 sources, then p.L leaving buckets, #p.b tweet buckets, #p.ht hour zsets, and per
# marker group its first set and depth key.
# ARGV[1]: JSON {exp, new, roll, L: the roll plan; b: bucket starts, bt: bucket TTLs;
# hb: per bucket its hour zset's index (0: none), ht: hour zset TTLs; g: number of marker
# groups; t: tweets as [bucket index or 0, marker group index, id, spelling...];
# lc: {spelling: key} for spellings other than their case-folded key; mt: marker TTL;
# ml: most ids a marker set holds; ps: [field, value...], pd: [field...] for progress;
# src: the source's name ("": none); now: updated_at; touch: 0|1}
_LUA_RECORD = _LUA_WRITE_COMMON + _LUA_MARKERS + r"""
local p = cjson.decode(ARGV[1])
local nb, ng, nt, nh = #p.b, p.g, #p.t, #p.ht
local boff = 9 + p.L
local hoff = boff + nb
local goff = hoff + nh
-- every check before the first write: a script that fails midway keeps what it wrote
check_types(1, 1, 'hash')
check_types(2, 5, 'zset')
check_types(6, 9, 'hash')
check_types(boff + 1, boff + nb, 'string')
check_types(hoff + 1, hoff + nh, 'zset')

-- which tweets are new: one SMISMEMBER per marker set, not one call per tweet
-- (a marker key of another type fails here, before any write)
local members, owners = {}, {}
for g = 1, ng do members[g], owners[g] = {}, {} end
for i = 1, nt do hashes[p.t[i][3]] = p.h[i] end
for i = 1, nt do
  local g = p.t[i][2]
  local m = members[g]
  m[#m + 1] = p.t[i][3]
  owners[g][m[#m]] = owners[g][m[#m]] or i
end
local fresh, once, added, depth = {}, {}, {}, {}
for g = 1, ng do
  local base = KEYS[goff + 2 * g - 1]
  local d = tonumber(redis.call('GET', KEYS[goff + 2 * g]) or 0)
  depth[g] = d
  local add = {}
  for k, ids in pairs(by_shard(members[g], d)) do
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

local heads, st = roll(1, 10, p)
if not heads then return {0, 0, st[1], st[2], st[3], st[4]} end

local inw = {}
for j = 1, nb do
  local b = p.b[j]
  inw[j] = {b >= heads[1], b >= heads[2], b >= heads[3]}
end
local lc = p.lc
local sc = {}             -- spelling -> occurrences in new tweets
local bc = {}             -- bucket index -> {lower -> count}
local wc = {{}, {}, {}}   -- window -> {lower -> count}
local hc = {}             -- hour index -> {lower -> count}
for j = 1, nb do bc[j] = {} end
for h = 1, nh do hc[h] = {} end
local new = 0
for i = 1, nt do
  if fresh[i] then
    new = new + 1
    local tw = p.t[i]
    local j = tw[1]
    local bt, w1, w2, w3, ht
    if j > 0 then
      bt = bc[j]
      w1, w2, w3 = inw[j][1], inw[j][2], inw[j][3]
      if p.hb[j] > 0 then ht = hc[p.hb[j]] end
    end
    for q = 4, #tw do
      local s = tw[q]
      if s ~= '' then
        sc[s] = (sc[s] or 0) + 1
        if bt then
          local l = lc[s] or s
          bt[l] = (bt[l] or 0) + 1
          if w1 then wc[1][l] = (wc[1][l] or 0) + 1 end
          if w2 then wc[2][l] = (wc[2][l] or 0) + 1 end
          if w3 then wc[3][l] = (wc[3][l] or 0) + 1 end
          if ht then ht[l] = (ht[l] or 0) + 1 end
        end
      end
    end
  end
end

for g = 1, ng do
  add_markers(KEYS[goff + 2 * g - 1], KEYS[goff + 2 * g], depth[g], added[g], p.ml, p.mt)
end

if new > 0 then
  local allc = {}
  for s, c in pairs(sc) do
    local l = lc[s]
    if l then
      -- a spelling other than the lower-case one: count it; note it once per tag
      if redis.call('HINCRBY', KEYS[7], s, c) == c then
        local v = redis.call('HGET', KEYS[6], l)
        redis.call('HSET', KEYS[6], l, v and (v .. '\t' .. s) or s)
      end
    else
      l = s
    end
    allc[l] = (allc[l] or 0) + c
  end
  zincr_many(KEYS[5], allc)
  for w = 1, 3 do zincr_many(KEYS[1 + w], wc[w]) end
  redis.call('HINCRBY', KEYS[1], 'gen', 1)  -- the windows changed (see rising_stamp)
  for h = 1, nh do
    if next(hc[h]) then
      zincr_many(KEYS[hoff + h], hc[h])
      redis.call('EXPIRE', KEYS[hoff + h], p.ht[h])
    end
  end
  if p.src ~= '' then redis.call('HINCRBY', KEYS[9], p.src, new) end
  -- a bucket is a log: one JSON line [tag, count, ...] per batch that added to it
  for j = 1, nb do
    local flat, n = {}, 0
    for l, c in pairs(bc[j]) do
      flat[n + 1], flat[n + 2] = l, c
      n = n + 2
    end
    if n > 0 then
      redis.call('APPEND', KEYS[boff + j], cjson.encode(flat) .. '\n')
      redis.call('EXPIRE', KEYS[boff + j], p.bt[j])
    end
  end
end

if p.touch == 1 then
  if #p.ps > 0 then redis.call('HSET', KEYS[8], unpack(p.ps)) end
  if #p.pd > 0 then redis.call('HDEL', KEYS[8], unpack(p.pd)) end
  redis.call('HSET', KEYS[1], 'updated_at', p.now)
end
return {1, new, st[1], st[2], st[3], st[4]}
"""

# What every script on a window needs.  KEYS: 1 the window's zset, 2 all, 3 variants,
# 4 spellings, 5 meta.  ARGV: 1 the window's head at the reader's clock ("" for all).
# A window the writer has not rolled for longer than its length (every bucket in it has
# left) reads as empty ("gone").
_LUA_READ_COMMON += r"""
local meta = redis.call('HMGET', KEYS[5], 'cur', 'updated_at')
local z, gone = KEYS[1], false
if ARGV[1] ~= '' then
  local cur = tonumber(meta[1])
  gone = cur ~= nil and tonumber(ARGV[1]) > cur
end

-- the most common spelling of each tag, all time: the lower-case spelling's count is
-- the tag's all-time count minus its other spellings' counts
local function spelled(names)
  local out = {}
  if #names == 0 then return out end
  local variants = hmget_all(KEYS[3], names)
  for i, l in ipairs(names) do
    local v = variants[i]
    if not v then
      out[i] = l
    else
      local best, bestc, others = nil, -1, 0
      for s in string.gmatch(v, '[^\t]+') do
        local c = tonumber(redis.call('HGET', KEYS[4], s) or 0)
        others = others + c
        if c > bestc or (c == bestc and less(s, best)) then best, bestc = s, c end
      end
      local own = tonumber(redis.call('ZSCORE', KEYS[2], l) or 0) - others
      if own > bestc or (own == bestc and less(l, best)) then best = l end
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
"""

# Rising, shared by the read script and the writer's _LUA_RISING.  KEYS: 1 the window's
# zset, 2 all, 3 variants, 4 spellings, 5 meta, 6 the baseline window, 7 sources, 8 the
# window's candidates in rising order as the writer scored them (LIST: a page is one
# LRANGE; a ZSET of float scores costs ~2 ms to build in a script), 9 the stamps of those
# orders (HASH window -> stamp).
# ARGV: 3 candidates, 4 offset, 5 n, 6 the window's seconds, 7 the baseline's,
# 8 smoothing, 9 the window's name.  A candidate (the window's top few hundred by count)
# with count c in the window and b in the baseline window before it is expected
# e = b * W / (L - W); its score is (c - e) / sqrt(e + k).
_LUA_RISING_COMMON = r"""
-- a tag's expected count and score from its count c in the window and b in the
-- baseline window (the formula of the comment above, in one place)
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
"""

# The writer's half of rising: scores the candidates and stores their order with its
# stamp, unless the stored one is current (then it only compares the stamp).  Called at
# the end of every ingest and import, so reads between two ingests take the page from the
# stored order (~ a top-10's cost) instead of scoring every candidate (~2 us each).
_LUA_RISING = _LUA_READ_COMMON + _LUA_RISING_COMMON + r"""
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
"""

# The read script: KEYS and ARGV[1] as _LUA_READ_COMMON, ARGV: 2 op, 3.. its arguments.
# Replies {updated_at, op's answer...}.  It only reads (the writer rolls the windows and
# stores rising's order), so one call is one consistent view, and it could run on a
# replica.
_LUA_READ = _LUA_READ_COMMON + _LUA_RISING_COMMON + r"""
-- Ranked order: score descending, the tags of one score in byte order (ZREVRANGE
-- gives them in reverse); a tag's rank is 1 + the number of tags scoring higher
-- (standard competition ranking: 1, 2, 2, 4).  Bounded: a few O(log N) calls per
-- distinct score shown.
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

local op, updated = ARGV[2], meta[2]
if op == 'top' then
  -- KEYS[6]: sources
  local flat = ranked(tonumber(ARGV[3]), tonumber(ARGV[4]))
  local size = gone and 0 or redis.call('ZCARD', z)
  return {updated, size, flat, spelled(names_of(flat, 3)), redis.call('HGETALL', KEYS[6])}
elseif op == 'tag' then
  -- the tag's place and its n neighbours each side; KEYS[6..]: its hourly zsets
  local r = position(ARGV[3])
  if not r then return {updated, false} end
  local n = tonumber(ARGV[4])
  local start = math.max(0, r - n)
  local flat = ranked(start, r + n)
  local hourly = {}
  for i = 6, #KEYS do hourly[#hourly + 1] = redis.call('ZSCORE', KEYS[i], ARGV[3]) or '0' end
  return {updated, r, start, flat, spelled(names_of(flat, 3)), hourly}
elseif op == 'rising' then
  -- KEYS[6..9] and ARGV[3..9]: see _LUA_RISING_COMMON.  The writer's precomputed order when it
  -- is current (a few O(log N) calls for the page), else the same order computed here.
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
      local i, n = top[r], #out
      out[n + 1], out[n + 2] = names[i], count[i]
      out[n + 3], out[n + 4] = tostring(expect[i]), tostring(score[i])
      picked[#picked + 1] = names[i]
    end
  end
  return {updated, #names, out, spelled(picked), sources}
elseif op == 'size' then
  return {updated, gone and 0 or redis.call('ZCARD', z)}
end
return redis.error_reply('unknown read op ' .. tostring(op))
"""




def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _score(value: Any) -> int:
    return int(float(value))


@dataclass
class _Plan:
    exp: list[str]  # meta h1h, h24h, h7d, cur as last seen ("" = absent)
    new: list[int]  # after this roll
    roll: list[int]  # per window: -1 delete, n >= 0 leaving buckets
    leaving: list[str]  # their keys, window by window
    complete: bool  # False: more buckets to roll than ROLL_STEP allows

    def as_args(self) -> dict[str, Any]:
        return {"exp": self.exp, "new": [str(v) for v in self.new], "roll": self.roll,
                "L": len(self.leaving)}

    @property
    def moves(self) -> bool:
        return self.exp != [str(v) for v in self.new]


class Leaderboard:
    """Hashtag counts of one board: all time and rolling 1h, 24h and 7d windows.

    Works with `redis.Redis` and `redis.cluster.RedisCluster`, with or without
    decode_responses.  Methods are named after what a user asks (as in agoragames'
    leaderboard-python): `top`, `rank_for`, `around_me`, `size`.
    """

    def __init__(self, redis, name: str = "default", *, bucket_seconds: int = 300,
                 marker_ttl: int = 8 * 86400, clock: Callable[[], float] = time.time):
        if not name or "{" in name or "}" in name:
            raise ValueError(f"a board name is non-empty without braces, got {name!r}")
        if bucket_seconds <= 0 or 3600 % bucket_seconds:
            raise ValueError(f"bucket_seconds must divide 3600, got {bucket_seconds}")
        if marker_ttl <= 0:
            raise ValueError(f"marker_ttl must be positive, got {marker_ttl}")
        self.redis = redis
        self.name = name
        self.bucket_seconds = int(bucket_seconds)
        self.marker_ttl = int(marker_ttl)
        self.clock = clock
        self.prefix = f"pulse:lb:{{{name}}}:"
        p = self.prefix
        self.key_meta = p + "meta"
        self.key_progress = p + "progress"
        self.key_schedule = p + "schedule"
        self.key_sources = p + "sources"  # source name -> tweets it contributed
        self.key_imports = p + "imports"  # archive SHA-256 -> {"path", "at"}
        self._hour_prefix = p + "hz:"
        self.key_variants = p + "variants"  # lower -> other spellings, tab-separated
        self.key_spellings = p + "spellings"  # spelling (not all lower-case) -> count
        self.key_window = {w: f"{p}z:{w}" for w in WINDOWS}
        self.key_rising = {w: f"{p}rising:{w}" for w in RISING_BASELINE}  # writer's order
        self.key_rising_stamps = p + "rising"
        self._seen_prefix = p + "seen:"
        self._bucket_prefix = p + "b:"
        # registered once per board: EVALSHA, loading the script only when missing
        self._record_script = redis.register_script(_LUA_RECORD)
        self._read_script = redis.register_script(_LUA_READ)
        self._rising_script = redis.register_script(_LUA_RISING)
        self._state: list[int | None] | None = None  # cached meta h1h, h24h, h7d, cur

    # --- keys ----------------------------------------------------------------------
    def bucket_key(self, start: int) -> str:
        return f"{self._bucket_prefix}{start}"

    def hour_key(self, start: int) -> str:
        return f"{self._hour_prefix}{start}"

    def keys(self) -> list[str]:
        """Every key of this board that exists now (SCAN on every node of a cluster)."""
        return sorted({_text(k) for k in self.redis.scan_iter(match=_glob_escape(self.prefix)
                                                                + "*", count=1000)})

    # --- rolling -------------------------------------------------------------------
    @staticmethod
    def _check_window(window: str) -> str:
        if window not in WINDOWS:
            raise ValueError(f"unknown window {window!r}: one of {', '.join(WINDOWS)}")
        return window

    def _bucket_of(self, ts: float) -> int:
        return int(ts // self.bucket_seconds) * self.bucket_seconds

    def _remember(self, fields: Sequence[Any]) -> None:
        values = [_text(v) for v in fields]
        self._state = [int(v) if v not in (None, "") else None for v in values]

    def _load_state(self) -> list[int | None]:
        if self._state is None:
            self._remember(self.redis.hmget(self.key_meta, "h1h", "h24h", "h7d", "cur"))
        return self._state

    def _plan(self, now: float) -> _Plan:
        state = self._load_state()
        *heads, cur = state
        target_cur = self._bucket_of(now)
        new_cur = target_cur if cur is None else max(cur, target_cur)
        bs = self.bucket_seconds
        new, modes, leaving, complete = [], [], [], True
        for head, window in zip(heads, ROLLING, strict=True):
            target = new_cur - WINDOW_SECONDS[window]
            if head is None or head >= target:  # a new board, or nothing left yet
                new.append(target if head is None else head)
                modes.append(0)
            elif cur is None or target > cur:  # everything it holds has left
                new.append(target)
                modes.append(-1)
            else:
                steps = min((target - head) // bs, ROLL_STEP)
                leaving.extend(self.bucket_key(head + i * bs) for i in range(steps))
                new.append(head + steps * bs)
                modes.append(steps)
                complete = complete and new[-1] == target
        new.append(new_cur)
        exp = ["" if v is None else str(v) for v in state]
        return _Plan(exp, new, modes, leaving, complete)

    def _roll_keys(self) -> list[str]:
        return [self.key_meta, *(self.key_window[w] for w in ROLLING)]

    def _record_keys(self) -> list[str]:
        return [*self._roll_keys(), self.key_window["all"], self.key_variants,
                self.key_spellings, self.key_progress, self.key_sources]

    def _roll_step(self, plan: _Plan) -> None:
        """One bounded roll (the record script with no tweets); a stale plan writes nothing."""
        args = {**plan.as_args(), "b": [], "bt": [], "hb": [], "ht": [], "g": 0, "t": [], "h": [],
                "lc": {}, "mt": 1, "ml": MARKER_SET_MAX, "ps": [], "pd": [], "src": "",
                "now": "", "touch": 0}
        res = self._record_script(keys=self._record_keys() + plan.leaving,
                                  args=[_dumps(args)], client=self.redis)
        self._remember(res[2:6])

    def _catch_up(self, now: float) -> _Plan:
        """Roll in bounded steps until one last step is left; returns that step's plan."""
        while True:
            plan = self._plan(now)
            if plan.complete:
                return plan
            self._roll_step(plan)

    def roll(self) -> None:
        """Move the windows to the clock, in bounded steps: the writer's job (the scheduled
        ingest calls it every run, and `record` rolls too), so that reads never write."""
        now = self.clock()
        while True:
            plan = self._plan(now)
            if not plan.moves:
                return
            self._roll_step(plan)

    # --- counting ------------------------------------------------------------------
    def record(self, tweets: Sequence[Tweet], *,
               progress: Mapping[str, str | None] | None = None, source: str = "") -> int:
        """Count the tweets not counted before, in one atomic script; returns how many.

        `progress` fields are set (None: deleted) in the ingest-progress hash by the
        same script, so a checkpoint never moves without its counts.  `source` names
        where the tweets came from: the board keeps how many each source contributed.
        An edited tweet counts once: it is keyed by its first version's id.  Pass batches
        of up to a few thousand tweets: one script blocks the server while it runs.
        """
        pset: list[str] = []
        pdel: list[str] = []
        for field, value in (progress or {}).items():
            if value is None:
                pdel.append(str(field))
            else:
                pset.extend((str(field), str(value)))
        now = self.clock()
        # spellings that are not all lower-case, with their lower-case key
        spellings: set[str] = set()
        for t in tweets:
            spellings.update(t.hashtags)
        lower = {}
        for s in spellings:
            low = s.casefold()
            if low != s:
                lower[s] = low
        # marker sets: one per hour of tweet ids
        groups: dict[int, int] = {}
        gidx: list[int] = []
        ids: list[str] = []
        for t in tweets:
            tid = int(t.first_id or t.id)  # every version of an edited tweet: one marker
            g = (tid >> 22) // MARKER_GROUP_MS
            j = groups.get(g)
            if j is None:
                j = groups[g] = len(groups) + 1
            gidx.append(j)
            ids.append(str(tid))
        hashes = [marker_hash(int(i)) for i in ids]
        group_keys = [key for g in groups
                      for key in (f"{self._seen_prefix}{g}", f"{self._seen_prefix}{g}:depth")]
        bs = self.bucket_seconds
        while True:
            plan = self._catch_up(now)
            lo, cur = plan.new[2], plan.new[3]  # 7d head: older tweets count all time only
            index: dict[int, int] = {}
            starts: list[int] = []
            rows = []
            for t, j, tid in zip(tweets, gidx, ids, strict=True):
                b = int(t.created_at // bs) * bs
                if b > cur:
                    b = cur
                if b >= lo:
                    k = index.get(b)
                    if k is None:
                        starts.append(b)
                        k = index[b] = len(starts)
                    rows.append([k, j, tid, *t.hashtags])
                else:
                    rows.append([0, j, tid, *t.hashtags])
            # needed until a window rolls past it, at most 2 x 7d after its start
            ttls = [max(1, int(b + 2 * _LONGEST + 2 * bs + 3600 - now)) for b in starts]
            # the hourly counts of the last 24 h (and the hour before: a chart's first bar)
            hours: dict[int, int] = {}
            for b in starts:
                if b >= cur - HOURLY_SECONDS - 3600:
                    hours.setdefault(b // 3600 * 3600, len(hours) + 1)
            hour_of = [hours.get(b // 3600 * 3600, 0) if b >= cur - HOURLY_SECONDS - 3600
                       else 0 for b in starts]
            args = {**plan.as_args(), "b": starts, "bt": ttls, "hb": hour_of,
                    "ht": [max(1, int(h + HOURLY_SECONDS + 7200 - now)) for h in hours],
                    "g": len(groups), "t": rows, "h": hashes, "lc": lower,
                    "mt": self.marker_ttl,
                    "ml": MARKER_SET_MAX, "ps": pset, "pd": pdel, "src": source,
                    "now": repr(float(now)), "touch": 1}
            keys = [*self._record_keys(), *plan.leaving, *map(self.bucket_key, starts),
                    *map(self.hour_key, hours), *group_keys]
            res = self._record_script(keys=keys, args=[_dumps(args)], client=self.redis)
            self._remember(res[2:6])
            if int(res[0]) == 1:
                return int(res[1])
            # stale view of the heads: nothing was written; plan again

    # --- reads ---------------------------------------------------------------------
    def _read(self, window: str, op: str, *op_args: Any,
              extra: Sequence[str] = ()) -> tuple[float | None, list]:
        """One read script call: (updated_at, the op's answer)."""
        self._check_window(window)
        head = ("" if window == "all"
                else str(self._bucket_of(self.clock()) - WINDOW_SECONDS[window]))
        res = self._read_script(keys=self._window_keys(window, extra),
                                args=[head, op, *op_args], client=self.redis)
        updated = None if res[0] is None else float(_text(res[0]))
        return updated, res[1:]

    def _window_keys(self, window: str, extra: Sequence[str] = ()) -> list[str]:
        return [self.key_window[window], self.key_window["all"], self.key_variants,
                self.key_spellings, self.key_meta, *extra]

    @staticmethod
    def _entries(flat: Sequence, spellings: Sequence) -> list[Entry]:
        """Entries from the script's {tag, score, rank, ...} and their spellings."""
        return [Entry(int(flat[i + 2]), _text(spellings[i // 3]), _score(flat[i + 1]))
                for i in range(0, len(flat), 3)]

    @staticmethod
    def _sources(flat: Sequence) -> dict[str, int]:
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    @staticmethod
    def _key_of(hashtag: str) -> str:
        tag = str(hashtag)
        if tag[:1] in ("#", "＃"):
            tag = tag[1:]
        return tag.casefold()

    def page(self, window: str = "all", n: int = 10, offset: int = 0) -> Page:
        """The n highest tags of a window from position `offset` (0-based) in ranked order
        (see _LUA_READ: ties share a rank and are listed alphabetically), with the
        window's size, updated_at and the board's sources, from one consistent read."""
        if n < 0 or offset < 0:
            raise ValueError(f"n and offset must be >= 0, got n={n}, offset={offset}")
        first, last = (offset, offset + n - 1) if n else (1, 0)  # 1..0: none
        updated, (size, flat, spellings, sources) = self._read(
            window, "top", first, last, extra=[self.key_sources])
        return Page(self._entries(flat, spellings), int(size), updated,
                    self._sources(sources))

    def hours(self) -> list[int]:
        """Start times of the 24 hours of a tag's hourly counts, oldest first (the last
        is the current hour, so far)."""
        now_hour = int(self.clock() // 3600) * 3600
        return [now_hour - 3600 * i for i in range(HOURLY_SECONDS // 3600 - 1, -1, -1)]

    def standing(self, hashtag: str, window: str = "all", n: int = 2) -> Standing | None:
        """One tag (any spelling, '#' optional) with up to n neighbours above and below it
        and its counts per hour over the last 24 h, from one consistent read; None when
        it has no count in the window."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        hours = self.hours()
        updated, res = self._read(window, "tag", self._key_of(hashtag), n,
                                  extra=[self.hour_key(h) for h in hours])
        if res[0] is None:
            return None
        position, start, flat, spellings, hourly = res
        around = self._entries(flat, spellings)
        me = int(position) - int(start)
        return Standing(around[me], around[:me], around[me + 1:], updated,
                        [(h, _score(c)) for h, c in zip(hours, hourly, strict=True)])

    def rising(self, window: str = "1h", n: int = 10, offset: int = 0,
               candidates: int = RISING_CANDIDATES) -> RisingPage:
        """The tags taking off in a window (1h or 24h), most surprising first: see
        RISING_BASELINE and _LUA_READ's 'rising' for the score.  Bounded work: only the
        window's `candidates` highest tags are scored (one ZMSCORE on the baseline)."""
        if window not in RISING_BASELINE:
            raise ValueError(f"rising needs window 1h or 24h, got {window!r}")
        if n < 0 or offset < 0 or candidates < 1:
            raise ValueError(f"n, offset >= 0 and candidates >= 1, got {n}, {offset}, "
                             f"{candidates}")
        updated, (total, flat, spellings, sources) = self._read(
            window, "rising", *self._rising_args(window, candidates, offset, n),
            extra=self._rising_keys(window))
        items = [Riser(offset + 1 + i // 4, _text(spellings[i // 4]), _score(flat[i + 1]),
                       float(flat[i + 2]), float(flat[i + 3])) for i in range(0, len(flat), 4)]
        return RisingPage(items, int(total), updated, self._sources(sources))

    def _rising_keys(self, window: str) -> list[str]:
        return [self.key_window[RISING_BASELINE[window]], self.key_sources,
                self.key_rising[window], self.key_rising_stamps]

    @staticmethod
    def _rising_args(window: str, candidates: int, offset: int, n: int) -> list[Any]:
        return [candidates, offset, n, WINDOW_SECONDS[window],
                WINDOW_SECONDS[RISING_BASELINE[window]], RISING_SMOOTHING, window]

    def refresh_rising(self) -> int:
        """The writer's last step of an ingest or import: score each rising window's
        candidates and store their order, so that `rising` reads serve a page from it
        (about a top-10's cost) until the windows change again; before that, or when it
        was not called, a read scores the candidates itself (same answer, ~2 us a
        candidate more).  A no-op when the stored orders are current; returns how many
        windows it scored."""
        scored = 0
        for window in RISING_BASELINE:
            res = self._rising_script(
                keys=self._window_keys(window, self._rising_keys(window)),
                args=["", "", *self._rising_args(window, RISING_CANDIDATES, 0, 0)],
                client=self.redis)
            scored += int(res) >= 0  # -1: the stored order was current
        return scored

    def top(self, window: str = "all", n: int = 10, offset: int = 0) -> list[Entry]:
        """The n highest tags of a window from position `offset` (0-based); ranks 1-based."""
        return self.page(window, n, offset).entries

    def rank_for(self, hashtag: str, window: str = "all") -> Entry | None:
        """Rank and score of one tag (any spelling, '#' optional); None when it has no count."""
        found = self.standing(hashtag, window, 0)
        return None if found is None else found.entry

    def around_me(self, hashtag: str, window: str = "all", n: int = 2) -> list[Entry]:
        """The tag with up to n neighbours above and below it; [] when it has no count."""
        found = self.standing(hashtag, window, n)
        return [] if found is None else [*found.above, found.entry, *found.below]

    def size(self, window: str = "all") -> int:
        """The number of distinct tags with a count in the window."""
        return int(self._read(window, "size")[1][0])

    def updated_at(self) -> float | None:
        """Clock time of the last `record` call, None before the first."""
        value = self.redis.hget(self.key_meta, "updated_at")
        return None if value is None else float(_text(value))

    def imported(self, digests: set[str]) -> set[str]:
        """Which of these archive content hashes were imported into this board."""
        names = sorted(digests)
        if not names:
            return set()
        there = self.redis.hmget(self.key_imports, names)
        return {d for d, v in zip(names, there, strict=True) if v is not None}

    def mark_imported(self, digest: str, path: str) -> None:
        """Remember an archive's content hash (for good: a few bytes a file)."""
        self.redis.hset(self.key_imports, digest,
                        _dumps({"path": str(path), "at": self.clock()}).decode())

    def schedule(self) -> dict[str, str]:
        """The scheduler's notes on this board (when it was last served, rate limits)."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.key_schedule).items()}

    def set_schedule(self, fields: Mapping[str, str | None]) -> None:
        """Set (None: delete) fields of the scheduler's notes; counts are not involved,
        so plain commands do."""
        drop = [k for k, v in fields.items() if v is None]
        keep = {k: v for k, v in fields.items() if v is not None}
        if drop:
            self.redis.hdel(self.key_schedule, *drop)
        if keep:
            self.redis.hset(self.key_schedule, mapping=keep)

    def progress(self) -> dict[str, str]:
        """The ingest-progress hash (since_id and whatever else the orchestrator keeps)."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.key_progress).items()}


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
