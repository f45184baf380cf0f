"""The Kinesis consumer: records -> per-page click windows.

A record is one click, as the writer puts it: JSON {"p": page, "s": session,
"x": 0..1, "y": 0..1, "t": epoch ms}.  A record that is not that (bad base64, bad
JSON, a field missing or out of range) can never succeed, so it is counted
(`pulse:hs:malformed`), logged and skipped: retrying it would only block its shard
until it expires.  Redis down or hung is retried here, with backoff, for up to
`retry_seconds` (the handler keeps it inside the function's timeout): the scripts are
idempotent, and a batch given up on cannot be applied later, because the window has
moved past its sequence numbers by the time anyone could replay it from the
on-failure queue.  An outage of a few seconds must not lose accepted clicks (the fault
drills, bench/fault_drills.py, lost ~3% of a run's clicks that way).  What still
fails raises, so Lambda retries the batch as the event source mapping says
(maximum_retry_attempts, bisecting, then the on-failure queue;
deploy/hotspots_override.tf.json).

Per page of the batch: one `HotspotStore.apply` script (idempotent, see store.py), all
of them pipelined in one round trip.
A redelivered batch applies nothing, so the window and its version stay as they were.

Hotspots are computed from the window by readers (reader.py), once per window version
and cached, not here after every batch: one computation over a 1,000-click window
costs as much as consuming a few thousand clicks, and with batches of 100 the
consumer would spend most of its time recomputing hotspots nobody has asked for yet
(see BENCHMARKS.md).  Pages are read every second or so; batches arrive much more
often under load.
"""
from __future__ import annotations

import binascii
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from chalicelib.hotspots.store import HotspotStore

log = logging.getLogger("pulse.hotspots")
# The json module's C scanner, called directly: json.loads() spends more time around
# it (encoding detection, whitespace regexes) than in it for a 60-byte click.
_scan_json = json.JSONDecoder().scan_once


def _json_object(raw: bytes):
    text = raw.decode()
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # not a JSON value at index 0 (perhaps leading whitespace)
        return json.loads(text)
    return value if end == len(text) else json.loads(text)  # json.loads says what's wrong


class MalformedRecord(ValueError):
    """A record no retry can fix."""


def parse_record(record: Mapping) -> tuple[str, str, str, int, float, float]:
    """One Lambda Kinesis record -> (page, shard, sequence number, arrival ms, x, y), or
    MalformedRecord saying why.  This runs once per click: it is written for speed
    (plain tuples, binascii, one try block; see BENCHMARKS.md)."""
    try:
        kinesis = record["kinesis"]
        seq = kinesis["sequenceNumber"]
        shard = record["eventID"].rpartition(":")[0] or "shard"
        arrival_ms = int(float(kinesis["approximateArrivalTimestamp"]) * 1000)
        data = _json_object(binascii.a2b_base64(kinesis["data"], strict_mode=True))
        page = data["p"]
        x, y = data["x"], data["y"]
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error,
            RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise MalformedRecord(f"unreadable record: {type(exc).__name__}: {exc}") from None
    if type(page) is not str or not page or len(page) > 64 or "{" in page or "}" in page:
        raise MalformedRecord("p (page) is invalid")
    if type(seq) is not str or not seq.isdigit():
        raise MalformedRecord("sequenceNumber is not decimal")
    # type() is: bool (an int subclass) is not a coordinate; the range test is also false
    # for NaN and Infinity, which json lets in
    if (type(x) is float or type(x) is int) and (type(y) is float or type(y) is int) \
            and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0:
        return page, shard, seq, arrival_ms, x, y
    raise MalformedRecord(f"x, y must be numbers from 0 to 1, got {x!r:.30}, {y!r:.30}")


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
    def __init__(self, store: HotspotStore, retry_seconds: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.retry_seconds = retry_seconds
        self.sleep = sleep
        self.clock = clock

    def _retrying(self, step: Callable[[], object], started: float):
        """step(), again after a backoff while Redis is unavailable and time is left."""
        from chalicelib.errors import is_dependency_failure

        pause = 0.1
        while True:
            try:
                return step()
            except Exception as exc:
                if not is_dependency_failure(exc) or \
                        self.clock() - started + pause > self.retry_seconds:
                    raise
                log.warning("click batch: Redis unavailable (%r); retrying in %.1fs", exc,
                            pause)
            self.sleep(pause)
            pause = min(pause * 2, 2.0)

    def group(self, records: Iterable[Mapping],
              result: ConsumeResult) -> dict[tuple[str, str], list[tuple]]:
        """Parse and group by (page, shard), in shard order; malformed ones counted."""
        groups: dict[tuple[str, str], list[tuple]] = {}
        parse = parse_record
        for record in records:
            result.records += 1
            try:
                page, shard, seq, arrival_ms, x, y = parse(record)
            except MalformedRecord as exc:
                result.malformed += 1
                event_id = record.get("eventID") if isinstance(record, Mapping) else None
                log.warning("skipping malformed click record %s: %s", event_id, exc)
                continue
            key = (page, shard)
            group = groups.get(key)
            if group is None:
                groups[key] = group = []
            group.append((seq, arrival_ms, x, y))
        return groups

    def consume(self, records: Iterable[Mapping]) -> ConsumeResult:
        result = ConsumeResult()
        groups = self.group(records, result)
        started = self.clock()
        # apply first: retrying it is idempotent, counting the malformed ones is not
        applied = self._retrying(lambda: self.store.apply_many(
            [(page, shard, clicks) for (page, shard), clicks in groups.items()]), started)
        self._retrying(lambda: self.store.count_malformed(result.malformed), started)
        for (page, _), done in zip(groups, applied, strict=True):
            result.applied += done.applied
            result.pages[page] = result.pages.get(page, 0) + done.applied
        return result


def get_consumer(retry_seconds: float | None = None) -> HotspotConsumer:
    """The consumer over the shared Redis client; `retry_seconds`: how long to retry
    while Redis is unavailable (default HOTSPOTS_CONSUME_RETRY_SECONDS)."""
    from chalicelib.hotspots.api import get_store
    from chalicelib.settings import get_settings

    if retry_seconds is None:
        retry_seconds = get_settings().hotspots_consume_retry_seconds
    return HotspotConsumer(get_store(), retry_seconds=retry_seconds)
