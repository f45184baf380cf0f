"""Logs and metrics as an operator reads them: requests through `chalice local` and an
ingest through the event runner, as `make run` runs them, leave JSON log lines with the
request id and CloudWatch EMF metrics (namespace Pulse, dimensions Stage and Feature)
whose values match what happened."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from tests.conftest import ROOT, QuietHandler

JSON = {"Content-Type": "application/json"}


def call(base: str, method: str, path: str, body: dict | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=JSON)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def values(value) -> list[float]:
    return value if isinstance(value, list) else [value]


def emf_blobs(lines: list[dict]) -> list[dict]:
    return [line for line in lines if "_aws" in line]


def metric_sums(blobs: list[dict]) -> Counter:
    """(Feature, metric name) -> the sum of its values across the EMF lines."""
    sums: Counter = Counter()
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                sums[blob["Feature"], metric["Name"]] += sum(values(blob[metric["Name"]]))
    return sums


def assert_emf_shape(blobs: list[dict]) -> None:
    assert blobs
    for blob in blobs:
        directive = blob["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "Pulse"
        dims = directive["Dimensions"][0]
        assert dims[:2] == ["Stage", "Feature"] and len(dims) <= 3, dims
        assert blob["Stage"] == "local"
        assert isinstance(blob["_aws"]["Timestamp"], int)


def read_new(log: Path, offset: int, until, timeout: float = 15.0) -> list[dict]:
    """The log's JSON lines after `offset`, once `until(lines)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        lines = json_lines(log.read_bytes()[offset:].decode(errors="replace"))
        if until(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_requests_through_chalice_local_log_json_and_emf_metrics(live_app, stack_dir):
    log = stack_dir / "chalice-local.log"
    offset = log.stat().st_size
    qr = {"url": "https://example.com/observed"}
    clicks = [{"x": 0.1 * i, "y": 0.5, "t": i} for i in range(7)]
    answers = [
        call(live_app, "POST", "/qr", qr),  # a miss: rendered, stored, created
        call(live_app, "POST", "/qr", qr),  # a hit read from DynamoDB, put in memcached
        call(live_app, "POST", "/qr", qr),  # a hit from memcached
        call(live_app, "POST", "/clicks", {"page": "obs", "session": "s1", "clicks": clicks}),
        call(live_app, "GET", "/upstream/demo"),  # MISS
        call(live_app, "GET", "/upstream/demo"),  # HIT
        call(live_app, "GET", "/leaderboard?n=0"),  # a 400
    ]
    assert answers == [201, 200, 200, 202, 200, 200, 400]
    lines = read_new(log, offset, lambda ls: sum(
        1 for x in ls if x.get("message") == "invocation") >= len(answers))

    invocations = [x for x in lines if x.get("message") == "invocation"]
    assert [(x["route"], x["status"]) for x in invocations] == [
        ("POST /qr", 201), ("POST /qr", 200), ("POST /qr", 200), ("POST /clicks", 202),
        ("GET /upstream/{name}", 200), ("GET /upstream/{name}", 200),
        ("GET /leaderboard", 400)]
    ids = [x["request_id"] for x in invocations]
    assert all(ids) and len(set(ids)) == len(ids)  # one id per request
    assert all(x["latency_ms"] > 0 and x["function"] and x["level"] == "INFO"
               for x in invocations)
    assert not any(x["cold_start"] for x in invocations[1:])  # one process serves them all

    blobs = emf_blobs(lines)
    assert_emf_shape(blobs)
    assert {b["request_id"] for b in blobs} <= set(ids)  # each metric names its request
    sums = metric_sums(blobs)
    assert sums["qr", "QrMiss"] == 1 and sums["qr", "QrCreated"] == 1
    assert sums["qr", "QrHitDynamodb"] == 1 and sums["qr", "QrHitMemcached"] == 1
    assert sums["qr", "QrRenderMs"] > 0
    assert sums["hotspots", "ClicksAccepted"] == 7 and sums["hotspots", "ClicksRefused"] == 0
    assert sums["cache", "CacheMiss"] == 1 and sums["cache", "CacheHit"] == 1
    assert not any(name.startswith("Ingest") for _, name in sums)
    # no client address or user agent reaches the app's lines
    text = json.dumps(lines)
    assert "127.0.0.1" not in text and "Python-urllib" not in text


def test_clicks_consumed_by_the_event_runner_emit_applied_and_batch_age(app_client, pulse_env,
                                                                        capsys):
    import app as pulse_app
    from local.events import EventRunner

    runner = EventRunner(pulse_app.app, settings=pulse_env).setup()
    clicks = [{"x": 0.2, "y": 0.2 + i * 0.01, "t": 1} for i in range(12)]
    resp = app_client.http.post("/clicks", headers=JSON,
                                body=json.dumps({"page": "obs", "clicks": clicks}))
    assert resp.status_code == 202
    capsys.readouterr()
    assert sum(runner.deliver_records() for _ in range(6)) == 12
    blobs = emf_blobs(json_lines(capsys.readouterr().out))
    assert_emf_shape(blobs)
    sums = metric_sums(blobs)
    assert sums["hotspots", "ClicksApplied"] == 12
    ages = [a for b in blobs if "ClicksBatchAgeMs" in b for a in values(b["ClicksBatchAgeMs"])]
    assert ages and all(0 <= a < 120_000 for a in ages)


def test_the_event_runners_ingest_logs_json_with_its_request_id_and_ingest_metrics(
        pulse_env, stack_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack_env)
    done = subprocess.run([sys.executable, "-m", "local.events", "--app-dir", str(ROOT),
                           "--fire", "ingest_hashtags"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip().splitlines()
    results = json.loads(out[-1])  # the handler's answer: {board: result}
    lines = json_lines("\n".join(out[:-1]))
    assert len(lines) == len(out) - 1  # every line before the answer is one JSON object

    (invocation,) = [x for x in lines if x.get("message") == "invocation"]
    assert invocation["route"] == "schedule" and invocation["status"] == "ok"
    assert invocation["function"] == "ingest_hashtags" and invocation["cold_start"] is True
    request_id = invocation["request_id"]
    inside = [x for x in lines if x.get("logger", "").startswith("pulse.leaderboard")]
    assert inside and all(x["request_id"] == request_id for x in inside)

    blobs = emf_blobs(lines)
    assert_emf_shape(blobs)
    sums = metric_sums(blobs)
    assert sums["leaderboard", "IngestPages"] == sum(r["pages"] for r in results.values()) > 0
    assert sums["leaderboard", "IngestTweets"] == sum(r["tweets_seen"] for r in results.values())
    assert sums["leaderboard", "IngestTweetsCounted"] == sum(
        r["tweets_counted"] for r in results.values())
    assert sums["leaderboard", "IngestHashtags"] > 0
    lags = [x for b in blobs if "IngestLagSeconds" in b for x in values(b["IngestLagSeconds"])]
    assert lags and all(lag >= 0 for lag in lags)


def test_a_dependency_503_is_counted_by_dependency_and_route_class(app_client, monkeypatch,
                                                                    capsys, caplog):
    from chalicelib.clients import reset_clients
    from chalicelib.leaderboard import api
    from local import processes

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{processes.free_port()}/0")
    reset_clients()
    api.get_board.cache_clear()
    capsys.readouterr()
    resp = app_client.http.get("/leaderboard")
    assert resp.status_code == 503
    (invocation,) = [r for r in caplog.records if r.getMessage() == "invocation"]
    assert invocation.fields["status"] == 503
    blobs = emf_blobs(json_lines(capsys.readouterr().out))
    assert_emf_shape(blobs)
    (blob,) = blobs
    assert blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Stage", "Feature", "Dependency"]]
    assert (blob["Feature"], blob["Dependency"], blob["DependencyUnavailable"]) == (
        "leaderboard", "redis", [1.0])
    api.get_board.cache_clear()


def test_the_x_sources_rate_limit_remaining_is_read_from_each_answer():
    """`XRateLimitRemaining` comes from the X API's `x-rate-limit-remaining` header."""
    import threading
    from http.server import ThreadingHTTPServer

    from chalicelib.leaderboard.sources import TwitterSource
    from tests.test_leaderboard_ingest import ToLocalServer

    class XApi(QuietHandler):
        def do_GET(self):  # one page, then the range is over
            body = json.dumps({"data": [{"id": "1440000000000000000", "text": "#a",
                                         "created_at": "2021-09-22T16:00:00.000Z",
                                         "entities": {"hashtags": [{"tag": "a"}]}}],
                               "meta": {"result_count": 1}}).encode()
            self.answer(body, {"Content-Type": "application/json",
                               "x-rate-limit-remaining": "179"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), XApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = TwitterSource("token", "#a")
        source.client.session.mount("https://api.twitter.com/", ToLocalServer(
            f"http://127.0.0.1:{server.server_address[1]}"))
        assert source.rate_limit_remaining is None
        assert len(list(source.pages())) == 1
        assert source.rate_limit_remaining == 179
    finally:
        server.shutdown()
