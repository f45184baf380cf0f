"""The Kinesis consumer: records -> per-page click windows -> hotspots.

A record is one click, as the writer puts it: JSON {"p": page, "s": session,
"x": 0..1, "y": 0..1, "t": epoch ms}.  A record that is not that (bad base64, bad
JSON, a field missing or out of range) can never succeed, so it is counted
(`pulse:hs:malformed`), logged and skipped: retrying it would only block its shard
until it expires.  Any other failure (Redis down) raises, so Lambda retries the
batch as the event source mapping says (maximum_retry_attempts, bisecting, then the
on-failure queue; deploy/hotspots_override.tf.json).

Per page of the batch: one `HotspotStore.apply` script (idempotent, see store.py),
then the hotspots of the window are computed and saved for that window version.  A
redelivered batch applies nothing; if the hotspots of the current version are
already saved, nothing is computed or written either.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chalicelib.hotspots.compute import find_hotspots
from chalicelib.hotspots.store import Click, HotspotStore

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
    pages: dict[str, int] = field(default_factory=dict)  # page -> hotspots after the batch

    def to_dict(self) -> dict:
        return {"records": self.records, "applied": self.applied,
                "malformed": self.malformed, "pages": self.pages}


def hotspots_of(window: Iterable[Click], since_ms: int, scan_radius: float,
                min_points: int) -> tuple[list[dict], int, int | None, int | None]:
    """(hotspots, clicks used, oldest and newest arrival) of the clicks at or after since_ms."""
    clicks = [c for c in window if c.arrival_ms >= since_ms]
    spots = find_hotspots([(c.x, c.y) for c in clicks], scan_radius, min_points)
    arrivals = [c.arrival_ms for c in clicks]
    return ([h.to_dict() for h in spots], len(clicks),
            min(arrivals) if arrivals else None, max(arrivals) if arrivals else None)


class HotspotConsumer:
    def __init__(self, store: HotspotStore, scan_radius: float, min_points: int,
                 clock=time.time):
        self.store = store
        self.scan_radius = scan_radius
        self.min_points = min_points
        self.clock = clock

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
            saved = self.store.result(page)
            if saved is not None and saved.get("version") == applied.version:
                result.pages[page] = len(saved["hotspots"])
                continue  # a redelivery: these hotspots are already there
            since = applied.newest_ms - self.store.window_ms
            spots, used, oldest, newest = hotspots_of(applied.window, since, self.scan_radius,
                                                      self.min_points)
            self.store.save_result(page, applied.version, {
                "hotspots": spots, "clicks": used, "oldest_ms": oldest, "newest_ms": newest,
                "computed_at": self.clock()})
            result.pages[page] = len(spots)
        return result


def get_consumer() -> HotspotConsumer:
    from chalicelib.hotspots.api import get_store
    from chalicelib.settings import get_settings

    s = get_settings()
    return HotspotConsumer(get_store(), s.hotspots_scan_radius, s.hotspots_min_points)
