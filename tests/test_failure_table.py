"""The README's failure table, row by row: each row's dependency is hung (SIGSTOP) or
stopped under the app, and each route the row names answers what the row promises,
within 2 s.  The Redis, memcached nodes and moto paused here are this module's own.

The throttled and misconfigured AWS rows are tests/test_aws_errors.py; the hung upstream
row is tests/test_cache_failover.py and tests/test_cache_readthrough.py (serve-stale)."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.clients import reset_clients
from local import processes
from tests.conftest import upstreams_json
from tests.qr_support import JSON

CLICKS = {"page": "table", "clicks": [{"x": 0.5, "y": 0.5, "t": 1_700_000_000_000}]}


@pytest.fixture(scope="module")
def own_nodes(tmp_path_factory):
    """Two memcached nodes of this module's own: stopping one disturbs no other test."""
    workdir = tmp_path_factory.mktemp("table-memcached")
    nodes = [processes.memcached_server(processes.free_port(), workdir, name=f"mc-{i}").start()
             for i in range(2)]
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def world(app_client, own_redis, own_moto, own_nodes, demo_upstream, monkeypatch):
    """The app on this test's Redis, this module's moto and memcached nodes, and a demo
    upstream; a QR code made and its image read once (so memcached holds both), one
    upstream item read once (so memcached holds it)."""
    for node in own_nodes:
        if node.proc is None or node.proc.poll() is not None:
            node.start()
    monkeypatch.setenv("MEMCACHED_SERVERS", ",".join(n.url for n in own_nodes))
    monkeypatch.setenv("UPSTREAMS", upstreams_json(demo_upstream.base_url, ttl=60, timeout=1))
    reset_clients()
    from chalicelib.clients import get_memcached

    get_memcached().flush_all()
    made = call(app_client, "POST", "/qr", {"url": "https://example.com/table"})
    assert made.status_code == 201
    qr_id = json.loads(made.body)["id"]
    assert call(app_client, "GET", f"/qr/{qr_id}").status_code == 200
    assert call(app_client, "GET", "/upstream/demo/1").status_code == 200
    yield app_client, qr_id


def call(client, method: str, path: str, body: dict | None = None):
    headers = {**JSON, "Accept": "application/json, image/png"}
    if method == "POST":
        return client.http.post(path, headers=headers, body=json.dumps(body))
    return client.http.get(path, headers=headers)


def timed(client, method: str, path: str, body: dict | None = None):
    started = time.monotonic()
    resp = call(client, method, path, body)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"{method} {path} took {elapsed:.2f} s"
    return resp, elapsed


def assert_503(resp, dependency: str) -> None:
    body = json.loads(resp.body)
    assert resp.status_code == 503, body
    assert (body["error"], body["dependency"]) == ("ServiceUnavailable", dependency)
    assert resp.headers["Retry-After"] == "1"


def assert_unaffected(client, qr_id: str, routes: list[str]) -> None:
    for route in routes:
        if route == "qr-new":
            resp, _ = timed(client, "POST", "/qr", {"url": f"https://example.com/{time.time()}"})
            assert resp.status_code == 201, resp.body
        elif route == "qr-hit":
            resp, _ = timed(client, "POST", "/qr", {"url": "https://example.com/table"})
            assert resp.status_code == 200, resp.body
            resp, _ = timed(client, "GET", f"/qr/{qr_id}")
            assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png"
        elif route == "clicks":
            resp, _ = timed(client, "POST", "/clicks", CLICKS)
            assert resp.status_code == 202, resp.body
        elif route == "upstream":
            resp, _ = timed(client, "GET", "/upstream/demo/1")
            assert resp.status_code == 200, resp.body
        elif route == "leaderboard":
            resp, _ = timed(client, "GET", "/leaderboard")
            assert resp.status_code == 200, resp.body
        elif route == "hotspots":
            resp, _ = timed(client, "GET", "/hotspots?page=table")
            assert resp.status_code in (200, 404), resp.body  # 404: no clicks counted yet
        else:
            raise AssertionError(route)


REDIS_ROUTES = ["/leaderboard", "/leaderboard/pulse", "/hotspots?page=table", "/qr?top=5"]


def redis_routes_fail(client, qr_id: str, own_redis, hung: bool) -> None:
    """The row's promise, with Redis paused (hung) or stopped (refused) meanwhile: Redis's
    routes 503 `redis` (after the read timeout when hung, at once when refused); the others
    unaffected."""
    down, up = (own_redis.pause, own_redis.resume) if hung else (own_redis.stop, own_redis.start)
    down()
    try:
        for path in REDIS_ROUTES:
            resp, elapsed = timed(client, "GET", path)
            assert_503(resp, "redis")
            assert elapsed >= 0.5 if hung else elapsed < 0.5
        assert_unaffected(client, qr_id, ["qr-new", "qr-hit", "clicks", "upstream"])
    finally:
        up()


def test_redis_hung(world, own_redis):
    client, qr_id = world
    redis_routes_fail(client, qr_id, own_redis, hung=True)
    for path in ("/leaderboard", "/qr?top=5"):
        assert call(client, "GET", path).status_code == 200  # normal at the next request


def test_redis_refused(world, own_redis):
    client, qr_id = world
    redis_routes_fail(client, qr_id, own_redis, hung=False)
    resp = call(client, "GET", "/leaderboard")
    assert resp.status_code == 200, resp.body  # normal at the next request


def test_a_memcached_node_down(world, own_nodes):
    client, qr_id = world
    own_nodes[0].stop()
    try:
        assert_unaffected(client, qr_id, ["qr-new", "qr-hit", "upstream", "leaderboard"])
        statuses = {call(client, "GET", "/upstream/demo/2").headers["X-Cache"]
                    for _ in range(3)}
        assert statuses <= {"HIT", "MISS", "BYPASS"}
    finally:
        own_nodes[0].start()


def test_aws_hung(world, own_moto):
    client, qr_id = world
    own_moto.pause()
    try:
        resp, _ = timed(client, "POST", "/qr", {"url": "https://example.com/while-hung"})
        assert_503(resp, "aws")
        resp, _ = timed(client, "POST", "/clicks", CLICKS)
        assert_503(resp, "aws")
        assert [f["index"] for f in json.loads(resp.body)["failed"]] == [0]
        # a hot code (entry and image in memcached), and the routes without AWS
        assert_unaffected(client, qr_id, ["qr-hit", "leaderboard", "hotspots", "upstream"])
    finally:
        own_moto.resume()
    resp, _ = timed(client, "POST", "/qr", {"url": "https://example.com/after-hung"})
    assert resp.status_code == 201
