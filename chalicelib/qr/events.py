"""`qr.created` on the app's EventBridge bus: at least once, never failing the request.

PutEvents answers 200 even when an entry was not accepted: the entry then has an
ErrorCode and FailedEntryCount counts it.  botocore's retries cover a failed
call, not a failed entry, so failed entries are sent again here with
exponential backoff, a few times within a bounded time.  What still fails is
logged and dropped: the image and cache entry exist, and only the statistics
on the page miss one creation.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from chalicelib.qr.store import Entry

log = logging.getLogger("pulse.qr")

SOURCE = "pulse.qr"
DETAIL_TYPE = "qr.created"


def created_event(entry: Entry, domain: str, bus: str) -> dict:
    detail = {"id": entry.id, "url": entry.url, "domain": domain, "format": entry.format,
              "created_at": entry.created_at, "creation": entry.creation}
    return {"EventBusName": bus, "Source": SOURCE, "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail, separators=(",", ":"))}


class EventPublisher:
    def __init__(self, events, bus: str, attempts: int = 4, base_delay: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep):
        self.events, self.bus = events, bus
        self.attempts, self.base_delay, self.sleep = attempts, base_delay, sleep

    def publish(self, entries: list[dict]) -> int:
        """Send entries; returns how many were accepted.  Never raises."""
        pending, accepted = list(entries), 0
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.base_delay * 2 ** (attempt - 1))  # 50, 100, 200 ms
            try:
                resp = self.events.put_events(Entries=pending)
            except Exception as exc:
                # botocore has already retried the call itself (standard mode);
                # more tries here would only hold the caller longer.
                log.error("PutEvents failed, %d entries dropped: %r", len(pending), exc)
                return accepted
            failed = [e for e, r in zip(pending, resp.get("Entries", []), strict=False)
                      if r.get("ErrorCode")]
            accepted += len(pending) - len(failed)
            if not failed:
                return accepted
            log.warning("PutEvents: %d of %d entries failed (attempt %d): %s", len(failed),
                        len(pending), attempt + 1,
                        {r.get("ErrorCode") for r in resp["Entries"] if r.get("ErrorCode")})
            pending = failed
        log.error("PutEvents: %d entries dropped after %d attempts", len(pending), self.attempts)
        return accepted
