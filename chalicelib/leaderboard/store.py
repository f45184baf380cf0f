"""The hashtag leaderboard in Redis: exactly-once counting, rolling windows, ranks.

Keys of one board.  Every key carries the hash tag ``{<name>}``, so all of them live
in one cluster slot and a script may touch any of them (Amazon MemoryDB always runs
as a cluster); scripts get every key they touch in KEYS, computed here in Python.

    pulse:lb:{name}:z:all         ZSET  lower-cased tag -> count, all time
    pulse:lb:{name}:z:1h|24h|7d   ZSET  the same, for each rolling window
    pulse:lb:{name}:b:<start>     STR   counts of one time bucket (created_at in
                                        [start, start + bucket_seconds)): a log of one
                                        JSON line [tag, count, ...] per batch
    pulse:lb:{name}:seen:<hour>   SET   dedupe markers: ids of counted tweets, one set per
                                        hour of the id's snowflake time, TTL marker_ttl
    pulse:lb:{name}:spellings     HASH  spelling that is not all lower-case -> count
    pulse:lb:{name}:variants      HASH  lower-cased tag -> its other spellings (tab-separated)
    pulse:lb:{name}:meta          HASH  window heads h1h/h24h/h7d, roll position cur,
                                        updated_at
    pulse:lb:{name}:progress      HASH  the ingest orchestrator's checkpoint (since_id...)

Counting: `record` is one Lua script per batch.  It asks each marker set which ids
it holds (one SMISMEMBER per set, not a call per tweet), counts only the tweets not
there yet (and each id once within the batch), adds their ids (SADD, EXPIRE
marker_ttl: a marker lives at least that long), so replaying a batch (a retried
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
Rolling happens in the record script and lazily before window reads, at most
ROLL_STEP buckets per window per script call (a long-idle board catches up in
several bounded calls).  The heads live in the meta hash; this side caches them to
name the leaving buckets' keys, and every script checks them: when another process
moved them first, the script writes nothing and says so, and the call is planned
again.

Spellings: the most common spelling is worked out on read for the tags shown (a few
calls each), not maintained per write: a write only counts spellings that are not
all lower-case (HINCRBY) and notes a new one in `variants`; the lower-case
spelling's count is the all-time count minus the others.

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
- Equal scores rank by tag in reverse byte order (ZREVRANGE's order); ranks are
  positions, 1-based, the same in `top`, `rank_for` and `around_me`.
- `updated_at` is the clock time of the last `record` call, even one that counted
  nothing new (the counts are current as of then).
- Markers live at least `marker_ttl` (8 days; X's recent search reaches 7 days
  back): an archive imported again after its markers expired is counted again.
- Buckets carry a TTL of 2 x 7d + 2 buckets + 1h, a safety net only: the 7d roll
  deletes them, but a window that rolls after a long idle time may need a bucket up
  to twice the window's length after the bucket's start.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


WINDOWS = ("all", "1h", "24h", "7d")
ROLLING = ("1h", "24h", "7d")
WINDOW_SECONDS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
ROLL_STEP = 64  # buckets subtracted per window per script call (bounded work)
MARKER_GROUP_MS = 3_600_000  # dedupe markers are grouped in one set per hour of tweet ids
_LONGEST = WINDOW_SECONDS["7d"]


@dataclass(frozen=True)
class Entry:
    rank: int  # 1-based position
    hashtag: str  # the most common spelling
    score: int


# --- Lua -------------------------------------------------------------------------------
# Shared by both scripts: type checks before any write, and the roll of the windows.
# `plan` (JSON from Python): exp = the meta fields h1h/h24h/h7d/cur as Python last saw
# them ("" = absent), new = their values after this roll, roll = per window -1 (delete
# the window: all of it has left) or the number of leaving buckets, whose keys follow
# the three window keys in KEYS.
_LUA_COMMON = r"""
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

local function hmget_all(key, names)
  local out, n = {}, #names
  for i = 1, n, 500 do
    local part = redis.call('HMGET', key, unpack(names, i, math.min(i + 499, n)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
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
  end
  return {tonumber(plan.new[1]), tonumber(plan.new[2]), tonumber(plan.new[3])}, plan.new
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

# KEYS: 1 meta, 2-4 windows 1h/24h/7d, 5 all, 6 variants, 7 spellings, 8 progress, then
# p.L leaving buckets, #p.b tweet buckets, #p.g marker sets.
# ARGV[1]: JSON {exp, new, roll, L: the roll plan; b: bucket starts, bt: bucket TTLs;
# g: number of marker sets; t: tweets as [bucket index or 0, marker set index, id,
# spelling...]; lc: {spelling: lower} for spellings not all lower-case; mt: marker TTL;
# ps: [field, value...], pd: [field...] for progress; now: updated_at; touch: 0|1}
_LUA_RECORD = _LUA_COMMON + r"""
local p = cjson.decode(ARGV[1])
local nb, ng, nt = #p.b, p.g, #p.t
local boff = 8 + p.L
local goff = boff + nb
-- every check before the first write: a script that fails midway keeps what it wrote
check_types(1, 1, 'hash')
check_types(2, 5, 'zset')
check_types(6, 8, 'hash')
check_types(boff + 1, boff + nb, 'string')
check_types(goff + 1, goff + ng, 'set')

local heads, st = roll(1, 9, p)
if not heads then return {0, 0, st[1], st[2], st[3], st[4]} end

-- which tweets are new: one SMISMEMBER per marker set, not one call per tweet
local members, owners = {}, {}
for g = 1, ng do members[g], owners[g] = {}, {} end
for i = 1, nt do
  local g = p.t[i][2]
  local m = members[g]
  m[#m + 1] = p.t[i][3]
  owners[g][#m] = i
end
local fresh, once, added = {}, {}, {}
for g = 1, ng do
  local m, key, add = members[g], KEYS[goff + g], {}
  for first = 1, #m, 4000 do
    local last = math.min(first + 3999, #m)
    local there = redis.call('SMISMEMBER', key, unpack(m, first, last))
    for k = first, last do
      local id = m[k]
      if there[k - first + 1] == 0 and not once[id] then
        once[id] = true
        fresh[owners[g][k]] = true
        add[#add + 1] = id
      end
    end
  end
  added[g] = add
end

local inw = {}
for j = 1, nb do
  local b = p.b[j]
  inw[j] = {b >= heads[1], b >= heads[2], b >= heads[3]}
end
local lc = p.lc
local sc = {}             -- spelling -> occurrences in new tweets
local bc = {}             -- bucket index -> {lower -> count}
local wc = {{}, {}, {}}   -- window -> {lower -> count}
for j = 1, nb do bc[j] = {} end
local new = 0
for i = 1, nt do
  if fresh[i] then
    new = new + 1
    local tw = p.t[i]
    local j = tw[1]
    local bt, w1, w2, w3
    if j > 0 then
      bt = bc[j]
      w1, w2, w3 = inw[j][1], inw[j][2], inw[j][3]
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
        end
      end
    end
  end
end

for g = 1, ng do
  local add = added[g]
  for first = 1, #add, 4000 do
    redis.call('SADD', KEYS[goff + g], unpack(add, first, math.min(first + 3999, #add)))
  end
  if #add > 0 then redis.call('EXPIRE', KEYS[goff + g], p.mt) end
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

# KEYS: 1 the window's zset, 2 all, 3 variants, 4 spellings; with a roll also 5 meta,
# 6-8 windows, then the leaving buckets.  ARGV: 1 roll plan JSON or "", 2 op, 3.. its
# arguments.  Replies {status, meta h1h, h24h, h7d, cur, op's answer...}.
_LUA_READ = _LUA_COMMON + r"""
local st = {'', '', '', ''}
if ARGV[1] ~= '' then
  local plan = cjson.decode(ARGV[1])
  check_types(5, 5, 'hash')
  check_types(6, 8, 'zset')
  local heads
  heads, st = roll(5, 9, plan)
  if not heads then return {0, st[1], st[2], st[3], st[4]} end
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

local function names_of(flat)
  local names = {}
  for i = 1, #flat, 2 do names[#names + 1] = flat[i] end
  return names
end

local z, op = KEYS[1], ARGV[2]
if op == 'top' then
  local flat = redis.call('ZREVRANGE', z, ARGV[3], ARGV[4], 'WITHSCORES')
  return {1, st[1], st[2], st[3], st[4], flat, spelled(names_of(flat))}
elseif op == 'rank' then
  local r = redis.call('ZREVRANK', z, ARGV[3])
  if not r then return {1, st[1], st[2], st[3], st[4], false} end
  return {1, st[1], st[2], st[3], st[4], r, redis.call('ZSCORE', z, ARGV[3]),
          spelled({ARGV[3]})[1]}
elseif op == 'around' then
  local r = redis.call('ZREVRANK', z, ARGV[3])
  if not r then return {1, st[1], st[2], st[3], st[4], false} end
  local n = tonumber(ARGV[4])
  local start = math.max(0, r - n)
  local flat = redis.call('ZREVRANGE', z, start, r + n, 'WITHSCORES')
  return {1, st[1], st[2], st[3], st[4], start, flat, spelled(names_of(flat))}
elseif op == 'size' then
  return {1, st[1], st[2], st[3], st[4], redis.call('ZCARD', z)}
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
        self.key_variants = p + "variants"  # lower -> other spellings, tab-separated
        self.key_spellings = p + "spellings"  # spelling (not all lower-case) -> count
        self.key_window = {w: f"{p}z:{w}" for w in WINDOWS}
        self._seen_prefix = p + "seen:"
        self._bucket_prefix = p + "b:"
        # registered once per board: EVALSHA, loading the script only when missing
        self._record_script = redis.register_script(_LUA_RECORD)
        self._read_script = redis.register_script(_LUA_READ)
        self._state: list[int | None] | None = None  # cached meta h1h, h24h, h7d, cur

    # --- keys ----------------------------------------------------------------------
    def bucket_key(self, start: int) -> str:
        return f"{self._bucket_prefix}{start}"

    @staticmethod
    def marker_group(tweet_id: int) -> int:
        """The hour of a snowflake id (ms since X's epoch are its bits 22 and up)."""
        return (int(tweet_id) >> 22) // MARKER_GROUP_MS

    def marker_key(self, tweet_id: int) -> str:
        """The set that holds the tweet's dedupe marker (its id)."""
        return f"{self._seen_prefix}{self.marker_group(tweet_id)}"

    def window_key(self, window: str) -> str:
        return self.key_window[self._check_window(window)]

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
                self.key_spellings, self.key_progress]

    def _catch_up(self, now: float) -> _Plan:
        """Roll in bounded steps until one last step is left; returns that step's plan."""
        while True:
            plan = self._plan(now)
            if plan.complete:
                return plan
            args = {**plan.as_args(), "b": [], "bt": [], "g": 0, "t": [], "lc": {}, "mt": 1,
                    "ps": [], "pd": [], "now": "", "touch": 0}
            res = self._record_script(keys=self._record_keys() + plan.leaving,
                                      args=[_dumps(args)], client=self.redis)
            self._remember(res[2:6])

    # --- counting ------------------------------------------------------------------
    def record(self, tweets: Sequence[Tweet], *,
               progress: Mapping[str, str | None] | None = None) -> int:
        """Count the tweets not counted before, in one atomic script; returns how many.

        `progress` fields are set (None: deleted) in the ingest-progress hash by the
        same script, so a checkpoint never moves without its counts.  Pass batches of
        up to a few thousand tweets: one script blocks the server while it runs.
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
            low = s.lower()
            if low != s:
                lower[s] = low
        # marker sets: one per hour of tweet ids
        groups: dict[int, int] = {}
        gidx: list[int] = []
        ids: list[str] = []
        for t in tweets:
            tid = int(t.id)
            g = (tid >> 22) // MARKER_GROUP_MS
            j = groups.get(g)
            if j is None:
                j = groups[g] = len(groups) + 1
            gidx.append(j)
            ids.append(str(tid))
        group_keys = [f"{self._seen_prefix}{g}" for g in groups]
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
            args = {**plan.as_args(), "b": starts, "bt": ttls, "g": len(group_keys),
                    "t": rows, "lc": lower, "mt": self.marker_ttl, "ps": pset, "pd": pdel,
                    "now": repr(float(now)), "touch": 1}
            keys = [*self._record_keys(), *plan.leaving, *map(self.bucket_key, starts),
                    *group_keys]
            res = self._record_script(keys=keys, args=[_dumps(args)], client=self.redis)
            self._remember(res[2:6])
            if int(res[0]) == 1:
                return int(res[1])
            # stale view of the heads: nothing was written; plan again

    # --- reads ---------------------------------------------------------------------
    def _read(self, window: str, op: str, *op_args: Any) -> list:
        self._check_window(window)
        base = [self.key_window[window], self.key_window["all"], self.key_variants,
                self.key_spellings]
        if window == "all":
            return self._read_script(keys=base, args=["", op, *op_args], client=self.redis)[5:]
        now = self.clock()
        while True:
            plan = self._catch_up(now)
            if not plan.moves:  # heads only move forward: what we saw is still current
                return self._read_script(keys=base, args=["", op, *op_args],
                                         client=self.redis)[5:]
            res = self._read_script(keys=[*base, *self._roll_keys(), *plan.leaving],
                                    args=[_dumps(plan.as_args()), op, *op_args],
                                    client=self.redis)
            self._remember(res[1:5])
            if int(res[0]) == 1:
                return res[5:]

    @staticmethod
    def _entries(first_rank: int, flat: Sequence, spellings: Sequence) -> list[Entry]:
        return [Entry(first_rank + i // 2, _text(spellings[i // 2]), _score(flat[i + 1]))
                for i in range(0, len(flat), 2)]

    @staticmethod
    def _key_of(hashtag: str) -> str:
        tag = str(hashtag)
        if tag[:1] in ("#", "＃"):
            tag = tag[1:]
        return tag.lower()

    def top(self, window: str = "all", n: int = 10, offset: int = 0) -> list[Entry]:
        """The n highest tags of a window from position `offset` (0-based); ranks 1-based."""
        if n < 0 or offset < 0:
            raise ValueError(f"n and offset must be >= 0, got n={n}, offset={offset}")
        if n == 0:
            self._check_window(window)
            return []
        flat, spellings = self._read(window, "top", offset, offset + n - 1)
        return self._entries(offset + 1, flat, spellings)

    def rank_for(self, hashtag: str, window: str = "all") -> Entry | None:
        """Rank and score of one tag (any spelling, '#' optional); None when it has no count."""
        res = self._read(window, "rank", self._key_of(hashtag))
        if res[0] is None:
            return None
        rank, score, spelled = res
        return Entry(int(rank) + 1, _text(spelled), _score(score))

    def around_me(self, hashtag: str, window: str = "all", n: int = 2) -> list[Entry]:
        """The tag with up to n neighbours above and below it; [] when it has no count."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        res = self._read(window, "around", self._key_of(hashtag), n)
        if res[0] is None:
            return []
        start, flat, spellings = res
        return self._entries(int(start) + 1, flat, spellings)

    def size(self, window: str = "all") -> int:
        """The number of distinct tags with a count in the window."""
        return int(self._read(window, "size")[0])

    def updated_at(self) -> float | None:
        """Clock time of the last `record` call, None before the first."""
        value = self.redis.hget(self.key_meta, "updated_at")
        return None if value is None else float(_text(value))

    def progress(self) -> dict[str, str]:
        """The ingest-progress hash (since_id and whatever else the orchestrator keeps)."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.key_progress).items()}


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
