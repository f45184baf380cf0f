"""Create-or-reuse a QR code: cache lookup, render, store, claim.

The `qr.created` event is not put here: it follows from the item's write through the
table's DynamoDB stream (chalicelib.qr.events), so a request that dies right after the
write cannot leave an item without its event, and the miss makes no PutEvents call."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib import telemetry
from chalicelib.errors import NotFound
from chalicelib.qr.spec import QrSpec
from chalicelib.qr.store import Entry, QrStore


@dataclass(frozen=True)
class Outcome:
    entry: Entry
    created: bool  # this request made the image and the cache entry
    image_url: str
    expires_in: int


class Lookup(Protocol):
    def get(self, qr_id: str, now: float) -> Entry | None: ...

    def image(self, entry: Entry, now: float) -> bytes | None: ...


class QrService:
    """`lookup` finds live entries and their images: the store itself (one GetItem, one
    GetObject), or the store behind memcached (chalicelib.qr.cached)."""

    def __init__(self, store: QrStore, ttl_seconds: int = 86400,
                 presign_seconds: int = 3600, clock: Callable[[], float] = time.time,
                 lookup: Lookup | None = None):
        self.store = store
        self.lookup = lookup or store
        self.ttl_seconds, self.presign_seconds = ttl_seconds, presign_seconds
        self.clock = clock

    @staticmethod
    def _render(spec: QrSpec) -> bytes:
        from chalicelib.qr.render import render  # qrcode + PIL load only on a miss

        started = time.perf_counter()
        image = render(spec)
        telemetry.record("qr", "QrRenderMs", (time.perf_counter() - started) * 1000)
        return image

    def _looked_up(self, qr_id: str, now: float) -> Entry | None:
        """The lookup, counted: `QrMiss` when no live entry; a hit is counted by its layer
        (chalicelib.qr.cached), or here when the store itself is the lookup."""
        entry = self.lookup.get(qr_id, now)
        if entry is None:
            telemetry.count("qr", "QrMiss")
        elif self.lookup is self.store:
            telemetry.count("qr", "QrHitDynamodb")
        return entry

    def _outcome(self, entry: Entry, created: bool, now: float) -> Outcome:
        url, expires_in = self.store.presign(entry, now, self.presign_seconds)
        return Outcome(entry, created, url, expires_in)

    def get_or_create(self, spec: QrSpec) -> Outcome:
        now = self.clock()  # the TTL is computed per request, never per container
        entry = self._looked_up(spec.id, now)
        if entry is not None:
            return self._outcome(entry, False, now)
        # Object first, then the entry: an entry never points at a missing image.
        key = self.store.put_image(spec, self._render(spec))
        entry = self.store.claim(spec, key, now, self.ttl_seconds)
        if entry is None:  # a concurrent identical request created it first
            entry = self.store.get(spec.id, now)  # DynamoDB itself: memcached cannot have it
            if entry is None:  # pragma: no cover - only if it expired in between
                raise RuntimeError(f"cache entry {spec.id} vanished after a lost claim")
            return self._outcome(entry, False, now)
        telemetry.count("qr", "QrCreated")
        return self._outcome(entry, True, now)

    def live_entry(self, qr_id: str) -> Entry:
        entry = self._looked_up(qr_id, self.clock())
        if entry is None:
            raise NotFound(f"no QR code {qr_id} (never made, or expired)", id=qr_id)
        return entry

    def image(self, qr_id: str) -> tuple[Entry, bytes]:
        entry = self.live_entry(qr_id)
        body = self.lookup.image(entry, self.clock())
        if body is None:
            raise NotFound(f"the image of QR code {qr_id} has expired", id=qr_id)
        return entry, body

    def image_url(self, qr_id: str) -> str:
        entry = self.live_entry(qr_id)
        return self.store.presign(entry, self.clock(), self.presign_seconds)[0]
