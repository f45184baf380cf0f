"""The Kinesis consumer: records -> per-page click windows.

A record is one click, as POST /clicks writes it (wire.py).  A record that is not
that (bad base64, bad JSON, a field missing or out of range) can never succeed, so it
is counted (`pulse:hs:malformed`), logged and skipped: retrying it would only block its
shard until it expires.  Redis down or hung is retried here, with backoff, for up to
`retry_seconds`, cut to leave WORK_SECONDS of the invocation for the work itself
(`retry_seconds_within`): the scripts are idempotent, and a batch given up on cannot
be applied later, because the window has moved past its sequence numbers by the time
anyone could replay it from the on-failure queue, so without these retries an outage of
a few seconds loses accepted clicks (bench/fault_drills.py measures it).  What still
fails raises, so Lambda retries the batch as the event source mapping says
(maximum_retry_attempts, bisecting, then the on-failure queue;
deploy/hotspots_override.tf.json).

Per page of the batch: one `HotspotStore.apply` script (idempotent, see store.py), all
of them pipelined in one round trip, then one `track` of the pages in the capped index.
A redelivered batch applies nothing, so the window and its version stay as they were;
a click its client sent again (same click id) is dropped and counted as a duplicate.
Checkpoints belong to the stream incarnation the records came from (`StreamTags`).

Hotspots are computed from the window by readers (reader.py), once per window version
and cached, not here after every batch: one computation over a 1,000-click window
costs as much as consuming a few thousand clicks, and with batches of 100 the
consumer would spend most of its time recomputing hotspots nobody has asked for yet
(see BENCHMARKS.md).  Pages are read every second or so; batches arrive much more
often under load.
"""
from __future__ import annotations

import binascii
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from chalicelib import telemetry
from chalicelib.hotspots.store import HotspotStore
from chalicelib.hotspots.wire import MalformedRecord, decode

log = logging.getLogger("pulse.hotspots")
# Of the invocation's remaining time, what the work itself keeps: retries stop before.
WORK_SECONDS = 5.0


def retry_seconds_within(retry_seconds: float, remaining_ms: float) -> float:
    """How long a batch may retry an unavailable Redis: `retry_seconds`, less whatever
    would leave under WORK_SECONDS of the function's timeout (`remaining_ms`)."""
    return max(0.0, min(retry_seconds, remaining_ms / 1000 - WORK_SECONDS))


def parse_record(record: Mapping) -> tuple[str, str, str, str, int, float, float, str, str]:
    """One Lambda Kinesis record -> (page, stream ARN or "", shard, sequence number,
    arrival ms, x, y, viewport class, click id or ""), or MalformedRecord saying why.  This
    runs once per click: it is written for speed (plain tuples, binascii, one try block;
    see BENCHMARKS.md)."""
    try:
        kinesis = record["kinesis"]
        seq = kinesis["sequenceNumber"]
        shard = record["eventID"].rpartition(":")[0] or "shard"
        arrival_ms = int(float(kinesis["approximateArrivalTimestamp"]) * 1000)
        data = binascii.a2b_base64(kinesis["data"], strict_mode=True)
        stream = record.get("eventSourceARN") or ""
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
        raise MalformedRecord(f"unreadable record: {type(exc).__name__}: {exc}") from None
    page, x, y, viewport, click_id = decode(data)
    if type(seq) is not str or not seq.isdigit():
        raise MalformedRecord("sequenceNumber is not decimal")
    return page, stream, shard, seq, arrival_ms, x, y, viewport, click_id


class StreamTags:
    """A short tag per stream incarnation: a hash of the stream's ARN and its creation
    time (DescribeStreamSummary's StreamCreationTimestamp).  The consumer's checkpoints
    are kept per "<tag>:<shardId>", so a stream deleted and created again under the same
    name (locally: moto's stream after every `make run` start), whose sequence numbers
    start over, is read from its start and not measured against the old stream's
    checkpoints.  Tags are kept per container for `max_age` seconds: one
    DescribeStreamSummary per stream per container per `max_age`."""

    def __init__(self, kinesis: Callable[[], object], max_age: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.kinesis = kinesis  # the client, built on first use
        self.max_age = max_age
        self.clock = clock
        self._tags: dict[str, tuple[str, float]] = {}

    def tag(self, stream_arn: str) -> str:
        if not stream_arn:
            return ""
        known = self._tags.get(stream_arn)
        now = self.clock()
        if known is not None and now - known[1] < self.max_age:
            return known[0]
        from botocore.exceptions import ClientError

        try:
            summary = self.kinesis().describe_stream_summary(StreamARN=stream_arn)
        except ClientError as exc:
            # a misconfiguration (AccessDenied): checkpoints per shard id alone, as if no
            # tag, rather than failing every batch; timeouts raise (the batch is retried)
            log.error("DescribeStreamSummary of %s: %s; checkpoints per shard id only",
                      stream_arn, exc.response.get("Error", {}).get("Code"))
            self._tags[stream_arn] = ("", now)
            return ""
        created = summary["StreamDescriptionSummary"]["StreamCreationTimestamp"]
        stamp = created.timestamp() if hasattr(created, "timestamp") else float(created)
        tag = hashlib.sha1(f"{stream_arn}@{stamp!r}".encode()).hexdigest()[:12]
        self._tags[stream_arn] = (tag, now)
        return tag


@dataclass
class ConsumeResult:
    records: int = 0
    applied: int = 0
    malformed: int = 0
    duplicates: int = 0  # clicks resent by their client (a click id seen): dropped
    pages: dict[str, int] = field(default_factory=dict)  # page -> clicks applied

    def to_dict(self) -> dict:
        return {"records": self.records, "applied": self.applied,
                "malformed": self.malformed, "duplicates": self.duplicates,
                "pages": self.pages}


class HotspotConsumer:
    def __init__(self, store: HotspotStore, retry_seconds: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 streams: StreamTags | None = None):
        self.store = store
        self.streams = streams  # None: checkpoints per shard id alone
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
        """Parse and group by (page, stream tag + shard), in shard order; malformed ones
        counted."""
        groups: dict[tuple[str, str], list[tuple]] = {}
        parse = parse_record
        tags: dict[str, str] = {}
        for record in records:
            result.records += 1
            try:
                page, stream, shard, seq, arrival_ms, x, y, viewport, click_id = parse(record)
            except MalformedRecord as exc:
                result.malformed += 1
                event_id = record.get("eventID") if isinstance(record, Mapping) else None
                log.warning("skipping malformed click record %s: %s", event_id, exc)
                continue
            if stream and self.streams is not None:
                tag = tags.get(stream)
                if tag is None:
                    tag = tags[stream] = self.streams.tag(stream)
                if tag:
                    shard = f"{tag}:{shard}"
            key = (page, shard)
            group = groups.get(key)
            if group is None:
                groups[key] = group = []
            group.append((seq, arrival_ms, x, y, viewport, click_id))
        return groups

    def consume(self, records: Iterable[Mapping], replay: bool = False) -> ConsumeResult:
        """Apply a batch.  `replay` (records read again for the on-failure queue, cli.py):
        the click ids alone decide what is new, and the shards' checkpoints stay."""
        result = ConsumeResult()
        groups = self.group(records, result)  # a failed DescribeStreamSummary raises
        started = self.clock()
        # apply first: retrying it is idempotent, counting the malformed ones is not
        applied = self._retrying(lambda: self.store.apply_many(
            [(page, shard, clicks) for (page, shard), clicks in groups.items()],
            replay=replay), started)
        self._retrying(lambda: self.store.count_malformed(result.malformed), started)
        newest: dict[str, int] = {}
        for (page, shard), done in zip(groups, applied, strict=True):
            result.applied += done.applied
            result.duplicates += done.duplicates
            result.pages[page] = result.pages.get(page, 0) + done.applied
            if done.applied:
                at = max(click[1] for click in groups[(page, shard)])
                newest[page] = max(newest.get(page, 0), at)
        # the capped index of pages (store.track): past the cap the least recently
        # clicked pages are dropped
        evicted = self._retrying(lambda: self.store.track(newest), started)
        if evicted:
            log.info("click pages over the cap: dropped %d least recently clicked",
                     len(evicted))
        _batch_metrics(result, groups)
        return result


def _batch_metrics(result: ConsumeResult, groups: dict[tuple[str, str], list[tuple]]) -> None:
    """Clicks applied and malformed, and the batch's age: how long its oldest record waited
    in the stream (what Kinesis's IteratorAge reports for the shard, from our side)."""
    telemetry.count("hotspots", "ClicksApplied", result.applied)
    telemetry.count("hotspots", "ClicksMalformed", result.malformed)
    telemetry.count("hotspots", "ClicksDuplicatesDropped", result.duplicates)
    oldest_ms = min((click[1] for clicks in groups.values() for click in clicks), default=None)
    if oldest_ms is not None:
        telemetry.record("hotspots", "ClicksBatchAgeMs", max(0, time.time() * 1000 - oldest_ms))

