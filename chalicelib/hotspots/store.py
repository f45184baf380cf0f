"""Per-page click windows and hotspot results in Redis, applied idempotently.

Keys of one page; all carry the hash tag ``{<page>}``, so they share one cluster
slot and one script may touch all of them (MemoryDB always runs as a cluster):

    pulse:hs:{page}:win     LIST  the window: "arrival_ms x y" per click, oldest first
    pulse:hs:{page}:meta    HASH  seq:<shardId> -> last applied sequence number of that
                                  shard; version (bumped by every change of the window);
                                  newest (latest arrival_ms seen)
    pulse:hs:{page}:ids     ZSET  click id -> arrival_ms of the page's recent clicks: those
                                  within the window, at most 4 x max_clicks, expiring
                                  2 x the window after the last click
    pulse:hs:{page}:result  STR   JSON of the hotspots last computed, with the window
                                  version they were computed from (a cache: readers
                                  compute on a version change, see reader.py)
    pulse:hs:malformed      STR   count of records the consumer skipped as malformed

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
if last ~= first then redis.call('HSET', KEYS[2], field, last) end
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
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Click:
    x: float
    y: float
    arrival_ms: int


@dataclass(frozen=True)
class Applied:
    applied: int  # records that were new
    version: int  # the window's version after the script
    duplicates: int = 0  # new records whose click id the page had seen: dropped


def encode_click(arrival_ms: int, x: float, y: float) -> str:
    return f"{arrival_ms} {x!r} {y!r}"


def decode_click(item: str) -> Click:
    at, x, y = item.split(" ")
    return Click(float(x), float(y), int(at))


class HotspotStore:
    """The click windows and hotspot results of every page, in one Redis (or cluster)."""

    def __init__(self, redis, max_clicks: int, window_seconds: int):
        self.redis = redis
        self.max_clicks = max_clicks
        self.window_ms = window_seconds * 1000
        self._apply = redis.register_script(_LUA_APPLY)
        self._save = redis.register_script(_LUA_SAVE)
        self._current = redis.register_script(_LUA_CURRENT)

    def _apply_call(self, page: str, shard: str, records: Sequence[tuple],
                    replay: bool = False) -> tuple[list, list]:
        win, meta, _ = page_keys(page)
        args: list = [shard, self.max_clicks, self.window_ms, "1" if replay else "0"]
        for rec in records:
            seq, at, x, y = rec[:4]
            args += (seq, at, rec[4] if len(rec) > 4 else "", encode_click(at, x, y))
        return [win, meta, ids_key(page)], args

    def apply(self, page: str, shard: str, records: Sequence[tuple],
              replay: bool = False) -> Applied:
        """Add the records (sequence number, arrival ms, x, y[, click id]) of one shard, in
        shard order, that are newer than the last applied from that shard and whose click
        id the page has not seen within the window.  `replay`: every record is a
        candidate, the click id alone decides, and the shard's checkpoint stays."""
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
        return bool(self._save(keys=[meta, key], args=[version, body]))

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
