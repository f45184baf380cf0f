"""`qr.created` through the chosen wiring: the item's write -> the table's DynamoDB
stream -> the `qr_item_written` handler -> PutEvents on the app's bus -> rule -> SQS
queue (DLQ after 5 receives) -> the `qr_created` handler, delivered by the local event
runner as Lambda's event sources would; the handler's counts on GET /qr and the page's
data; exactly one event per item when the request dies after the item or a stream
delivery fails; idempotence; `make run` end to end."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.clients import get_aws_client, reset_clients
from local.events import EventRunner
from local.provision import QR_MAX_RECEIVES
from tests import test_local_stack
from tests.qr_support import drain_qr_events, post

stack_ports = test_local_stack.stack_ports  # free ports + a data dir for `make run`


@pytest.fixture
def runner(pulse_env):
    import app as pulse_app

    return EventRunner(pulse_app.app, settings=pulse_env).setup()


def queue_url(settings, suffix: str = "") -> str:
    return get_aws_client("sqs").get_queue_url(
        QueueName=settings.qr_events_queue + suffix)["QueueUrl"]


def queued(settings) -> list[dict]:
    """The `qr.created` events waiting in the rule's queue (left there, visible again)."""
    sqs = get_aws_client("sqs")
    got = sqs.receive_message(QueueUrl=queue_url(settings), MaxNumberOfMessages=10,
                              VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"])["detail"] for m in got]


class PutEventsFault:
    """Fault injection on the stream handler's PutEvents (its background events client):
    the first `failing` calls answer 200 with no entry accepted; later calls go to moto."""

    def __init__(self, failing: int):
        self.failing, self.calls = failing, []
        get_aws_client("events", background=True).meta.events.register(
            "before-call.events.PutEvents", self)

    def __call__(self, params, **_):
        from botocore.awsrequest import AWSResponse

        entries = json.loads(params["body"])["Entries"]
        self.calls.append(len(entries))
        if len(self.calls) > self.failing:
            return None
        return AWSResponse("http://events.injected/", 200, {}, None), {
            "FailedEntryCount": len(entries),
            "Entries": [{"ErrorCode": "InternalFailure"} for _ in entries]}

    def remove(self):
        get_aws_client("events", background=True).meta.events.unregister(
            "before-call.events.PutEvents", self)


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
    assert drain_qr_events(runner) == 3
    got = stats(app_client)
    assert got["domains"] == [{"domain": "shop.example", "count": 2},
                              {"domain": "blog.example", "count": 1}]
    assert [r["domain"] for r in got["recent"]] == [
        "blog.example", "shop.example", "shop.example"]
    assert "shop.example/" not in json.dumps(got)  # anyone may ask: no URL is shown
    assert got["recent"][-1]["created_at"] == a["created_at"]
    assert not any("id" in r for r in got["recent"])  # an id would open the image: the URL


def test_a_dynamic_code_is_a_creation_once_and_its_edits_are_not(app_client, runner,
                                                                 pulse_env):
    status, code = post(app_client, {"dynamic": True, "url": "https://fair.example/day1"})
    assert status == 201, code
    runner.deliver_table_records()
    [event] = queued(pulse_env)
    assert event["dynamic"] is True and event["id"] == code["code"]
    assert event["domain"] == "fair.example" and event["short_url"] == code["short_url"]
    assert drain_qr_events(runner) == 1
    patched = app_client.http.patch(f"/qr/{code['code']}", headers={
        "Content-Type": "application/json"}, body=json.dumps({"target": "https://x.example/"}))
    assert patched.status_code == 200
    assert app_client.http.delete(f"/qr/{code['code']}").status_code == 200
    assert drain_qr_events(runner) == 0  # an edit and a retirement: no new creation
    assert stats(app_client)["domains"] == [{"domain": "fair.example", "count": 1}]


def test_a_redelivered_event_counts_once(app_client, runner, pulse_env):
    post(app_client, {"url": "https://once.example/"})
    runner.deliver_table_records()
    sqs = get_aws_client("sqs")
    message = sqs.receive_message(QueueUrl=queue_url(pulse_env), VisibilityTimeout=0)[
        "Messages"][0]
    # EventBridge and SQS deliver at least once: the same event arrives twice.
    sqs.send_message(QueueUrl=queue_url(pulse_env), MessageBody=message["Body"])
    assert drain_qr_events(runner) == 2
    assert stats(app_client)["domains"] == [{"domain": "once.example", "count": 1}]


def test_malformed_messages_are_dropped_not_retried(app_client, runner, pulse_env):
    sqs = get_aws_client("sqs")
    for body in ("not json", json.dumps({"detail-type": "qr.created", "detail": {"id": 1}}),
                 json.dumps({"detail-type": "something.else", "detail": {}})):
        sqs.send_message(QueueUrl=queue_url(pulse_env), MessageBody=body)
    assert drain_qr_events(runner) == 3  # handled (skipped), deleted: no poison loop
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
    assert drain_qr_events(runner, rounds=QR_MAX_RECEIVES + 2) == 0
    monkeypatch.setenv("REDIS_URL", good_redis)
    reset_clients()
    dlq = sqs.receive_message(QueueUrl=queue_url(pulse_env, "-dlq"),
                              MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["domain"] for m in dlq] == ["doomed.example"]
    assert drain_qr_events(runner) == 0 and stats(app_client)["domains"] == []


def test_an_item_whose_request_died_after_the_write_still_gets_its_event_once(
        app_client, runner, pulse_env):
    """The request's function writes the item and dies before anything else (the kill
    between the item and the event): the stream still brings the event, once."""
    from chalicelib.qr.spec import QrSpec
    from chalicelib.qr.wiring import get_service

    service = get_service()
    spec = QrSpec(url="https://killed.example/after-the-item")
    key = service.store.put_image(spec, b"image bytes")
    entry = service.store.claim(spec, key, time.time(), 3600)  # ...and the function dies
    assert entry is not None
    assert drain_qr_events(runner) == 1
    got = stats(app_client)
    assert got["domains"] == [{"domain": "killed.example", "count": 1}]
    assert [r["domain"] for r in got["recent"]] == ["killed.example"]
    assert drain_qr_events(runner) == 0  # and no second event later


def test_a_request_killed_right_after_its_putitem_still_gets_its_event_once(
        app_client, runner, pulse_env):
    """A fault hook kills POST /qr's function as PutItem returns: the request fails, the
    item is written, and its event arrives once, from the table's stream."""
    class Killed(BaseException):  # not an Exception: nothing in the app catches it
        pass

    def kill(**_):
        raise Killed("the function died after the item")

    ddb = get_aws_client("dynamodb")
    ddb.meta.events.register("after-call.dynamodb.PutItem", kill)
    try:
        with pytest.raises(Killed):
            post(app_client, {"url": "https://killed.example/in-the-route"})
    finally:
        ddb.meta.events.unregister("after-call.dynamodb.PutItem", kill)
    assert drain_qr_events(runner) == 1
    got = stats(app_client)
    assert got["domains"] == [{"domain": "killed.example", "count": 1}]
    assert got["recent"][0]["domain"] == "killed.example"
    assert drain_qr_events(runner) == 0


def test_a_stream_delivery_failing_then_succeeding_gives_one_event_per_item(
        app_client, runner, pulse_env):
    """PutEvents refuses every entry on each attempt of the first delivery: the handler
    raises, the runner delivers the same batch again, and each item's event arrives."""
    urls = [f"https://retry.example/{i}" for i in range(3)]
    ids = [post(app_client, {"url": u})[1]["id"] for u in urls]
    fault = PutEventsFault(failing=4)  # the publisher's 4 attempts of the first delivery
    try:
        assert runner.deliver_table_records() == 0  # failed: nothing delivered
        assert queued(pulse_env) == []
        assert runner.deliver_table_records() == 3  # the same batch, again
    finally:
        fault.remove()
    assert fault.calls == [3, 3, 3, 3, 3]
    assert sorted(d["id"] for d in queued(pulse_env)) == sorted(ids)
    assert drain_qr_events(runner) == 3
    assert stats(app_client)["domains"] == [{"domain": "retry.example", "count": 3}]


def test_a_redelivered_stream_batch_makes_no_second_creation(app_client, runner, pulse_env,
                                                             monkeypatch):
    """A batch whose events were put but whose handler then failed (the function timed
    out after PutEvents) is delivered again and puts them again: the creation log counts
    each creation once."""
    from chalicelib.qr import events as qr_events

    post(app_client, {"url": "https://twice.example/a"})
    post(app_client, {"url": "https://twice.example/b"})
    real = qr_events.publish_item_records
    runs = []

    def dies_after_publishing(records, publisher):
        result = real(records, publisher)
        runs.append(result)
        if len(runs) == 1:
            raise TimeoutError("the function timed out after PutEvents")
        return result

    monkeypatch.setattr(qr_events, "publish_item_records", dies_after_publishing)
    assert runner.deliver_table_records() == 0
    assert runner.deliver_table_records() == 2
    assert [r["events"] for r in runs] == [2, 2]
    assert len(queued(pulse_env)) == 4  # each event put twice
    assert drain_qr_events(runner) == 4
    got = stats(app_client)
    assert got["domains"] == [{"domain": "twice.example", "count": 2}]
    assert len(got["recent"]) == 2


@pytest.mark.slow
def test_make_run_delivers_qr_created_to_the_handler(stack_ports):
    """`python -m local.stack` (what `make run` runs): create a code over HTTP, see it counted."""
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
        test_local_stack.stop_stack(proc)
