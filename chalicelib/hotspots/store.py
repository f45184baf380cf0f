"""Per-page click windows and hotspot results in Redis, applied idempotently.

Keys of one page; all carry the hash tag ``{<page>}``, so they share one cluster
slot and one script may touch all of them (MemoryDB always runs as a cluster):

    pulse:hs:{page}:win     LIST  the window: "arrival_ms x y[ viewport]" per click, oldest
                                  first
    pulse:hs:{page}:meta    HASH  seq:<shardId> -> last applied sequence number of that
                                  shard; version (bumped by every change of the window);
                                  newest (latest arrival_ms seen)
    pulse:hs:{page}:ids     ZSET  click id -> arrival_ms of the page's recent clicks: those
                                  within the window, at most 4 x max_clicks, expiring
                                  2 x the window after the last click
    pulse:hs:{page}:result  STR   JSON of the hotspots last computed, with the window
                                  version they were computed from (a cache: readers
                                  compute on a version change, see reader.py)
    pulse:hs:{page}:views   HASH  other views of the window (a heatmap, a segment, a
                                  `since`; reader.py): view key -> JSON, and "@version",
                                  the window version they were computed from; at most
                                  MAX_VIEWS of them, expiring a window after the last save
    pulse:hs:pages          ZSET  the index of pages: page -> newest arrival_ms
    pulse:hs:malformed      STR   count of records the consumer skipped as malformed

Bounds: a page's keys expire a window (`window_seconds`) after its last applied click
(every `apply` that adds clicks sets their TTL again; a saved result takes the window's
remaining TTL), and the index keeps at most `max_pages` pages: `track` adds the pages
of a batch and, past the cap, drops the least recently clicked ones with their keys.
The index itself expires a window after its newest click and forgets pages older than
a window.  So Redis holds at most `max_pages` pages of at most `max_clicks` clicks.

Idempotence: Kinesis and Lambda deliver at least once, so `apply` is one Lua script
per page per batch that compares each record's sequence number with the last one
applied from its shard (kept in `meta`, in the same slot as the window) and applies
only newer ones, moving the stored sequence number in the same atomic step.  A
redelivered batch therefore changes nothing, and neither does a retried script call.
Sequence numbers are decimal strings of up to 128 digits: compared by length, then
digit by digit.  The shard name the consumer passes names the stream too (its ARN and
creation time, consumer.py), so a new stream of the same name starts fresh.

Exactly once: a click resent by its client (after a 503 or a timed-out PutRecords that
did get in) is a new record with the same click id.  The script drops a record whose id
is in the page's `ids` set, and adds the id of each click it applies, in the same step.
The set is bounded: ids of clicks older than the window (by arrival time) and beyond the
newest 4 x max_clicks are removed, so a resend is dropped when it arrives within the
window of the original and fewer than 4 x max_clicks clicks after it on that page.

The window is bounded in the script: LTRIM to the last `max_clicks`, then clicks
older than `newest - window_ms` are popped from the head (a bounded number per call;
the arrival order across shards is only roughly the list order, so readers also
filter by time).

`save_result` writes the hotspots only when the window's version is still the one
they were computed from: a reader computing from an older window must not
overwrite a newer result.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

MALFORMED_KEY = "pulse:hs:malformed"
PAGES_KEY = "pulse:hs:pages"
_PREFIX = "pulse:hs:"


def page_keys(page: str) -> tuple[str, str, str]:
    base = f"{_PREFIX}{{{page}}}:"
    return base + "win", base + "meta", base + "result"


def ids_key(page: str) -> str:
    """The page's recent click ids (ZSET id -> arrival ms), in the page's slot."""
    return f"{_PREFIX}{{{page}}}:ids"


# KEYS: win, meta, ids.  ARGV: shard, max_clicks, window_ms, replay ("1": ignore and keep
# the shard's checkpoint), then (seq, arrival_ms, click id or "", item) per record in
# shard order.  Returns {applied, version, duplicates}.
_LUA_APPLY = r"""
local function check(key, want)
  local t = redis.call('TYPE', key)
  t = t.ok or t
  if t ~= 'none' and t ~= want then error('WRONGTYPE ' .. key .. ' is a ' .. t) end
end
check(KEYS[1], 'list')
check(KEYS[2], 'hash')
check(KEYS[3], 'zset')
local function newer(a, b)
  if not b then return true end
  if #a ~= #b then return #a > #b end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end
local field = 'seq:' .. ARGV[1]
local max_clicks, window_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local replay = ARGV[4] == '1'
local first = redis.call('HGET', KEYS[2], field)
local last = first
local newest = tonumber(redis.call('HGET', KEYS[2], 'newest') or '0')
local items, duplicates, ids = {}, 0, 0
for i = 5, #ARGV, 4 do
  if replay or newer(ARGV[i], last) then
    if not replay then last = ARGV[i] end
    local at, id = tonumber(ARGV[i + 1]), ARGV[i + 2]
    if id ~= '' and redis.call('ZSCORE', KEYS[3], id) then
      duplicates = duplicates + 1
    else
      if id ~= '' then
        redis.call('ZADD', KEYS[3], at, id)
        ids = ids + 1
      end
      if at > newest then newest = at end
      items[#items + 1] = ARGV[i + 3]
    end
  end
end
if ids > 0 then
  -- ids of clicks older than the window, and beyond the newest 4 x max_clicks, go
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (newest - window_ms))
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(4 * max_clicks) - 1)
  redis.call('PEXPIRE', KEYS[3], 2 * window_ms)
end
if last ~= first then
  redis.call('HSET', KEYS[2], field, last)
  redis.call('PEXPIRE', KEYS[2], window_ms)  -- a page's keys live a window past its last write
end
local version
if #items > 0 then
  for i = 1, #items, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(items, i, math.min(i + 999, #items)))
  end
  redis.call('LTRIM', KEYS[1], -max_clicks, -1)
  local cutoff = newest - window_ms
  for _ = 1, max_clicks do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if not head or tonumber(string.match(head, '^%d+')) >= cutoff then break end
    redis.call('LPOP', KEYS[1])
  end
  redis.call('HSET', KEYS[2], 'newest', newest)
  version = redis.call('HINCRBY', KEYS[2], 'version', 1)
  redis.call('PEXPIRE', KEYS[1], window_ms)
  redis.call('PEXPIRE', KEYS[2], window_ms)
else
  version = tonumber(redis.call('HGET', KEYS[2], 'version') or '0')
end
return {#items, version, duplicates}
"""

# KEYS: meta, result.  Returns {version or false, result JSON or false} in one round trip.
_LUA_CURRENT = r"""
return {redis.call('HGET', KEYS[1], 'version'), redis.call('GET', KEYS[2])}
"""

# KEYS: meta, result.  ARGV: version, result JSON.  Writes only for the current version.
_LUA_SAVE = r"""
local v = redis.call('HGET', KEYS[1], 'version')
if v ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return 1
"""

# KEYS: the index.  ARGV: max_pages, window_ms, then (newest_ms, page) per page.  Adds
# the pages, forgets those a window older than the newest, expires the index a window
# after it, and pops the least recently clicked past max_pages: returns those pages.
_LUA_TRACK = r"""
local max_pages, window_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local newest = 0
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[i], ARGV[i + 1])
  newest = math.max(newest, tonumber(ARGV[i]))
end
local dropped = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (newest - window_ms))
if #dropped > 0 then redis.call('ZREM', KEYS[1], unpack(dropped)) end
local over = redis.call('ZCARD', KEYS[1]) - max_pages
local evicted = {}
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #popped, 2 do evicted[#evicted + 1] = popped[i] end
end
redis.call('PEXPIRE', KEYS[1], window_ms)
return evicted
"""


@dataclass(frozen=True)
class Click:
    x: float
    y: float
    arrival_ms: int
    viewport: str = ""  # "phone", "tablet", "desktop" or "" (not sent)


@dataclass(frozen=True)
class Applied:
    applied: int  # records that were new
    version: int  # the window's version after the script
    duplicates: int = 0  # new records whose click id the page had seen: dropped


def encode_click(arrival_ms: int, x: float, y: float, viewport: str = "") -> str:
    return f"{arrival_ms} {x!r} {y!r} {viewport}" if viewport else f"{arrival_ms} {x!r} {y!r}"


def decode_click(item: str) -> Click:
    at, x, y, *viewport = item.split(" ")
    return Click(float(x), float(y), int(at), viewport[0] if viewport else "")


class HotspotStore:
    """The click windows and hotspot results of every page, in one Redis (or cluster)."""

    def __init__(self, redis, max_clicks: int, window_seconds: int, max_pages: int = 2000):
        self.redis = redis
        self.max_clicks = max_clicks
        self.window_ms = window_seconds * 1000
        self.max_pages = max_pages
        self._track = redis.register_script(_LUA_TRACK)
        self._apply = redis.register_script(_LUA_APPLY)
        self._save = redis.register_script(_LUA_SAVE)
        self._current = redis.register_script(_LUA_CURRENT)

    def _apply_call(self, page: str, shard: str, records: Sequence[tuple],
                    replay: bool = False) -> tuple[list, list]:
        win, meta, _ = page_keys(page)
        args: list = [shard, self.max_clicks, self.window_ms, "1" if replay else "0"]
        for rec in records:
            seq, at, x, y = rec[:4]
            viewport = rec[4] if len(rec) > 4 else ""
            click_id = rec[5] if len(rec) > 5 else ""
            args += (seq, at, click_id, encode_click(at, x, y, viewport))
        return [win, meta, ids_key(page)], args

    def apply(self, page: str, shard: str, records: Sequence[tuple],
              replay: bool = False) -> Applied:
        """Add the records (sequence number, arrival ms, x, y[, viewport class[, click id]])
        of one shard, in shard order, that are newer than the last applied from that shard
        and whose click id the page has not seen within the window.  `replay`: every record
        is a candidate, the click id alone decides, and the shard's checkpoint stays."""
        keys, args = self._apply_call(page, shard, records, replay)
        out = self._apply(keys=keys, args=args)
        return Applied(int(out[0]), int(out[1]), int(out[2]))

    def apply_many(self, batches: Sequence[tuple[str, str, Sequence]],
                   replay: bool = False) -> list[Applied]:
        """`apply` for several (page, shard, records) in one round trip (a pipeline of the
        script; per node on a cluster).  A script the server does not have cached yet
        (NOSCRIPT) is run again on its own: the script is idempotent, so that is safe."""
        if len(batches) <= 1:
            return [self.apply(*batch, replay=replay) for batch in batches]
        from redis.exceptions import NoScriptError

        pipe = self.redis.pipeline(transaction=False)
        calls = [self._apply_call(*batch, replay=replay) for batch in batches]
        for keys, args in calls:
            # execute_command: ClusterPipeline blocks its evalsha() method, not the command
            pipe.execute_command("EVALSHA", self._apply.sha, len(keys), *keys, *args)
        results = pipe.execute(raise_on_error=False)
        applied = []
        for (keys, args), out in zip(calls, results, strict=True):
            if isinstance(out, NoScriptError):
                out = self._apply(keys=keys, args=args)
            elif isinstance(out, Exception):
                raise out
            applied.append(Applied(int(out[0]), int(out[1]), int(out[2])))
        return applied

    def save_result(self, page: str, version: int, result: dict) -> bool:
        _, meta, key = page_keys(page)
        body = json.dumps({**result, "version": version}, separators=(",", ":"))
        return bool(self._save(keys=[meta, key], args=[version, body, self.window_ms]))

    def track(self, newest: dict[str, int]) -> list[str]:
        """Record each page's newest click (arrival ms) in the index; past `max_pages`, the
        least recently clicked pages are dropped, keys and all: returns them."""
        if not newest:
            return []
        args: list = [self.max_pages, self.window_ms]
        for page, at in newest.items():
            args += (at, page)
        evicted = list(self._track(keys=[PAGES_KEY], args=args))
        if evicted:
            pipe = self.redis.pipeline(transaction=False)
            for page in evicted:
                for key in (*page_keys(page), views_key(page), ids_key(page)):
                    pipe.delete(key)  # one key a command: the pages are on other slots
            pipe.execute()
        return evicted

    def pages(self) -> int:
        """How many pages the index holds."""
        return int(self.redis.zcard(PAGES_KEY))

    def current(self, page: str) -> tuple[int | None, dict | None]:
        """(window version or None for a page never clicked, last saved result or None)."""
        _, meta, key = page_keys(page)
        version, raw = self._current(keys=[meta, key])
        return (None if version is None else int(version),
                None if raw is None else json.loads(raw))

    def window(self, page: str) -> list[Click]:
        return [decode_click(item) for item in self.redis.lrange(page_keys(page)[0], 0, -1)]

    def count_malformed(self, n: int) -> None:
        if n:
            self.redis.incrby(MALFORMED_KEY, n)

    def malformed(self) -> int:
        return int(self.redis.get(MALFORMED_KEY) or 0)


# --- other views of a window (reader.py): one hash per page, for one window version ---
MAX_VIEWS = 16  # views kept per page and window version; more are computed, not kept


def views_key(page: str) -> str:
    return f"{_PREFIX}{{{page}}}:views"


# KEYS: meta, views.  ARGV: view key.  Returns {window version, view JSON or false}; the
# view only when it was computed from that version.
_LUA_VIEW = r"""
local v = redis.call('HGET', KEYS[1], 'version')
if not v or redis.call('HGET', KEYS[2], '@version') ~= v then return {v, false} end
return {v, redis.call('HGET', KEYS[2], ARGV[1])}
"""

# KEYS: meta, views.  ARGV: version, view key, JSON, max views, ttl ms.  Writes only for
# the current version; the views of an older version are dropped first.
_LUA_SAVE_VIEW = r"""
local v = redis.call('HGET', KEYS[1], 'version')
if v ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], '@version') ~= v then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], '@version', v)
end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0
    and redis.call('HLEN', KEYS[2]) > tonumber(ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""


class ViewStore:
    """Cached views of the page windows of a HotspotStore (same Redis)."""

    def __init__(self, store: HotspotStore):
        self.store = store
        self._get = store.redis.register_script(_LUA_VIEW)
        self._save = store.redis.register_script(_LUA_SAVE_VIEW)

    def current(self, page: str, view: str) -> tuple[int | None, dict | None]:
        """(window version or None for a page never clicked, the view saved for it or None)."""
        meta = page_keys(page)[1]
        version, raw = self._get(keys=[meta, views_key(page)], args=[view])
        return (None if version is None else int(version),
                None if not raw else json.loads(raw))

    def save(self, page: str, view: str, version: int, result: dict) -> bool:
        body = json.dumps({**result, "version": version}, separators=(",", ":"))
        return bool(self._save(keys=[page_keys(page)[1], views_key(page)],
                               args=[version, view, body, MAX_VIEWS,
                                     max(self.store.window_ms, 1000)]))
