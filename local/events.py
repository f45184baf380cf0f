"""The local event runner: what `chalice local` cannot do (it serves routes only).

It calls the app's own Chalice handler functions, with the event shapes Lambda
sends, for:
- `@app.schedule`: fired on their rate (and, for the demo, once at start);
- `@app.on_cw_event`: a rule with the handler's event pattern on the DEFAULT
  bus in moto (where Chalice subscribes these handlers in AWS, aws/chalice#1755),
  targeting an SQS queue, so moto's real rule matching decides which events
  reach the handler; the runner drains the queue into the handler;
- `@app.on_sqs_message`: the handler's queue (created by local/provision.py, as
  Terraform creates it in AWS) drained in batches of its `batch_size`, in
  Lambda's SQS event shape; a batch is deleted when the handler returns, and
  left to become visible again when it raises, so SQS's redrive policy moves
  a message that keeps failing to its dead-letter queue, as in AWS;
- `@app.on_kinesis_record`: records read from moto's Kinesis shard by shard
  and delivered in batches of the handler's `batch_size`; a failing batch is
  retried up to `kinesis_max_retry_attempts` times (the event source mapping's
  maximum_retry_attempts in AWS, deploy/hotspots_override.tf.json), then skipped
  and described on the SQS queue `kinesis_failure_queue`, as Lambda's on-failure
  destination does (Lambda also bisects the batch first; this runner does not);
- `@app.on_dynamodb_record`: the records of the table's DynamoDB stream in moto (the
  table named in the handler's stream ARN: moto's stream label is only known once the
  table exists), shard by shard in batches of the handler's `batch_size`, in Lambda's
  DynamoDB Streams event shape; a failing batch is delivered again from the same
  place until it succeeds, as Lambda does by default for a stream (until the records
  expire).

    python -m local.events [--app-dir DIR] [--no-fire-on-start] [--fire SCHEDULE]

Its settings are the app's (chalicelib.settings): with none set, the stack that
`make run` started on the PULSE_*_PORT(S) ports.  `--fire` with a name that is
no schedule exits 2 with one line naming the schedules.
"""
from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.clients import get_aws_client
from chalicelib.settings import Settings, get_settings

log = logging.getLogger("pulse.events")

ACCOUNT = "123456789012"  # moto's default account
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression) -> float:
    """Seconds between runs of a `rate(...)` schedule."""
    text = expression if isinstance(expression, str) else expression.to_string()
    match = _RATE.match(text.strip())
    if not match:
        raise ValueError(f"the local runner supports rate(...) schedules only, got {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def load_app(app_dir: str, module: str = "app"):
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    return importlib.import_module(module).app


def _context(name: str, timeout_s: int = 300):
    from chalice.local import LambdaContext

    return LambdaContext(name, memory_size=512, max_runtime_ms=timeout_s * 1000)


@dataclass
class _Schedule:
    name: str
    interval: float
    next_due: float


@dataclass
class _Shard:
    stream: str
    stream_arn: str
    shard_id: str
    iterator: str | None
    last_sequence: str | None = None
    failures: int = 0  # consecutive failed deliveries of the current batch


@dataclass
class EventRunner:
    app: Any
    settings: Settings = field(default_factory=get_settings)
    clock: Callable[[], float] = time.time
    prefix: str = "pulse-local"
    retry_backoff: float = 1.0
    _schedules: list[_Schedule] = field(default_factory=list)
    _queues: dict[str, str] = field(default_factory=dict)
    _shards: dict[str, list[_Shard]] = field(default_factory=dict)
    _batch_sizes: dict[str, int] = field(default_factory=dict)
    _sqs_handlers: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    _table_shards: dict[str, list[_Shard]] = field(default_factory=dict)

    # -- discovery -------------------------------------------------------
    def _sources(self, kind: str) -> list:
        return [s for s in self.app.event_sources if type(s).__name__ == kind]

    def setup(self, fire_on_start: bool = False) -> EventRunner:
        now = self.clock()
        for src in self._sources("ScheduledEventConfig"):
            interval = rate_seconds(src.schedule_expression)
            self._schedules.append(_Schedule(src.name, interval, now if fire_on_start
                                             else now + interval))
        for src in self._sources("CloudWatchEventConfig"):
            self._queues[src.name] = self._route_rule_to_queue(src.name, src.event_pattern)
        for src in self._sources("SQSEventConfig"):
            self._sqs_handlers[src.name] = self._queue_of(src.queue, src.queue_arn,
                                                          src.batch_size)
        for src in self._sources("KinesisEventConfig"):
            self._shards[src.name] = self._open_shards(src.stream, src.starting_position)
            self._batch_sizes[src.name] = src.batch_size
        for src in self._sources("DynamoDBEventConfig"):
            self._table_shards[src.name] = self._open_table_shards(src.stream_arn,
                                                                   src.starting_position)
            self._batch_sizes[src.name] = src.batch_size
        return self

    def _open_table_shards(self, stream_arn: str, starting_position: str) -> list[_Shard]:
        """The shards of the DynamoDB stream of the table `stream_arn` names, in moto."""
        table = stream_arn.split(":table/", 1)[1].split("/stream", 1)[0]
        arn = get_aws_client("dynamodb", background=True).describe_table(
            TableName=table)["Table"]["LatestStreamArn"]
        streams = get_aws_client("dynamodbstreams", background=True)
        shards = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                            ShardIteratorType=starting_position)
            shards.append(_Shard(table, arn, shard["ShardId"], it["ShardIterator"]))
        return shards

    def _route_rule_to_queue(self, name: str, pattern: dict) -> str:
        """Rule (the handler's pattern, on the app's bus) -> SQS queue the runner drains."""
        from local.provision import ensure_queue

        events = get_aws_client("events", background=True)
        queue_name = f"{self.prefix}-{name}"
        url, arn = ensure_queue(queue_name, {"VisibilityTimeout": "5"})
        bus = "default"  # where Chalice puts on_cw_event rules in AWS (aws/chalice#1755)
        events.put_rule(Name=queue_name, EventBusName=bus, EventPattern=json.dumps(pattern),
                        State="ENABLED")
        events.put_targets(Rule=queue_name, EventBusName=bus,
                           Targets=[{"Id": "local-runner", "Arn": arn}])
        return url

    def _queue_of(self, name: str | None, arn: str | None, batch_size: int
                  ) -> tuple[str, str, int]:
        sqs = get_aws_client("sqs", background=True)
        name = name or arn.rsplit(":", 1)[1]
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        return url, arn, batch_size

    def _open_shards(self, stream: str, starting_position: str) -> list[_Shard]:
        kinesis = get_aws_client("kinesis", background=True)
        desc = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
        shards = []
        for shard in desc["Shards"]:
            it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                            ShardIteratorType=starting_position)["ShardIterator"]
            shards.append(_Shard(stream, desc["StreamARN"], shard["ShardId"], it))
        return shards

    def _invoke(self, name: str, event: dict) -> Any:
        return self.app.handler_map[name](event, _context(name))

    # -- schedules -------------------------------------------------------
    def fire_schedule(self, name: str) -> Any:
        now = datetime.now(UTC)
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": ACCOUNT,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": self.settings.region,
            "resources": [f"arn:aws:events:{self.settings.region}:{ACCOUNT}:rule/{name}"],
            "detail": {},
        }
        log.info("schedule %s: firing", name)
        return self._invoke(name, event)

    def run_due_schedules(self) -> int:
        fired = 0
        for sched in self._schedules:
            if self.clock() >= sched.next_due:
                sched.next_due = self.clock() + sched.interval
                try:
                    self.fire_schedule(sched.name)
                except Exception:  # a failed run waits for its next turn, as in Lambda
                    log.exception("schedule %s failed", sched.name)
                fired += 1
        return fired

    # -- EventBridge -----------------------------------------------------
    def deliver_events(self, wait_seconds: int = 0) -> int:
        """Drain each rule's queue into its handler; failed events stay queued for a retry."""
        sqs = get_aws_client("sqs", background=True)
        delivered = 0
        for name, url in self._queues.items():
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=wait_seconds).get("Messages", [])
            for msg in messages:
                event = json.loads(msg["Body"])
                # moto's SQS copy of the event omits `account`, which real
                # EventBridge always sends and Chalice's event object requires.
                event.setdefault("account", ACCOUNT)
                try:
                    self._invoke(name, event)
                except Exception:
                    log.exception("event handler %s failed; the event will be retried", name)
                    continue
                sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
                delivered += 1
        return delivered

    # -- SQS -------------------------------------------------------------
    def deliver_messages(self, wait_seconds: int = 0) -> int:
        """One batch per SQS handler: deleted on success, left to be retried on failure."""
        sqs = get_aws_client("sqs", background=True)
        delivered = 0
        for name, (url, arn, batch_size) in self._sqs_handlers.items():
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(batch_size, 10),
                WaitTimeSeconds=wait_seconds, AttributeNames=["All"],
                MessageAttributeNames=["All"]).get("Messages", [])
            if not messages:
                continue
            try:
                self._invoke(name, self._sqs_event(arn, messages))
            except Exception:
                log.exception("sqs handler %s failed; the batch becomes visible again", name)
                continue
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)])
            delivered += len(messages)
        return delivered

    def _sqs_event(self, queue_arn: str, messages: list[dict]) -> dict:
        return {"Records": [{
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.settings.region,
        } for m in messages]}

    def _shard_pages(self, client, shards_by_handler: dict[str, list[_Shard]]):
        """(handler, shard, get_records page) for each open shard of each handler, one batch
        of the handler's size each, read when the loop reaches it (Kinesis and DynamoDB
        Streams alike)."""
        for name, shards in shards_by_handler.items():
            for shard in shards:
                if shard.iterator is None:  # shard closed
                    continue
                yield name, shard, client.get_records(ShardIterator=shard.iterator,
                                                      Limit=self._batch_sizes[name])

    # -- Kinesis ---------------------------------------------------------
    def deliver_records(self) -> int:
        """One batch per shard per handler; a failing batch is retried from the same place."""
        kinesis = get_aws_client("kinesis", background=True)
        delivered = 0
        for name, shard, page in self._shard_pages(kinesis, self._shards):
            records = page["Records"]
            if records:
                try:
                    self._invoke(name, self._kinesis_event(shard, records))
                except Exception:
                    shard.failures += 1
                    limit = self.settings.kinesis_max_retry_attempts
                    if shard.failures <= limit:
                        log.exception("kinesis handler %s failed on %s (retry %d of %d "
                                      "next)", name, shard.shard_id, shard.failures, limit)
                        shard.iterator = self._iterator_after(
                            kinesis, shard, "StartingSequenceNumber", StreamName=shard.stream)
                        continue
                    log.exception("kinesis handler %s failed on %s %d times: skipping "
                                  "%d records to the on-failure queue", name,
                                  shard.shard_id, shard.failures, len(records))
                    self._send_to_failure_queue(name, shard, records)
                else:
                    delivered += len(records)
                shard.failures = 0
                shard.last_sequence = records[-1]["SequenceNumber"]
            shard.iterator = page.get("NextShardIterator")
        return delivered

    def _send_to_failure_queue(self, name: str, shard: _Shard, records: list[dict]) -> None:
        """What Lambda's on-failure destination receives: where the batch was, not its data."""
        sqs = get_aws_client("sqs", background=True)
        url = sqs.create_queue(QueueName=self.settings.kinesis_failure_queue)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": name,
                               "condition": "RetryAttemptsExhausted",
                               "approximateInvokeCount": shard.failures},
            "timestamp": datetime.now(UTC).isoformat(),
            "KinesisBatchInfo": {
                "shardId": shard.shard_id, "streamArn": shard.stream_arn,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "batchSize": len(records)}}))

    @staticmethod
    def _iterator_after(client, shard: _Shard, sequence_param: str, **stream: str) -> str:
        """An iterator just past the shard's last delivered record (its start before any), so
        a failed batch is read again.  Kinesis and DynamoDB Streams name the stream and the
        sequence number differently: `stream` and `sequence_param` give their words."""
        if shard.last_sequence is None:
            kind = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            kind = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                    sequence_param: shard.last_sequence}
        return client.get_shard_iterator(**stream, ShardId=shard.shard_id,
                                         **kind)["ShardIterator"]

    def _kinesis_event(self, shard: _Shard, records: list[dict]) -> dict:
        return {"Records": [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": r["PartitionKey"],
                "sequenceNumber": r["SequenceNumber"],
                "data": base64.b64encode(r["Data"]).decode(),
                "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard.shard_id}:{r['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/pulse-local",
            "awsRegion": self.settings.region,
            "eventSourceARN": shard.stream_arn,
        } for r in records]}

    # -- DynamoDB Streams ------------------------------------------------
    def deliver_table_records(self) -> int:
        """One batch per shard per handler; a failing batch is delivered again from the
        same place on the next call, until it succeeds."""
        streams = get_aws_client("dynamodbstreams", background=True)
        delivered = 0
        for name, shard, page in self._shard_pages(streams, self._table_shards):
            records = page["Records"]
            if records:
                try:
                    self._invoke(name, self._dynamodb_event(shard, records))
                except Exception:
                    shard.failures += 1
                    log.exception("dynamodb handler %s failed on %s (attempt %d); the "
                                  "batch is delivered again", name, shard.shard_id,
                                  shard.failures)
                    shard.iterator = self._iterator_after(
                        streams, shard, "SequenceNumber", StreamArn=shard.stream_arn)
                    continue
                delivered += len(records)
                shard.failures = 0
                shard.last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
            shard.iterator = page.get("NextShardIterator")
        return delivered

    def _dynamodb_event(self, shard: _Shard, records: list[dict]) -> dict:
        def record(r: dict) -> dict:
            body = dict(r["dynamodb"])
            created = body.get("ApproximateCreationDateTime")
            if isinstance(created, datetime):  # Lambda sends epoch seconds
                body["ApproximateCreationDateTime"] = int(created.timestamp())
            return {"eventID": r["eventID"], "eventName": r["eventName"],
                    "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                    "awsRegion": self.settings.region, "dynamodb": body,
                    "eventSourceARN": shard.stream_arn}
        return {"Records": [record(r) for r in records]}

    # -- loop ------------------------------------------------------------
    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.25) -> None:
        """Schedules, events and records each on their own thread, like separate Lambdas."""
        def loop(step: Callable[[], int]) -> None:
            while not stop.is_set():
                try:
                    busy = step()
                except Exception:
                    log.exception("event runner step failed")
                    busy = 0
                    stop.wait(self.retry_backoff)
                if not busy:
                    stop.wait(idle_sleep)

        threads = [threading.Thread(target=loop, args=(step,), daemon=True)
                   for step in (self.run_due_schedules, self.deliver_events,
                                self.deliver_messages, self.deliver_records,
                                self.deliver_table_records)]
        for t in threads:
            t.start()
        stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", default=os.getcwd())
    parser.add_argument("--no-fire-on-start", action="store_true",
                        help="wait a full interval before the first scheduled run")
    parser.add_argument("--fire", metavar="NAME", help="fire one schedule now and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from chalicelib.telemetry import use_json_lines

    use_json_lines(logging.getLogger())  # the runner's lines are JSON, as the app's are
    logging.getLogger("botocore").setLevel(logging.WARNING)
    from chalicelib.settings import SettingsError

    try:
        settings = get_settings()  # before app.py, which reads them at import
    except SettingsError as exc:
        print(f"local.events: {exc}", file=sys.stderr)
        return 2
    if settings.stage == "local":  # moto's server: never a developer's own credentials
        from local.stack import use_local_aws_credentials

        use_local_aws_credentials()
    runner = EventRunner(load_app(args.app_dir), settings=settings)
    if args.fire:
        names = [s.name for s in runner._sources("ScheduledEventConfig")]
        if args.fire not in names:
            print(f"local.events: no schedule {args.fire!r}; the schedules are "
                  f"{', '.join(names) or 'none'}", file=sys.stderr)
            return 2
        print(json.dumps(runner.fire_schedule(args.fire), default=str))
        return 0
    runner.setup(fire_on_start=not args.no_fire_on_start)
    log.info("schedules: %s; event rules: %s; sqs consumers: %s; kinesis consumers: %s; "
             "dynamodb stream consumers: %s",
             [s.name for s in runner._schedules] or "none", list(runner._queues) or "none",
             list(runner._sqs_handlers) or "none", list(runner._shards) or "none",
             list(runner._table_shards) or "none")
    stop = threading.Event()
    try:
        runner.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
