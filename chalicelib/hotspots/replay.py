"""Replay of click batches the consumer gave up on, from the Kinesis on-failure queue.

When a batch keeps failing (Redis down longer than the consumer's retries, for every
retry of the event source mapping), Lambda skips it and sends its on-failure
destination a description of where it was, not its data:

    {"KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
                          "streamArn", "batchSize", ...}, "timestamp": ..., ...}

(the local event runner writes the same to KINESIS_FAILURE_QUEUE).  `replay` reads those
records again from the stream (GetShardIterator AT_SEQUENCE_NUMBER, then GetRecords up
to the end sequence number) and applies them with `HotspotConsumer.consume(...,
replay=True)`: the shard's checkpoint, which later batches have moved past, is not
consulted, and the click ids decide what is new, so a batch replayed twice (or one
whose clicks partly got in) counts each click once.  The queue message is deleted
once its batch is applied.

The stream holds records for its retention period (24 h by default, up to 365 days at
a cost); a batch whose records are gone, or whose stream was deleted and created again
since (a new stream with the same ARN and other records), cannot be replayed: it is
reported as lost and its message left in the queue (it expires with the queue's
retention, 14 days in infra/hotspots.tf).
"""
from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

log = logging.getLogger("pulse.hotspots")


@dataclass
class BatchReplay:
    shard: str
    start: str
    end: str
    records: int = 0  # read again from the stream
    applied: int = 0  # clicks that were new
    duplicates: int = 0  # clicks already counted (by their id)
    lost: str | None = None  # why the batch could not be replayed

    def to_dict(self) -> dict:
        return {"shard": self.shard, "start": self.start, "end": self.end,
                "records": self.records, "applied": self.applied,
                "duplicates": self.duplicates, "lost": self.lost}


@dataclass
class ReplayResult:
    batches: list[BatchReplay] = field(default_factory=list)
    unreadable: int = 0  # messages that are no Kinesis batch description (left queued)

    @property
    def lost(self) -> int:
        return sum(1 for b in self.batches if b.lost)

    def to_dict(self) -> dict:
        return {"batches": [b.to_dict() for b in self.batches], "lost": self.lost,
                "unreadable": self.unreadable,
                "applied": sum(b.applied for b in self.batches)}


def _when(text: str | None) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


class Replayer:
    def __init__(self, sqs, queue_url: str, kinesis, consumer,
                 log_line: Callable[[str], None] = log.info):
        self.sqs, self.queue_url = sqs, queue_url
        self.kinesis, self.consumer = kinesis, consumer
        self.log_line = log_line

    def run(self, max_messages: int = 1000) -> ReplayResult:
        """Replay every batch the queue describes (up to max_messages)."""
        result = ReplayResult()
        self._keep: list[str] = []  # receipt handles of messages left in the queue
        seen = 0
        while seen < max_messages:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, max_messages - seen),
                VisibilityTimeout=300, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                break
            for message in messages:
                seen += 1
                self._one(message, result)
        for handle in self._keep:  # hidden while this run reads on; visible for the next
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle,
                                               VisibilityTimeout=0)
        return result

    def _one(self, message: dict, result: ReplayResult) -> None:
        try:
            body = json.loads(message["Body"])
            info = body["KinesisBatchInfo"]
            batch = BatchReplay(info["shardId"], str(info["startSequenceNumber"]),
                                str(info["endSequenceNumber"]))
            arn = info["streamArn"]
        except (KeyError, TypeError, ValueError) as exc:
            result.unreadable += 1
            self._keep.append(message["ReceiptHandle"])
            self.log_line(f"skipped a message that is no Kinesis batch: {exc!r}")
            return
        result.batches.append(batch)
        batch.lost = self._replay(arn, _when(body.get("timestamp")), batch)
        if batch.lost:
            self._keep.append(message["ReceiptHandle"])
            self.log_line(f"{batch.shard} {batch.start}..{batch.end}: lost: {batch.lost}")
            return
        self.sqs.delete_message(QueueUrl=self.queue_url,
                                ReceiptHandle=message["ReceiptHandle"])
        self.log_line(f"{batch.shard} {batch.start}..{batch.end}: {batch.records} records, "
                      f"{batch.applied} clicks applied, {batch.duplicates} already counted")

    def _replay(self, arn: str, failed_at: float | None, batch: BatchReplay) -> str | None:
        """Apply the batch; None, or why it cannot be replayed."""
        from botocore.exceptions import ClientError

        try:
            summary = self.kinesis.describe_stream_summary(StreamARN=arn)[
                "StreamDescriptionSummary"]
            created = summary["StreamCreationTimestamp"].timestamp()
            if failed_at is not None and created > failed_at:
                return "the stream was created again after the batch failed"
            # by name (the ARN's last part): moto's iterators from StreamARN lose the stream
            it = self.kinesis.get_shard_iterator(
                StreamName=arn.rsplit("/", 1)[1], ShardId=batch.shard,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                StartingSequenceNumber=batch.start)["ShardIterator"]
        except ClientError as exc:
            return f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message')}"
        start, end = int(batch.start), int(batch.end)
        records: list[dict] = []
        while it:
            page = self.kinesis.get_records(ShardIterator=it, Limit=1000)
            got = [r for r in page["Records"] if start <= int(r["SequenceNumber"]) <= end]
            records += got
            if not page["Records"] or int(page["Records"][-1]["SequenceNumber"]) >= end:
                break
            it = page.get("NextShardIterator")
        if not records or records[0]["SequenceNumber"] != batch.start:
            return "the stream no longer holds the batch's first record (past its retention)"
        batch.records = len(records)
        done = self.consumer.consume([self._lambda_record(arn, batch.shard, r)
                                      for r in records], replay=True)
        batch.applied, batch.duplicates = done.applied, done.duplicates
        return None

    @staticmethod
    def _lambda_record(arn: str, shard: str, r: dict) -> dict:
        """A record as Lambda delivers it to the consumer."""
        return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                            "sequenceNumber": r["SequenceNumber"],
                            "data": base64.b64encode(r["Data"]).decode(),
                            "approximateArrivalTimestamp":
                                r["ApproximateArrivalTimestamp"].timestamp()},
                "eventSource": "aws:kinesis", "eventID": f"{shard}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record", "eventSourceARN": arn}
