"""Clicks exactly once: a click resent by its client (after a 503, or after a
PutRecords that got in but whose answer timed out) is counted once; checkpoints belong
to the stream they came from, so clicks on a stream created again are all counted.
Through the app's routes, moto's Kinesis, the local event runner and a real Redis."""
import json
import time

import pytest

from chalicelib.clients import get_aws_client, get_redis
from chalicelib.hotspots import wiring
from chalicelib.hotspots.store import ids_key, page_keys
from local.events import EventRunner
from tests import test_local_stack

stack_ports = test_local_stack.stack_ports  # free ports + a data dir for `make run`

HEADERS = {"Content-Type": "application/json"}


def post(client, body):
    resp = client.http.post("/clicks", headers=HEADERS, body=json.dumps(body))
    return resp.status_code, json.loads(resp.body)


def clicks(n, with_ids=True, first=0):
    now = int(time.time() * 1000)
    out = [{"x": 0.1 + (i % 10) * 0.05, "y": 0.2 + (i // 10) * 0.05, "t": now + i}
           for i in range(first, first + n)]
    if with_ids:
        for i, c in enumerate(out, start=first):
            c["id"] = f"click-{i}"
    return out


def drain(runner, rounds=10):
    return sum(runner.deliver_records() for _ in range(rounds))


def window(page):
    return get_redis().llen(page_keys(page)[0])


def stream_count(settings):
    kinesis = get_aws_client("kinesis")
    n = 0
    for shard in kinesis.list_shards(StreamName=settings.click_stream_name)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=settings.click_stream_name,
                                        ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        n += len(kinesis.get_records(ShardIterator=it, Limit=10000)["Records"])
    return n


class AnswerLost:
    """Fault injection: PutRecords reaches moto's Kinesis (the records are in) and then its
    answer is lost, as a read timeout loses it, on the first `times` calls."""

    def __init__(self, kinesis, times):
        self.times, self.calls = times, 0
        kinesis.meta.events.register("after-call.kinesis.PutRecords", self.lose)

    def lose(self, **_):
        from botocore.exceptions import ReadTimeoutError

        self.calls += 1
        if self.calls <= self.times:
            raise ReadTimeoutError(endpoint_url="http://kinesis (answer lost)")


@pytest.fixture
def runner(app_client, pulse_env):
    import app as pulse_app

    wiring._stream_tags = None  # a cold container: no stream tag kept from another test
    return EventRunner(pulse_app.app, settings=pulse_env).setup()


@pytest.mark.parametrize("session", ["tab-1", None])
def test_clicks_resent_after_a_lost_put_records_answer_count_once(app_client, runner,
                                                                   pulse_env, session):
    """Every PutRecords of the first request gets in but answers with a timeout: the
    route says 503 naming every click; the client sends them again with the same ids."""
    batch = clicks(40)
    faults = AnswerLost(wiring.get_writer().kinesis, times=100)
    body = {"page": "resend", "session": session, "clicks": batch}
    status, answer = post(app_client, body)
    assert status == 503 and [f["index"] for f in answer["failed"]] == list(range(40))
    faults.times = 0
    assert post(app_client, body) == (202, {"accepted": 40, "page": "resend"})
    # every call got in: the route's own retries and the client's resend (at least; under
    # load a real read timeout may add more)
    assert faults.calls >= 2 and stream_count(pulse_env) >= 40 * faults.calls
    drain(runner)
    assert window("resend") == 40
    got = json.loads(app_client.http.get("/hotspots?page=resend").body)
    assert got["window"]["clicks"] == 40


def test_a_session_resending_clicks_without_ids_counts_them_once(app_client, runner):
    """A client that sends no ids but a session gets ids derived from the click itself,
    so its resend after a 503 is the same clicks."""
    batch = clicks(25, with_ids=False)
    faults = AnswerLost(wiring.get_writer().kinesis, times=100)
    assert post(app_client, {"page": "noid", "session": "s", "clicks": batch})[0] == 503
    faults.times = 0
    assert post(app_client, {"page": "noid", "session": "s", "clicks": batch})[0] == 202
    drain(runner)
    assert window("noid") == 25
    # distinct clicks are all counted, and the ids kept are bounded by the window
    assert post(app_client, {"page": "noid", "session": "s",
                             "clicks": clicks(5, with_ids=False, first=100)})[0] == 202
    drain(runner)
    assert window("noid") == 30
    assert get_redis().zcard(ids_key("noid")) == 30
    assert 0 < get_redis().pttl(ids_key("noid")) <= 2 * 600 * 1000


def test_a_stream_created_again_starts_fresh_and_every_click_is_counted(
        app_client, runner, pulse_env):
    """Redis keeps the checkpoints while the stream is created again under the same name
    (a `make run` restart: moto starts empty; in AWS a stream deleted and created again):
    its sequence numbers start over, and its clicks must still count."""
    assert post(app_client, {"page": "again", "session": "s", "clicks": clicks(30)})[0] == 202
    drain(runner)
    assert window("again") == 30
    kinesis = get_aws_client("kinesis")
    kinesis.delete_stream(StreamName=pulse_env.click_stream_name)
    from local.provision import ensure_stream

    ensure_stream(pulse_env.click_stream_name)
    fresh = EventRunner(runner.app, settings=pulse_env).setup()  # the stack started again
    wiring._stream_tags = None  # a new container: its runner process is new
    assert post(app_client, {"page": "again", "session": "s",
                             "clicks": clicks(3, first=30)})[0] == 202
    assert drain(fresh) == 3
    assert window("again") == 33


def test_a_warm_consumer_notices_a_new_stream_within_the_tag_age(app_client, runner,
                                                                 pulse_env):
    assert post(app_client, {"page": "warm", "session": "s", "clicks": clicks(10)})[0] == 202
    drain(runner)
    kinesis = get_aws_client("kinesis")
    kinesis.delete_stream(StreamName=pulse_env.click_stream_name)
    from local.provision import ensure_stream

    ensure_stream(pulse_env.click_stream_name)
    tags = wiring.get_stream_tags()
    tags.clock = lambda: time.monotonic() + tags.max_age  # the kept tag has aged out
    fresh = EventRunner(runner.app, settings=pulse_env).setup()
    assert post(app_client, {"page": "warm", "session": "s",
                             "clicks": clicks(4, first=10)})[0] == 202
    drain(fresh)
    assert window("warm") == 14


def outage(monkeypatch, pulse_env):
    """Redis unreachable for the consumer, with no in-invocation retry: every delivery of a
    batch fails until the runner skips it to the on-failure queue."""
    from chalicelib.clients import reset_clients
    from local import processes

    monkeypatch.setenv("HOTSPOTS_CONSUME_RETRY_SECONDS", "0")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{processes.free_port()}/0")  # nobody
    reset_clients()

    def over():
        monkeypatch.setenv("REDIS_URL", pulse_env.redis_url)
        reset_clients()
    return over


def failure_queue(settings):
    sqs = get_aws_client("sqs")
    url = sqs.get_queue_url(QueueName=settings.kinesis_failure_queue)["QueueUrl"]
    return sqs, url


def test_replay_after_an_outage_longer_than_the_retries_counts_exactly_the_accepted_clicks(
        app_client, runner, pulse_env, monkeypatch, capsys):
    from chalicelib.hotspots import cli

    assert post(app_client, {"page": "outage", "session": "a",
                             "clicks": clicks(20)})[0] == 202
    over = outage(monkeypatch, pulse_env)
    drain(runner, rounds=pulse_env.kinesis_max_retry_attempts + 2)  # skipped after retries
    over()
    sqs, url = failure_queue(pulse_env)
    [msg] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    info = json.loads(msg["Body"])["KinesisBatchInfo"]
    assert info["batchSize"] >= 20  # more when a PutRecords timed out under load and got in
    # the consumer goes on after the skipped batch: later clicks count, the 20 do not
    assert post(app_client, {"page": "outage", "session": "a",
                             "clicks": clicks(5, first=20)})[0] == 202
    drain(runner)
    assert window("outage") == 5
    assert cli.main(["replay"]) == 0
    assert "1 batches, 20 clicks applied, 0 lost" in capsys.readouterr().out
    assert window("outage") == 25
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    # the same batch described again (a replay that died before deleting its message):
    # its clicks are counted once
    sqs.send_message(QueueUrl=url, MessageBody=msg["Body"])
    assert cli.main(["replay", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["batches"][0]["records"] == info["batchSize"]
    assert got["batches"][0]["duplicates"] == info["batchSize"]
    assert got["batches"][0]["applied"] == 0
    assert window("outage") == 25
    hotspots = json.loads(app_client.http.get("/hotspots?page=outage").body)
    assert hotspots["window"]["clicks"] == 25


def test_a_batch_the_stream_no_longer_holds_is_reported_lost_and_kept(
        app_client, runner, pulse_env, monkeypatch, capsys):
    from chalicelib.hotspots import cli

    assert post(app_client, {"page": "gone", "session": "a", "clicks": clicks(3)})[0] == 202
    over = outage(monkeypatch, pulse_env)
    drain(runner, rounds=pulse_env.kinesis_max_retry_attempts + 2)
    over()
    # the stream is deleted and created again: the batch's records are gone with it
    time.sleep(0.01)
    get_aws_client("kinesis").delete_stream(StreamName=pulse_env.click_stream_name)
    from local.provision import ensure_stream

    ensure_stream(pulse_env.click_stream_name)
    assert cli.main(["replay"]) == 2
    out = capsys.readouterr().out
    assert "lost: the stream was created again" in out and "1 lost" in out
    assert window("gone") == 0
    sqs, url = failure_queue(pulse_env)
    assert len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]) == 1


def window_clicks_over_http(base, page, want, timeout=45):
    from tests.conftest import http_json

    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        try:
            status, body = http_json(f"{base}/hotspots?page={page}")
            got = body["window"]["clicks"] if status == 200 else None
        except OSError:
            pass
        if got == want:
            return got
        time.sleep(0.3)
    return got


def post_http(base, body):
    import urllib.request

    req = urllib.request.Request(f"{base}/clicks", data=json.dumps(body).encode(),
                                 headers=HEADERS, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


@pytest.mark.slow
def test_clicks_after_a_make_run_restart_are_all_counted(stack_ports):
    """`make run` twice with the same data directory: Redis keeps the checkpoints (its
    append-only file) while moto's stream is new; the clicks after the restart count."""
    from tests import test_local_stack as stack

    env = stack_ports
    base = f"http://127.0.0.1:{env['PULSE_HTTP_PORT']}"
    for accepted, first in ((10, 0), (13, 10)):
        proc = stack.start_stack(env)
        try:
            stack.wait_healthy(env, proc)
            n = accepted - first
            assert post_http(base, {"page": "restart", "session": "s",
                                    "clicks": clicks(n, first=first)}) == 202
            assert window_clicks_over_http(base, "restart", accepted) == accepted
        finally:
            stack.stop_stack(proc)
        stack.wait_ports_closed(env)


def test_a_stream_tag_the_role_may_not_read_falls_back_to_shard_checkpoints(pulse_env, caplog):
    """AccessDenied on DescribeStreamSummary (a role without it) must not fail every click
    batch: checkpoints fall back to the shard id alone, and the error is logged."""
    from botocore.stub import Stubber

    from chalicelib.hotspots.consumer import StreamTags

    client = get_aws_client("kinesis")
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/pulse-clicks"
    with Stubber(client) as stub:
        stub.add_client_error("describe_stream_summary", "AccessDeniedException")
        assert StreamTags(lambda: client).tag(arn) == ""
    assert "AccessDeniedException" in caplog.text
