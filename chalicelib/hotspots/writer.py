"""Clicks into Kinesis with PutRecords, retrying only the records that failed.

PutRecords is not all-or-nothing: the call succeeds while single records fail
(`FailedRecordCount`, and an `ErrorCode` such as ProvisionedThroughputExceededException
on each failed entry of `Records`, in request order).  Resending the whole request
would duplicate the records that did get in, so only the failed ones are resent,
after an exponential backoff with full jitter, up to `attempts` calls, and only
while another call (at worst `call_seconds`, the client's timeouts) still fits in
`deadline` seconds: the API answers within 2 s even when Kinesis hangs.  What still
fails is returned with its index and error code: the caller says so (never a
silent loss).  A whole-call error (throttling of the call, a missing stream, a
timeout) counts as every pending record failing on that attempt with that error.
The client should not retry by itself (botocore max_attempts=0): this loop is the
retry, and it knows the deadline.

Calls carry at most 500 records and 5 MiB (partition keys included), the API's
limits.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024


@dataclass
class PutResult:
    accepted: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (index, error code)
    calls: int = 0


def chunks(records: Sequence[tuple[bytes, str]], indexes: Sequence[int]):
    """Runs of `indexes` that fit one PutRecords call."""
    run: list[int] = []
    size = 0
    for i in indexes:
        data, key = records[i]
        n = len(data) + len(key.encode())
        if run and (len(run) == MAX_RECORDS_PER_CALL or size + n > MAX_BYTES_PER_CALL):
            yield run
            run, size = [], 0
        run.append(i)
        size += n
    if run:
        yield run


class ClickWriter:
    def __init__(self, kinesis, stream: str, attempts: int = 4, backoff: float = 0.05,
                 deadline: float = 1.8, call_seconds: float = 1.5,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.kinesis = kinesis
        self.stream = stream
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.deadline = deadline
        self.call_seconds = call_seconds
        self.sleep = sleep
        self.clock = clock

    def _put(self, records, run: list[int]) -> list[tuple[int, str]]:
        """One call; returns the (index, code) of the records that failed."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.kinesis.put_records(StreamName=self.stream, Records=[
                {"Data": records[i][0], "PartitionKey": records[i][1]} for i in run])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            return [(i, code) for i in run]
        except BotoCoreError as exc:  # timeouts, refused connections
            return [(i, type(exc).__name__) for i in run]
        if not resp.get("FailedRecordCount"):
            return []
        return [(i, entry.get("ErrorCode") or "Unknown")
                for i, entry in zip(run, resp["Records"], strict=True) if "ErrorCode" in entry]

    def put(self, records: Sequence[tuple[bytes, str]]) -> PutResult:
        """Write (data, partition key) records; see the module docstring."""
        result = PutResult()
        pending = list(range(len(records)))
        failed: list[tuple[int, str]] = []
        started = self.clock()
        for attempt in range(self.attempts):
            if attempt:
                pause = random.uniform(0, self.backoff * 2 ** (attempt - 1))
                if self.clock() - started + pause + self.call_seconds > self.deadline:
                    break  # no time for another call: answer with what failed
                self.sleep(pause)
            failed = []
            for run in chunks(records, pending):
                result.calls += 1
                failed += self._put(records, run)
            if not failed:
                break
            pending = [i for i, _ in failed]
        result.failed = sorted(failed)
        result.accepted = len(records) - len(failed)
        return result
