"""Create the local stand-ins of the AWS resources in moto's server, idempotently.

Names come from the same settings the app reads, so the app finds them.
In AWS these resources come from Terraform (infra/).
"""
from __future__ import annotations

import json
import logging

from chalicelib.clients import get_aws_client
from chalicelib.qr import events as qr_events
from chalicelib.settings import Settings

log = logging.getLogger("pulse.provision")


def _exists(call, missing_codes: tuple[str, ...]) -> bool:
    from botocore.exceptions import ClientError

    try:
        call()
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in missing_codes:
            return False
        raise


def ensure_bucket(name: str, region: str) -> None:
    s3 = get_aws_client("s3", background=True)
    if not _exists(lambda: s3.head_bucket(Bucket=name), ("404", "NoSuchBucket", "NotFound")):
        kwargs = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **kwargs)
        log.info("created bucket %s", name)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def ensure_table(name: str) -> str:
    """The QR cache table: partition key `pk`, expiry attribute `ttl`, a DynamoDB stream of
    new images (as infra/qr.tf); returns the stream's ARN."""
    ddb = get_aws_client("dynamodb", background=True)
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    if not _exists(lambda: ddb.describe_table(TableName=name), ("ResourceNotFoundException",)):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         StreamSpecification=stream)
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "ttl"})
        log.info("created table %s", name)
    table = ddb.describe_table(TableName=name)["Table"]
    if not table.get("StreamSpecification", {}).get("StreamEnabled"):
        table = ddb.update_table(TableName=name, StreamSpecification=stream)[
            "TableDescription"]
        log.info("enabled the stream of table %s", name)
    return table["LatestStreamArn"]


def ensure_event_bus(name: str) -> str:
    events = get_aws_client("events", background=True)
    if not _exists(lambda: events.describe_event_bus(Name=name), ("ResourceNotFoundException",)):
        events.create_event_bus(Name=name)
        log.info("created event bus %s", name)
    return events.describe_event_bus(Name=name)["Arn"]


def ensure_stream(name: str, shards: int = 2) -> str:
    kinesis = get_aws_client("kinesis", background=True)
    if not _exists(lambda: kinesis.describe_stream_summary(StreamName=name),
                   ("ResourceNotFoundException",)):
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        log.info("created stream %s with %d shards", name, shards)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


# --- qr ---
QR_CREATED_PATTERN = {"source": [qr_events.SOURCE], "detail-type": [qr_events.DETAIL_TYPE]}
# As infra/qr.tf: a message that failed this many receives moves to the DLQ.
QR_MAX_RECEIVES = 5
# Shorter than in AWS (6 x the Lambda timeout there) so a failed local
# delivery is retried within seconds.
QR_LOCAL_VISIBILITY_SECONDS = 5


def ensure_queue(name: str, attributes: dict[str, str] | None = None) -> tuple[str, str]:
    """An SQS queue (created if missing): its URL and ARN."""
    sqs = get_aws_client("sqs", background=True)
    url = sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def ensure_qr_events(settings: Settings) -> dict:
    """The same wiring as infra/qr.tf: rule `qr.created` on the app's bus -> SQS queue
    (redrive to a DLQ after QR_MAX_RECEIVES) that the `qr_created` handler drains."""
    queue = settings.qr_events_queue
    _, dlq_arn = ensure_queue(f"{queue}-dlq", {"MessageRetentionPeriod": str(14 * 86400)})
    url, arn = ensure_queue(queue, {
        "VisibilityTimeout": str(QR_LOCAL_VISIBILITY_SECONDS),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": QR_MAX_RECEIVES})})
    rule = f"{queue}-rule"
    events = get_aws_client("events", background=True)
    rule_arn = events.put_rule(Name=rule, EventBusName=settings.event_bus_name,
                               EventPattern=json.dumps(QR_CREATED_PATTERN),
                               State="ENABLED")["RuleArn"]
    sqs = get_aws_client("sqs", background=True)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                       "Action": "sqs:SendMessage", "Resource": arn,
                       "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
    events.put_targets(Rule=rule, EventBusName=settings.event_bus_name,
                       Targets=[{"Id": "qr-events-queue", "Arn": arn}])
    return {"qr_events_queue": url, "qr_events_dlq_arn": dlq_arn, "qr_created_rule": rule_arn}


def provision(settings: Settings) -> dict:
    """Everything the app expects to find; safe to run on every start."""
    ensure_bucket(settings.qr_bucket, settings.region)
    table_stream_arn = ensure_table(settings.qr_table)
    bus_arn = ensure_event_bus(settings.event_bus_name)
    stream_arn = ensure_stream(settings.click_stream_name)
    qr_wiring = ensure_qr_events(settings)
    return {"bucket": settings.qr_bucket, "table": settings.qr_table,
            "table_stream_arn": table_stream_arn,
            "event_bus_arn": bus_arn, "stream_arn": stream_arn, **qr_wiring}
