"""The QR cache lookup through memcached: the shared read-through component
(chalicelib.cache) in front of the DynamoDB `GetItem`, so a hit is normally one memcached `get`.

An entry never changes until its `ttl` (a new creation only replaces an expired one),
so a copy is as good as the item until then: it is kept for at most min(remaining
ttl, QR_CACHE_SECONDS) and checked against the ttl again when read.  Only live items
read from DynamoDB are stored:

- "not found" (absent or expired) is never cached: the request that found nothing
  creates the code, and the next identical request must see that creation;
- creations are not written through: the first hit after a creation reads DynamoDB
  and fills memcached (a code asked for once costs no memcached write);
- no refresh lock: a GetItem is cheap and concurrent ones are harmless, so no caller
  ever waits for another;
- memcached down: the lookup reads DynamoDB directly (the component fails open).

The image bytes of a code asked for by `GET /qr/{id}` are kept the same way (a key of
their own, for at most min(remaining ttl, QR_CACHE_SECONDS)), so a hot code is served
from memcached alone, entry and image, while S3 and DynamoDB are slow or away.  Presigned
URLs are not cached: the service signs a fresh one per request.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict

from chalicelib import telemetry
from chalicelib.cache.readthrough import CacheStatus, Loaded, Policy, ReadThroughCache
from chalicelib.qr.store import Entry, QrStore

KEY_PREFIX = "pulse:qr:"
LOOKUP_TIMEOUT = 2.0  # the API's answer budget; the GetItem has its client's own timeouts


def cache_key(qr_id: str) -> str:
    return KEY_PREFIX + qr_id


def image_key(qr_id: str) -> str:
    return KEY_PREFIX + "img:" + qr_id


class CachedEntries:
    """`QrStore.get` answered from memcached when it can; the same answers otherwise."""

    def __init__(self, store: QrStore, cache: ReadThroughCache, max_seconds: float = 300):
        self.store, self.cache = store, cache
        # negative_ttl 0 and stale_ttl 0: a "not found" has nothing to keep, so it is
        # never stored; a live entry is kept no longer than it is fresh.
        self.policy = Policy(ttl=max_seconds, negative_ttl=0, stale_ttl=0,
                             timeout=LOOKUP_TIMEOUT, lock=False)

    def get(self, qr_id: str, now: float) -> Entry | None:
        """The live entry of qr_id, or None when absent or expired."""
        def load(_deadline: float) -> Loaded:
            entry = self.store.get(qr_id, now)
            if entry is None:
                return Loaded(None)
            # Whole seconds left, rounded down: memcached's expiry never outlives the item.
            return Loaded(json.dumps(asdict(entry), separators=(",", ":")).encode(),
                          ttl=entry.ttl - math.ceil(now))

        result = self.cache.get(cache_key(qr_id), load, self.policy)
        value = result.entry.value
        if value is None:
            return None
        entry = Entry(**json.loads(value))
        if entry.ttl <= now:  # the item's own ttl has the last word
            return None
        # a HIT was read from memcached; MISS and BYPASS were read from DynamoDB
        telemetry.count("qr", "QrHitMemcached" if result.status == CacheStatus.HIT
                        else "QrHitDynamodb")
        return entry

    def image(self, entry: Entry, now: float) -> bytes | None:
        """`QrStore.read_image(entry)`, from memcached when it holds the bytes."""
        def load(_deadline: float) -> Loaded:
            body = self.store.read_image(entry)
            return Loaded(body, ttl=entry.ttl - math.ceil(now)) if body is not None \
                else Loaded(None)

        return self.cache.get(image_key(entry.id), load, self.policy).entry.value
