"""The Kinesis consumer: records -> per-page click windows.

A record is one click, as the writer puts it: JSON {"p": page, "s": session,
"x": 0..1, "y": 0..1, "t": epoch ms}.  A record that is not that (bad base64, bad
JSON, a field missing or out of range) can never succeed, so it is counted
(`pulse:hs:malformed`), logged and skipped: retrying it would only block its shard
until it expires.  Any other failure (Redis down) raises, so Lambda retries the
batch as the event source mapping says (maximum_retry_attempts, bisecting, then the
on-failure queue; deploy/hotspots_override.tf.json).

Per page of the batch: one `HotspotStore.apply` script (idempotent, see store.py).
A redelivered batch applies nothing, so the window and its version stay as they were.

Hotspots are computed from the window by readers (reader.py), once per window version
and cached, not here after every batch: one computation over a 1,000-click window
costs as much as consuming a few thousand clicks, and with batches of 100 the
consumer would spend most of its time recomputing hotspots nobody has asked for yet
(see BENCHMARKS.md).  Pages are read every second or so; batches arrive much more
often under load.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chalicelib.hotspots.store import HotspotStore

log = logging.getLogger("pulse.hotspots")


class MalformedRecord(ValueError):
    """A record no retry can fix."""


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number")


def _unit(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedRecord(f"{name} is not a number")
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise MalformedRecord(f"{name} is outside [0, 1]")
    return float(value)


@dataclass(frozen=True)
class ClickRecord:
    page: str
    shard: str
    seq: str
    arrival_ms: int
    x: float
    y: float


def parse_record(record: Mapping) -> ClickRecord:
    """One Lambda Kinesis record -> ClickRecord, or MalformedRecord saying why."""
    try:
        kinesis = record["kinesis"]
        seq = kinesis["sequenceNumber"]
        shard = record["eventID"].rpartition(":")[0] or "shard"
        arrival_ms = int(float(kinesis["approximateArrivalTimestamp"]) * 1000)
        data = json.loads(base64.b64decode(kinesis["data"], validate=True),
                          parse_constant=_no_constants)
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
        if isinstance(exc, MalformedRecord):
            raise
        raise MalformedRecord(f"unreadable record: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRecord("data is not a JSON object")
    page = data.get("p")
    if not isinstance(page, str) or not page or len(page) > 64 or "{" in page or "}" in page:
        raise MalformedRecord("p (page) is missing or invalid")
    if not isinstance(seq, str) or not seq.isdigit():
        raise MalformedRecord("sequenceNumber is not decimal")
    return ClickRecord(page, shard, seq, arrival_ms, _unit(data.get("x"), "x"),
                       _unit(data.get("y"), "y"))


@dataclass
class ConsumeResult:
    records: int = 0
    applied: int = 0
    malformed: int = 0
    pages: dict[str, int] = field(default_factory=dict)  # page -> clicks applied

    def to_dict(self) -> dict:
        return {"records": self.records, "applied": self.applied,
                "malformed": self.malformed, "pages": self.pages}


class HotspotConsumer:
    def __init__(self, store: HotspotStore):
        self.store = store

    def group(self, records: Iterable[Mapping],
              result: ConsumeResult) -> dict[tuple[str, str], list[tuple]]:
        """Parse and group by (page, shard), in shard order; malformed ones counted."""
        groups: dict[tuple[str, str], list[tuple]] = {}
        for record in records:
            result.records += 1
            try:
                click = parse_record(record)
            except MalformedRecord as exc:
                result.malformed += 1
                event_id = record.get("eventID") if isinstance(record, Mapping) else None
                log.warning("skipping malformed click record %s: %s", event_id, exc)
                continue
            groups.setdefault((click.page, click.shard), []).append(
                (click.seq, click.arrival_ms, click.x, click.y))
        return groups

    def consume(self, records: Iterable[Mapping]) -> ConsumeResult:
        result = ConsumeResult()
        groups = self.group(records, result)
        self.store.count_malformed(result.malformed)
        for (page, shard), clicks in groups.items():
            applied = self.store.apply(page, shard, clicks)
            result.applied += applied.applied
            result.pages[page] = result.pages.get(page, 0) + applied.applied
        return result


def get_consumer() -> HotspotConsumer:
    from chalicelib.hotspots.api import get_store

    return HotspotConsumer(get_store())
