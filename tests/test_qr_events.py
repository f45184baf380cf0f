"""`qr.created` through the chosen wiring: PutEvents on the app's bus -> rule ->
SQS queue (DLQ after 5 receives) -> the `qr_created` handler, delivered by the
local event runner as Lambda's SQS event source would; the handler's counts on
GET /qr and the page's data; idempotence; `make run` end to end."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.clients import get_aws_client, reset_clients
from local.events import EventRunner
from local.provision import QR_MAX_RECEIVES
from tests import test_local_stack
from tests.qr_support import post

stack_ports = test_local_stack.stack_ports  # free ports + a data dir for `make run`


@pytest.fixture
def runner(pulse_env):
    import app as pulse_app

    return EventRunner(pulse_app.app, settings=pulse_env).setup()


def queue_url(settings, suffix: str = "") -> str:
    return get_aws_client("sqs").get_queue_url(
        QueueName=settings.qr_events_queue + suffix)["QueueUrl"]


def drain(runner, rounds: int = 5) -> int:
    return sum(runner.deliver_messages() for _ in range(rounds))


def stats(client) -> dict:
    resp = client.http.get("/qr")
    assert resp.status_code == 200
    return json.loads(resp.body)


def test_creation_reaches_the_handler_and_the_stats(app_client, runner):
    assert stats(app_client) == {"domains": [], "recent": []}
    _, a = post(app_client, {"url": "https://shop.example/a"})
    post(app_client, {"url": "https://shop.example/b", "format": "svg"})
    post(app_client, {"url": "https://blog.example/"})
    post(app_client, {"url": "https://shop.example/a"})  # a hit: no new creation, no event
    assert drain(runner) == 3
    got = stats(app_client)
    assert got["domains"] == [{"domain": "shop.example", "count": 2},
                              {"domain": "blog.example", "count": 1}]
    assert [r["domain"] for r in got["recent"]] == [
        "blog.example", "shop.example", "shop.example"]
    assert "shop.example/" not in json.dumps(got)  # anyone may ask: no URL is shown
    assert got["recent"][-1]["id"] == a["id"]


def test_a_redelivered_event_counts_once(app_client, runner, pulse_env):
    post(app_client, {"url": "https://once.example/"})
    sqs = get_aws_client("sqs")
    message = sqs.receive_message(QueueUrl=queue_url(pulse_env), VisibilityTimeout=0)[
        "Messages"][0]
    # EventBridge and SQS deliver at least once: the same event arrives twice.
    sqs.send_message(QueueUrl=queue_url(pulse_env), MessageBody=message["Body"])
    assert drain(runner) == 2
    assert stats(app_client)["domains"] == [{"domain": "once.example", "count": 1}]


def test_malformed_messages_are_dropped_not_retried(app_client, runner, pulse_env):
    sqs = get_aws_client("sqs")
    for body in ("not json", json.dumps({"detail-type": "qr.created", "detail": {"id": 1}}),
                 json.dumps({"detail-type": "something.else", "detail": {}})):
        sqs.send_message(QueueUrl=queue_url(pulse_env), MessageBody=body)
    assert drain(runner) == 3  # handled (skipped), deleted: no poison loop
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url(pulse_env),
                                     AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert stats(app_client) == {"domains": [], "recent": []}


def test_a_failing_handler_is_retried_then_the_event_goes_to_the_dlq(
        app_client, runner, pulse_env, monkeypatch):
    from local import processes

    post(app_client, {"url": "https://doomed.example/"})
    sqs = get_aws_client("sqs")
    # Retry at once instead of after the 5 s visibility timeout.
    sqs.set_queue_attributes(QueueUrl=queue_url(pulse_env),
                             Attributes={"VisibilityTimeout": "0"})
    good_redis = pulse_env.redis_url
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{processes.free_port()}/0")  # nobody
    reset_clients()
    assert drain(runner, rounds=QR_MAX_RECEIVES + 2) == 0
    monkeypatch.setenv("REDIS_URL", good_redis)
    reset_clients()
    dlq = sqs.receive_message(QueueUrl=queue_url(pulse_env, "-dlq"),
                              MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["domain"] for m in dlq] == ["doomed.example"]
    assert drain(runner) == 0 and stats(app_client)["domains"] == []


@pytest.mark.slow
def test_make_run_delivers_qr_created_to_the_handler(stack_ports):
    """`python -m local.stack` (what `make run` runs): create a code over HTTP, see it counted."""
    import signal

    from tests.conftest import http_json
    from tests.qr_support import post_http

    proc = test_local_stack.start_stack(stack_ports)
    try:
        test_local_stack.wait_healthy(stack_ports, proc)
        base = f"http://127.0.0.1:{stack_ports['PULSE_HTTP_PORT']}"
        status, _ = post_http(base, {"url": "https://run.example/hello"})
        assert status == 201
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, got = http_json(base + "/qr")
            if got["domains"]:
                break
            time.sleep(0.3)
        assert got["domains"] == [{"domain": "run.example", "count": 1}]
        assert got["recent"][0]["domain"] == "run.example"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            proc.kill()
