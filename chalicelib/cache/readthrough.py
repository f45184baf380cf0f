"""Read-through (lazy loading) over memcached: TTL with jitter, negative entries,
an add-based refresh lock, serve-stale and fail-open.

One key holds one entry: the value (or "not found"), when it was fetched and until
when it is fresh.  memcached keeps it `stale_ttl` past that, so a stale copy is at
hand when the upstream fails.  A read:

- fresh entry: HIT;
- missing or stale: the caller that wins `add(<key>:lock)` loads from the upstream
  and stores (MISS); the others answer the stale copy at once (STALE) or, with no
  copy, poll briefly until the winner has stored (HIT) - so a cold or expired key
  costs the upstream one call however many callers ask at once;
- the load fails or times out: the stale copy (STALE), else the 502/504.  The lock
  key then holds the failure for 1-2 s: waiters answer it at once, and a failing
  upstream is not hit again by every caller;
- memcached fails (a node down, all down): the caller loads directly (BYPASS).  The
  client drops a failed node from the hash at once, so this costs a connect timeout
  once per node, then the node's keys live on the other nodes (see memcached.py).

Values bigger than memcached's item limit are served, not stored: a small marker
says "too large" for the TTL, so callers then load directly without the lock.

A policy without the lock (`lock=False`) is for a cheap load whose concurrent runs do
no harm (the QR code lookup, one DynamoDB GetItem): every missing caller loads and
stores, and nobody waits.  A value may bound its own freshness (`Loaded.ttl`, e.g. a
record that expires), and an entry with nothing to keep (no fresh time, no stale time:
`negative_ttl=0` with `stale_ttl=0` for a "not found") is not stored at all.
"""
from __future__ import annotations

import enum
import json
import logging
import math
import random
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from pymemcache.exceptions import MemcacheError

from chalicelib.errors import PulseError, UpstreamFailed, UpstreamTimeout

log = logging.getLogger("pulse.cache")

ITEM_LIMIT = 1024 * 1024  # memcached's default item size limit (-I 1m), key included
ITEM_OVERHEAD = 64  # memcached's own item header, within the limit
COMPRESS_MIN = 1024  # smaller values are stored as they are
FAILURE_HOLD_SECONDS = 2  # memcached expiry of a failure marker: it lives 1-2 s
WAIT_MARGIN = 0.2  # waiters give the lock holder this long past its deadline
CACHE_ERRORS = (MemcacheError, OSError)  # OSError covers refused, reset, timeouts, TLS

# Entry header: format, flags, fetched_at, fresh_until (Unix seconds), len(meta).
_HEADER = struct.Struct("!BBddH")
_FORMAT = 1
_NEGATIVE, _COMPRESSED, _TOO_LARGE = 1, 2, 4
_FAILURE = b"!"  # first byte of a lock key's value that records a failed load


class CacheStatus(enum.StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"
    BYPASS = "BYPASS"


@dataclass(frozen=True)
class Loaded:
    """What a load returns: the value, or None for "does not exist" (cached negatively)."""

    value: bytes | None
    meta: str = ""  # a short label kept with the value (the content type)
    ttl: float | None = None  # the value's own remaining lifetime: fresh no longer than this


@dataclass(frozen=True)
class Policy:
    ttl: float
    negative_ttl: float
    stale_ttl: float
    timeout: float  # the total deadline of one load
    lock: bool = True  # one refreshing caller per key (stampede protection, serve-stale)


@dataclass(frozen=True)
class Entry:
    value: bytes | None
    meta: str
    fetched_at: float
    fresh_until: float
    too_large: bool = False  # a marker only: the value is not stored

    def is_fresh(self, now: float) -> bool:
        return now < self.fresh_until


@dataclass(frozen=True)
class Result:
    entry: Entry
    status: CacheStatus
    age: int  # seconds since the upstream answered (0 unless HIT or STALE)


def encode(entry: Entry) -> bytes:
    flags = (_NEGATIVE if entry.value is None else 0) | (_TOO_LARGE if entry.too_large else 0)
    body = b"" if entry.value is None or entry.too_large else entry.value
    if len(body) >= COMPRESS_MIN:
        packed = zlib.compress(body, 1)  # JSON shrinks 3-10x even at the fastest level
        if len(packed) < len(body):
            body, flags = packed, flags | _COMPRESSED
    meta = entry.meta.encode()[:255]
    return _HEADER.pack(_FORMAT, flags, entry.fetched_at, entry.fresh_until, len(meta)) + \
        meta + body


def decode(raw: bytes) -> Entry | None:
    """The entry, or None for bytes this format cannot read (read as a miss)."""
    if len(raw) < _HEADER.size or raw[0] != _FORMAT:
        return None
    _, flags, fetched_at, fresh_until, meta_len = _HEADER.unpack_from(raw)
    start = _HEADER.size + meta_len
    body = raw[start:]
    if flags & _COMPRESSED:
        body = zlib.decompress(body)
    return Entry(value=None if flags & _NEGATIVE else body,
                 meta=raw[_HEADER.size:start].decode(errors="replace"),
                 fetched_at=fetched_at, fresh_until=fresh_until,
                 too_large=bool(flags & _TOO_LARGE))


class ReadThroughCache:
    """Read-through over a pymemcache client (HashClient); `load(deadline)` fetches."""

    def __init__(self, memcached, *, jitter: float = 0.1, item_limit: int = ITEM_LIMIT,
                 poll_seconds: float = 0.01, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random):
        self.mc = memcached
        self.jitter = jitter
        self.item_limit = item_limit
        self.poll_seconds = poll_seconds
        self._clock, self._monotonic, self._sleep, self._rng = clock, monotonic, sleep, rng

    def get(self, key: str, load: Callable[[float], Loaded], policy: Policy) -> Result:
        deadline = self._monotonic() + policy.timeout
        try:
            entry, answer = self._cached(key, load, policy, deadline)
            if answer is not None:
                return answer
            stale = entry if entry is not None and not entry.too_large else None
            if policy.lock and self._lock(key, policy):
                return self._refresh(key, load, policy, deadline, stale)
        except CACHE_ERRORS as exc:  # the load gets its whole timeout after memcached's
            return self._bypass(key, load, policy, self._monotonic() + policy.timeout, exc)
        if not policy.lock:  # outside the try: the load's own errors are not memcached's
            return self._store_loaded(key, self._entry(load(deadline), policy), policy)
        if stale is not None:  # another caller is refreshing, or just failed to
            return Result(stale, CacheStatus.STALE, self._age(stale, self._clock()))
        return self._wait(key, load, policy, deadline)

    # --- the steps -------------------------------------------------------------------

    def _read(self, key: str) -> Entry | None:
        raw = self.mc.get(key)
        return None if raw is None else decode(raw)

    def _cached(self, key, load, policy, deadline) -> tuple[Entry | None, Result | None]:
        """The key's entry, and the answer when it is fresh: a HIT, or for a value known
        to be too large to store, a load straight from the upstream."""
        entry = self._read(key)
        now = self._clock()
        if entry is None or not entry.is_fresh(now):
            return entry, None
        if entry.too_large:
            return entry, self._load_uncached(load, deadline, policy)
        return entry, Result(entry, CacheStatus.HIT, self._age(entry, now))

    def _lock(self, key: str, policy: Policy) -> bool:
        # Held at most until the holder's deadline has passed; a holder that dies
        # (a Lambda timing out) frees the key when memcached expires the lock.
        return self.mc.add(key + ":lock", b"1", expire=math.ceil(policy.timeout) + 1,
                           noreply=False)

    def _refresh(self, key, load, policy, deadline, stale: Entry | None) -> Result:
        """The lock holder: load, store, unlock; on failure the stale copy or the error."""
        # Read again under the lock: a caller that was slow between its read and its
        # add may get the lock only after the previous holder stored and unlocked.
        _, answer = self._cached(key, load, policy, deadline)
        if answer is not None:
            self.mc.delete(key + ":lock", noreply=False)
            return answer
        try:
            entry = self._entry(load(deadline), policy)
        except (UpstreamFailed, UpstreamTimeout) as exc:
            self._hold_failure(key, exc)
            if stale is None:
                raise
            log.warning("serving a stale copy of %s: %s", key, exc.message)
            return Result(stale, CacheStatus.STALE, self._age(stale, self._clock()))
        result = self._store_loaded(key, entry, policy)
        try:  # unlock even when the store failed: waiters then load for themselves
            self.mc.delete(key + ":lock", noreply=False)
        except CACHE_ERRORS:
            pass  # the lock expires by itself
        return result

    def _wait(self, key, load, policy, deadline) -> Result:
        """No copy and someone else holds the lock: wait for what it stores."""
        delay = self.poll_seconds
        while self._monotonic() < deadline + WAIT_MARGIN:
            self._sleep(delay)
            delay = min(delay * 1.5, 0.05)
            try:
                _, answer = self._cached(key, load, policy, deadline)
                if answer is not None:
                    return answer
                held = self.mc.get(key + ":lock")
                if held is not None and held.startswith(_FAILURE):
                    raise self._failure(held)
                if held is None and self._lock(key, policy):  # the holder went away
                    return self._refresh(key, load, policy, deadline, None)
            except CACHE_ERRORS as exc:
                return self._bypass(key, load, policy, deadline, exc)
        raise UpstreamTimeout(f"no answer within {policy.timeout:g}s: another request "
                              "is still fetching it")

    def _bypass(self, key, load, policy, deadline, exc: Exception) -> Result:
        log.warning("memcached unavailable for %s (%r): loading directly", key, exc)
        return Result(self._entry(load(deadline), policy), CacheStatus.BYPASS, 0)

    def _load_uncached(self, load, deadline, policy) -> Result:
        return Result(self._entry(load(deadline), policy), CacheStatus.MISS, 0)

    # --- storage ---------------------------------------------------------------------

    def _store_loaded(self, key: str, entry: Entry, policy: Policy) -> Result:
        """Store what was just loaded: MISS, or BYPASS when memcached failed."""
        try:
            self._store(key, entry, policy)
        except CACHE_ERRORS as exc:
            log.warning("memcached failed storing %s: %r", key, exc)
            return Result(entry, CacheStatus.BYPASS, 0)
        return Result(entry, CacheStatus.MISS, 0)

    def _entry(self, loaded: Loaded, policy: Policy) -> Entry:
        now = self._clock()
        ttl = policy.ttl if loaded.value is not None else policy.negative_ttl
        if loaded.ttl is not None:
            ttl = max(0.0, min(ttl, loaded.ttl))
        # Jitter only shortens: keys stored together do not all expire together,
        # and nothing stays fresh longer than configured.
        fresh = ttl * (1 - self.jitter * self._rng())
        return Entry(loaded.value, loaded.meta, now, now + fresh)

    def _store(self, key: str, entry: Entry, policy: Policy) -> None:
        fresh = entry.fresh_until - entry.fetched_at
        if fresh + policy.stale_ttl <= 0:
            return  # nothing to keep (and memcached reads an expiry of 0 as "never")
        raw = encode(entry)
        if len(raw) + len(key) + ITEM_OVERHEAD > self.item_limit:
            log.info("%s is %d bytes, over the item limit: served uncached", key, len(raw))
            marker = encode(replace(entry, too_large=True))
            self.mc.set(key, marker, expire=max(1, math.ceil(fresh)), noreply=False)
            return
        self.mc.set(key, raw, expire=math.ceil(fresh + policy.stale_ttl), noreply=False)

    def _hold_failure(self, key: str, exc: PulseError) -> None:
        """Replace our lock by the failure, for waiters and the next 1-2 s of callers."""
        record = _FAILURE + json.dumps({"status": exc.status_code, **exc.to_body()}).encode()
        try:
            self.mc.set(key + ":lock", record, expire=FAILURE_HOLD_SECONDS, noreply=False)
        except CACHE_ERRORS as mc_exc:
            log.warning("memcached failed recording a failure of %s: %r", key, mc_exc)

    @staticmethod
    def _failure(record: bytes) -> PulseError:
        body = json.loads(record[1:])
        cls = UpstreamTimeout if body.pop("status") == UpstreamTimeout.status_code \
            else UpstreamFailed
        body.pop("error", None)
        return cls(body.pop("message"), **body)

    @staticmethod
    def _age(entry: Entry, now: float) -> int:
        return max(0, int(now - entry.fetched_at))
