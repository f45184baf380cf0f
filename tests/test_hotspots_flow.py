"""Clicks end to end through the local event runner: POST /clicks -> moto's
Kinesis -> the app's own consume_clicks handler -> GET /hotspots; a record that always
fails is skipped after the retry limit and reported on the on-failure queue."""
import json

from chalice import Chalice

from chalicelib.clients import get_aws_client, get_redis
from chalicelib.hotspots.store import MALFORMED_KEY
from local.events import EventRunner

poison_app = Chalice(app_name="poison")


@poison_app.on_kinesis_record(stream="pulse-clicks", batch_size=1,
                              starting_position="TRIM_HORIZON")
def eat(event):
    for record in event:
        if record.data == b"poison":
            raise RuntimeError("this record fails every time")
        get_redis().rpush("poison:eaten", record.data)


def drain(runner, rounds=12):
    return sum(runner.deliver_records() for _ in range(rounds))


def test_clicks_reach_hotspots_through_the_runner_past_a_malformed_record(app_client, pulse_env):
    import app as pulse_app

    runner = EventRunner(pulse_app.app, settings=pulse_env).setup()
    get_aws_client("kinesis").put_record(StreamName=pulse_env.click_stream_name,
                                         Data=b'{"p": "flow", "x": "oops"}', PartitionKey="s")
    clicks = [{"x": 0.6 + (i % 5) * 0.003, "y": 0.4 + (i // 5) * 0.003, "t": 1} for i in range(25)]
    resp = app_client.http.post("/clicks", headers={"Content-Type": "application/json"},
                                body=json.dumps({"page": "flow", "session": "s",
                                                 "clicks": clicks}))
    assert resp.status_code == 202
    assert drain(runner) == 26
    assert int(get_redis().get(MALFORMED_KEY)) == 1
    body = json.loads(app_client.http.get("/hotspots?page=flow").body)
    assert [h["count"] for h in body["hotspots"]] == [25]
    assert body["window"]["clicks"] == 25
    # the runner going over the stream again (a redelivery) changes nothing
    before = get_redis().get("pulse:hs:{flow}:result")
    again = EventRunner(pulse_app.app, settings=pulse_env).setup()
    assert drain(again) == 26
    assert get_redis().get("pulse:hs:{flow}:result") == before


def test_a_batch_failing_every_time_is_skipped_after_the_retry_limit(pulse_env):
    runner = EventRunner(poison_app, settings=pulse_env).setup()
    kinesis = get_aws_client("kinesis")
    for data in (b"a", b"poison", b"b", b"c"):  # one key: one shard, in this order
        kinesis.put_record(StreamName=pulse_env.click_stream_name, Data=data, PartitionKey="k")
    drain(runner)
    assert get_redis().lrange("poison:eaten", 0, -1) == ["a", "b", "c"]
    sqs = get_aws_client("sqs")
    url = sqs.get_queue_url(QueueName=pulse_env.kinesis_failure_queue)["QueueUrl"]
    [msg] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    info = json.loads(msg["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # the first attempt plus kinesis_max_retry_attempts retries, as Lambda counts them
    attempts = info["requestContext"]["approximateInvokeCount"]
    assert attempts == 1 + pulse_env.kinesis_max_retry_attempts
    assert info["KinesisBatchInfo"]["batchSize"] == 1
