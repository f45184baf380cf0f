"""GET /health and GET /health/details against real servers: all ok, then each dependency
failing; the public answer names the failing dependency, only the details say more."""
import json
import time

from chalicelib.clients import reset_clients
from local import processes


def get_health(client, path: str = "/health"):
    started = time.perf_counter()
    resp = client.http.get(path)
    return resp.status_code, resp.json_body, time.perf_counter() - started


def test_all_dependencies_ok(app_client):
    status, body, _ = get_health(app_client)
    assert status == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert {k: v["status"] for k, v in body["dependencies"].items()} == {
        "redis": "ok", "memcached": "ok", "aws": "ok"}


def test_redis_stopped_gives_503_naming_redis_then_recovers(app_client, own_redis):
    assert get_health(app_client)[0] == 200
    own_redis.stop()
    status, body, elapsed = get_health(app_client)
    assert status == 503 and body["failing"] == ["redis"], body
    assert elapsed < 2.0
    own_redis.start()  # same port; the app is not restarted
    status, body, _ = get_health(app_client)
    assert status == 200, body


def test_hung_redis_still_answers_within_two_seconds(app_client, own_redis):
    assert get_health(app_client)[0] == 200
    own_redis.pause()  # keeps its port open, answers nothing
    try:
        status, body, elapsed = get_health(app_client)
    finally:
        own_redis.resume()
    assert status == 503 and body["failing"] == ["redis"], body
    assert body["dependencies"]["redis"]["status"] in {"timeout", "error"}
    assert elapsed < 2.0


def test_one_memcached_node_down_names_memcached(app_client, monkeypatch, memcached_servers):
    dead = processes.free_port()  # nothing listens there
    monkeypatch.setenv("MEMCACHED_SERVERS", f"{memcached_servers[0].url},127.0.0.1:{dead}")
    reset_clients()
    status, body, elapsed = get_health(app_client, "/health/details")
    assert status == 503 and body["failing"] == ["memcached"], body
    assert f"127.0.0.1:{dead}" in body["dependencies"]["memcached"]["detail"]
    status, public, _ = get_health(app_client)
    assert status == 503 and public["failing"] == ["memcached"], public
    assert str(dead) not in json.dumps(public)  # no host:port for anyone
    assert elapsed < 2.0


def test_aws_unreachable_names_aws(app_client, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{processes.free_port()}")
    reset_clients()
    status, body, elapsed = get_health(app_client)
    assert status == 503 and body["failing"] == ["aws"], body
    assert elapsed < 2.0


def test_missing_table_is_reported_not_crashed(app_client, monkeypatch):
    monkeypatch.setenv("QR_TABLE", "no-such-table")
    reset_clients()
    status, body, _ = get_health(app_client, "/health/details")
    assert status == 503 and "ResourceNotFound" in body["dependencies"]["aws"]["detail"]
    status, public, _ = get_health(app_client)
    assert status == 503 and public["dependencies"] == {
        "redis": {"status": "ok"}, "memcached": {"status": "ok"}, "aws": {"status": "error"}}
    assert "no-such-table" not in json.dumps(public)


def test_memcached_without_any_discovered_node_is_not_ok(pulse_env, monkeypatch):
    # A configuration endpoint nobody answers on: the client starts with no node at all,
    # so every cached route would bypass the cache; /health must say so.
    from chalicelib import health
    from local import processes

    monkeypatch.setenv("MEMCACHED_CONFIG_ENDPOINT", f"127.0.0.1:{processes.free_port()}")
    reset_clients()
    report = health.check_all()
    assert report.dependencies["memcached"]["status"] == "error"
    assert "no memcached node known" in report.dependencies["memcached"]["detail"]
    assert not report.ok
    reset_clients()
