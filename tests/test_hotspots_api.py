"""POST /clicks and GET /hotspots, through chalice.test.Client against moto's
Kinesis and a real Redis; PutRecords partial failures injected with botocore event hooks."""
import json
import socket
import time

import pytest

from chalicelib.clients import get_aws_client, reset_clients
from chalicelib.hotspots.consumer import HotspotConsumer
from chalicelib.hotspots.writer import ClickWriter

HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def plain_client():
    """The app without a provisioned world: input is rejected before any dependency."""
    from chalice.test import Client

    import app as pulse_app
    from tests.conftest import ROOT

    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        yield client


def post(client, body, raw=None):
    resp = client.http.post("/clicks", headers=HEADERS,
                            body=raw if raw is not None else json.dumps(body))
    return resp.status_code, json.loads(resp.body)


def clicks(n, x=0.5, y=0.5):
    now = int(time.time() * 1000)
    return [{"x": x + (i % 4) * 0.002, "y": y + (i // 4) * 0.002, "t": now + i}
            for i in range(n)]


def stream_records(stream):
    """Every record in the stream, shard by shard, as Lambda would see them."""
    kinesis = get_aws_client("kinesis")
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=1000)
            out += [(shard["ShardId"], r) for r in page["Records"]]
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return out


def as_lambda_records(pairs):
    import base64

    return [{"kinesis": {"sequenceNumber": r["SequenceNumber"], "partitionKey": r["PartitionKey"],
                         "data": base64.b64encode(r["Data"]).decode(),
                         "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"]
                         .timestamp()},
             "eventID": f"{shard}:{r['SequenceNumber']}"} for shard, r in pairs]


class FailSomeRecords:
    """Fault injection: on the calls listed, the records at the given positions of that
    call do not reach Kinesis and come back with an ErrorCode, as a throttled shard's do."""

    def __init__(self, kinesis, fail: dict[int, set[int]]):
        self.fail = fail  # call number (0-based) -> positions failing in that call
        self.sent: list[list[bytes]] = []
        self._dropped: list[int] = []
        self._n = 0
        events = kinesis.meta.events
        events.register("provide-client-params.kinesis.PutRecords", self.drop)
        events.register("before-call.kinesis.PutRecords", self.answer_when_all_dropped)
        events.register("after-call.kinesis.PutRecords", self.mark_failed)

    def drop(self, params, **_):
        records = params["Records"]
        self.sent.append([r["Data"] for r in records])
        self._n = len(records)
        self._dropped = sorted(i for i in self.fail.get(len(self.sent) - 1, ()) if i < self._n)
        if len(self._dropped) < self._n:  # an empty call would not pass validation
            params["Records"] = [r for i, r in enumerate(records) if i not in self._dropped]
        return params

    def answer_when_all_dropped(self, **_):
        if self._n and len(self._dropped) == self._n:  # nothing is sent at all
            from botocore.awsrequest import AWSResponse

            return AWSResponse("http://fault", 200, {}, None), {"Records": []}
        return None

    def mark_failed(self, parsed, **_):
        if not self._dropped:
            return
        real = iter(parsed["Records"])
        parsed["Records"] = [
            {"ErrorCode": "ProvisionedThroughputExceededException",
             "ErrorMessage": "Rate exceeded for shard"} if i in self._dropped else next(real)
            for i in range(self._n)]
        parsed["FailedRecordCount"] = len(self._dropped)


def test_partial_failure_retries_only_the_failed_records_until_all_are_in(pulse_env):
    kinesis = get_aws_client("kinesis")
    faults = FailSomeRecords(kinesis, {0: {1, 4, 7}, 1: {0}})  # then record 4 fails again
    sleeps = []
    writer = ClickWriter(kinesis, pulse_env.click_stream_name, attempts=4, backoff=0.01,
                         sleep=sleeps.append)
    records = [(json.dumps({"n": i}).encode(), f"session-{i % 3}") for i in range(10)]
    result = writer.put(records)
    assert (result.accepted, result.failed, result.calls) == (10, [], 3)
    assert faults.sent[1] == [records[i][0] for i in (1, 4, 7)]  # only the failed ones
    assert faults.sent[2] == [records[1][0]]  # call 2's position 0 was record 1
    assert len(sleeps) == 2 and all(0 <= s <= 0.02 for s in sleeps)
    arrived = sorted(json.loads(r["Data"])["n"] for _, r in stream_records(
        pulse_env.click_stream_name))
    assert arrived == list(range(10))  # each exactly once


def test_clicks_still_failing_are_named_in_the_answer(app_client, pulse_env):
    from chalicelib.hotspots.wiring import get_writer

    FailSomeRecords(get_writer().kinesis, {0: {2}, **{k: {0} for k in range(1, 10)}})
    status, body = post(app_client, {"page": "home", "clicks": clicks(5)})
    assert status == 503
    assert body["accepted"] == 4
    assert body["failed"] == [{"index": 2, "code": "ProvisionedThroughputExceededException"}]
    assert len(stream_records(pulse_env.click_stream_name)) == 4


def test_hung_kinesis_answers_503_within_two_seconds_naming_every_click(app_client,
                                                                        monkeypatch):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        reset_clients()
        from chalicelib.hotspots.wiring import get_writer

        get_writer()  # a warm container: the client exists (creating one takes ~0.5 s)
        started = time.perf_counter()
        status, body = post(app_client, {"page": "home", "clicks": clicks(3)})
        elapsed = time.perf_counter() - started
    assert status == 503 and body["accepted"] == 0
    assert body["dependency"] == "aws"  # as every other 503 of a dependency names it
    assert [f["index"] for f in body["failed"]] == [0, 1, 2]
    assert elapsed < 2.0


def test_hung_redis_gives_503_for_hotspots_within_two_seconds(app_client, own_redis):
    assert app_client.http.get("/hotspots?page=home").status_code == 200
    own_redis.pause()
    try:
        started = time.perf_counter()
        resp = app_client.http.get("/hotspots?page=home")
        elapsed = time.perf_counter() - started
    finally:
        own_redis.resume()
    assert resp.status_code == 503 and json.loads(resp.body)["error"] == "ServiceUnavailable"
    assert elapsed < 2.0


def test_posted_clicks_reach_the_stream_keyed_by_session(app_client, pulse_env):
    status, body = post(app_client, {"page": "home", "session": "s-1", "clicks": clicks(100)})
    assert (status, body) == (202, {"accepted": 100, "page": "home"})
    status, _ = post(app_client, {"page": "home", "session": "s-2", "clicks": clicks(3)})
    assert status == 202
    got = stream_records(pulse_env.click_stream_name)
    assert len(got) == 103
    assert {r["PartitionKey"] for _, r in got} == {"s-1", "s-2"}
    data = json.loads(got[0][1]["Data"])
    assert set(data) == {"p", "s", "x", "y", "t", "i"} and data["p"] == "home"
    assert len({json.loads(r["Data"])["i"] for _, r in got}) == 103  # an id per click
    # without a session, each request gets its own key: never one fixed key
    post(app_client, {"page": "home", "clicks": clicks(1)})
    post(app_client, {"page": "home", "clicks": clicks(1)})
    keys = {r["PartitionKey"] for _, r in stream_records(pulse_env.click_stream_name)}
    assert len(keys) == 4


BAD = [
    ({"page": "home", "clicks": [{"x": 1.5, "y": 0.5, "t": 1}]}, "clicks[0].x"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": -0.1, "t": 1}]}, "clicks[0].y"),
    ({"page": "home", "clicks": [{"x": "0.5", "y": 0.5, "t": 1}]}, "clicks[0].x"),
    ({"page": "home", "clicks": [{"x": True, "y": 0.5, "t": 1}]}, "clicks[0].x"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": 0.5}]}, "clicks[0].t"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": 1, "id": "a b"}]}, "clicks[0].id"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": 1, "id": 7}]}, "clicks[0].id"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": "now"}]}, "clicks[0].t"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": 1.5}]}, "clicks[0].t"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": 2.0 ** 53}]}, "clicks[0].t"),
    ({"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": 1}, 7]}, "clicks[1]"),
    ({"page": "home", "clicks": []}, "clicks"),
    ({"page": "home", "clicks": clicks(101)}, "clicks"),
    ({"page": "home"}, "clicks"),
    ({"clicks": clicks(1)}, "page"),
    ({"page": "", "clicks": clicks(1)}, "page"),
    ({"page": "x" * 65, "clicks": clicks(1)}, "page"),
    ({"page": "{home}", "clicks": clicks(1)}, "page"),
    ({"page": "home", "session": "a b", "clicks": clicks(1)}, "session"),
]


def test_a_whole_time_written_as_a_float_is_accepted_as_its_integer(app_client, pulse_env):
    # JSON Schema's `integer` (the API contract) admits 1700000000000.0, so the route takes it
    t = clicks(1)[0]["t"]
    status, body = post(app_client, {"page": "home", "clicks": [{"x": 0.5, "y": 0.5,
                                                                 "t": float(t)}]})
    assert (status, body) == (202, {"accepted": 1, "page": "home"})
    [(_, record)] = stream_records(pulse_env.click_stream_name)
    assert json.loads(record["Data"])["t"] == t and b'"t":%d,' % t in record["Data"]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_clicks_are_400_naming_the_field(plain_client, body, field):
    status, answer = post(plain_client, body)
    assert status == 400, answer
    assert answer["error"] == "BadRequest" and answer["field"] == field


@pytest.mark.parametrize(("raw", "field"), [
    ('{"page": "home", "clicks": [{"x": NaN, "y": 0.5, "t": 1}]}', "clicks[0].x"),
    ('{"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": 1}, '
     '{"x": 0.5, "y": -Infinity, "t": 1}]}', "clicks[1].y"),
    ('{"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": NaN}]}', "clicks[0].t"),
    ('{"page": "home", "clicks": [', "body"),
    ('[1, 2]', "body"),
    ('{"page": "home", "clicks": [' + ",".join(['{"x": 0.5, "y": 0.5, "t": 1}'] * 10000) + "]}",
     "body"),
], ids=["nan", "infinity", "nan-time", "truncated", "not-an-object", "over-256kb"])
def test_bad_bodies_are_400_naming_the_field(plain_client, raw, field):
    status, answer = post(plain_client, None, raw=raw)
    assert status == 400, answer
    assert answer["field"] == field


def test_a_page_never_clicked_has_no_hotspots_and_an_empty_heatmap(app_client):
    resp = app_client.http.get("/hotspots?page=nowhere")
    assert resp.status_code == 200
    body = json.loads(resp.body)
    assert (body["page"], body["hotspots"], body["window"]["clicks"]) == ("nowhere", [], 0)
    assert body["window"]["from"] is None
    resp = app_client.http.get("/hotspots?page=nowhere&view=heatmap&grid=8")
    assert resp.status_code == 200
    heat = json.loads(resp.body)["heatmap"]
    assert heat["cells"] == [[0] * 8] * 8 and heat["max"] == 0
    assert app_client.http.get("/hotspots").status_code == 400
    assert app_client.http.get("/hotspots?page=%7Bx%7D").status_code == 400
    resp = app_client.http.get("/hotspots?page=nowhere&page=home")  # which one?
    assert (resp.status_code, json.loads(resp.body)["field"]) == (400, "page")


def test_clicks_become_hotspots_once_consumed(app_client, pulse_env):
    assert post(app_client, {"page": "shop", "session": "a", "clicks": clicks(20, 0.2, 0.3)
                             + clicks(3, 0.9, 0.9)})[0] == 202
    from chalicelib.hotspots.wiring import get_store

    consumer = HotspotConsumer(get_store())
    got = consumer.consume(as_lambda_records(stream_records(pulse_env.click_stream_name)))
    assert got.applied == 23
    resp = app_client.http.get("/hotspots?page=shop")
    body = json.loads(resp.body)
    assert resp.status_code == 200
    assert body["page"] == "shop" and body["window"]["clicks"] == 23
    assert body["window"]["max_clicks"] == pulse_env.hotspots_window_clicks
    [spot] = body["hotspots"]
    assert spot["count"] == 20 and spot["min"] == [0.2, 0.3]
    assert spot["max"] == pytest.approx([0.206, 0.308])
    assert spot["density"] == pytest.approx(20 / (0.006 * 0.008))
    assert body["computed_at"].startswith("20")
