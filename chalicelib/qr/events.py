"""`qr.created` on the app's EventBridge bus, following from the cache item's write.

The request path writes the item and nothing else: the table's DynamoDB stream
(NEW_IMAGE) carries each written item to the `qr_item_written` handler (app.py), which
puts one `qr.created` event per item it inserted or replaced (`events_from_records`).
A failed put raises (`EventPublisher.publish_all`), so Lambda delivers the stream batch
again until it succeeds or the stream no longer holds it (24 h): an item whose request
died right after the write still gets its event.  A batch delivered again puts its
events again; the `qr.created` handler counts a creation once (its creation id,
creations.py), so the stats stay exact.

PutEvents answers 200 even when an entry was not accepted: the entry then has an
ErrorCode and FailedEntryCount counts it.  botocore's retries cover a failed call,
not a failed entry, so failed entries are sent again here with exponential backoff,
a few times, before the batch is given back to the stream.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from chalicelib.qr.store import Entry

log = logging.getLogger("pulse.qr")

SOURCE = "pulse.qr"
DETAIL_TYPE = "qr.created"
MAX_ENTRIES_PER_CALL = 10  # PutEvents' limit


class EventsNotPublished(RuntimeError):
    """Some events were not accepted: the stream batch must be delivered again."""


def _put_entry(detail: dict, bus: str) -> dict:
    return {"EventBusName": bus, "Source": SOURCE, "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail, separators=(",", ":"))}


def created_event(entry: Entry, domain: str, bus: str) -> dict:
    return _put_entry({"id": entry.id, "url": entry.url, "domain": domain,
                       "format": entry.format, "created_at": entry.created_at,
                       "creation": entry.creation}, bus)


def dynamic_created_event(item: Mapping, bus: str) -> dict:
    """A dynamic code's `qr.created`: its domain is its target's, where scans go."""
    from chalicelib.qr.codes import item_record

    code = item_record(item)
    return _put_entry({"id": code.code, "url": code.target, "short_url": code.spec.url,
                       "domain": urlsplit(code.target).hostname or "",
                       "format": code.spec.format, "created_at": code.created_at,
                       "creation": f"dyn#{code.code}", "dynamic": True}, bus)


def events_from_records(records: Iterable[Mapping], bus: str) -> tuple[list[dict], int]:
    """(the `qr.created` entries of a DynamoDB Streams batch, records skipped): one per
    QR cache item inserted or replaced (an expired entry written over is a new creation)
    and one per dynamic code inserted (its edits and retirement are not creations);
    removals (TTL expiry) and other items are skipped."""
    from chalicelib.qr.store import entry_from_item

    entries, skipped = [], 0
    for record in records:
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        pk, event = image.get("pk", {}).get("S", ""), record.get("eventName")
        try:
            if event == "INSERT" and pk.startswith("dyn#"):
                entries.append(dynamic_created_event(image, bus))
                continue
            if event not in ("INSERT", "MODIFY") or not pk.startswith("qr#") \
                    or not image.get("creation", {}).get("S"):
                skipped += 1
                continue
            entry = entry_from_item(image)
        except (KeyError, TypeError, ValueError) as exc:  # no retry can fix it
            log.warning("qr item %s: not a QR item (%r); no event", pk, exc)
            skipped += 1
            continue
        entries.append(created_event(entry, urlsplit(entry.url).hostname or "", bus))
    return entries, skipped


class EventPublisher:
    def __init__(self, events, bus: str, attempts: int = 4, base_delay: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep):
        self.events, self.bus = events, bus
        self.attempts, self.base_delay, self.sleep = attempts, base_delay, sleep

    def publish(self, entries: list[dict]) -> int:
        """Send at most 10 entries; returns how many were accepted.  Never raises."""
        pending, accepted = list(entries), 0
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.base_delay * 2 ** (attempt - 1))  # 50, 100, 200 ms
            try:
                resp = self.events.put_events(Entries=pending)
            except Exception as exc:
                # botocore has already retried the call itself (standard mode)
                log.error("PutEvents failed, %d entries not sent: %r", len(pending), exc)
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
        log.error("PutEvents: %d entries not sent after %d attempts", len(pending),
                  self.attempts)
        return accepted

    def publish_all(self, entries: list[dict]) -> int:
        """Send every entry, 10 a call; EventsNotPublished when any is still not accepted
        (the caller's batch is then delivered again, and all of it is sent again)."""
        sent = 0
        for i in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            chunk = entries[i:i + MAX_ENTRIES_PER_CALL]
            accepted = self.publish(chunk)
            if accepted < len(chunk):
                raise EventsNotPublished(
                    f"{len(entries) - sent - accepted} of {len(entries)} qr.created events "
                    "not accepted; the stream delivers the batch again")
            sent += accepted
        return sent


def publish_item_records(records: Iterable[Mapping], publisher: EventPublisher) -> dict:
    """The `qr_item_written` handler's work: {"events", "skipped"}; raises when an event
    was not accepted, so Lambda retries the batch."""
    entries, skipped = events_from_records(records, publisher.bus)
    return {"events": publisher.publish_all(entries), "skipped": skipped}
