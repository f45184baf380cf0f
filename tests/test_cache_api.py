"""GET /upstream/{name} and /upstream/{name}/{item} through the app (chalice's test
client), real memcached, the test's loopback upstream."""
from __future__ import annotations

import json

import pytest

from chalicelib.settings import Settings
from chalicelib.upstream.upstreams import UpstreamConfigError, parse_upstreams


def get(client, path):
    resp = client.http.get(path)
    return resp.status_code, resp.headers, resp.body


def test_list_and_item_miss_then_hit_with_headers(cache_client, demo_upstream):
    status, headers, body = get(cache_client, "/upstream/demo")
    assert status == 200 and headers["X-Cache"] == "MISS" and headers["Age"] == "0"
    assert headers["Content-Type"].startswith("application/json")
    assert len(json.loads(body)["data"]) == 24
    status, headers, again = get(cache_client, "/upstream/demo")
    assert (status, headers["X-Cache"], again) == (200, "HIT", body)

    status, headers, body = get(cache_client, "/upstream/demo/7")
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert json.loads(body)["data"]["id"] == 7
    assert get(cache_client, "/upstream/demo/7")[1]["X-Cache"] == "HIT"
    assert demo_upstream.calls == {"/api/v1/employees": 1, "/api/v1/employee/7": 1}


def test_missing_item_is_a_404_json_and_is_cached(cache_client, demo_upstream):
    status, headers, body = get(cache_client, "/upstream/demo/999")
    assert (status, headers["X-Cache"]) == (404, "MISS")
    assert json.loads(body) == {"error": "NotFound", "message": "upstream 'demo' has no item "
                                "'999'", "upstream": "demo", "item": "999"}
    status, headers, _ = get(cache_client, "/upstream/demo/999")
    assert (status, headers["X-Cache"]) == (404, "HIT")
    assert demo_upstream.calls["/api/v1/employee/999"] == 1


def test_connections_are_reused_across_invocations(cache_client, demo_upstream,
                                                   memcached_env):
    """A warm container keeps its memcached connections (and its HTTP ones to the
    upstream) from one invocation to the next."""
    from pymemcache.client.base import Client as PlainClient

    from chalicelib.cache.discovery import parse_host_port

    def memcached_connections() -> int:
        """Connections the nodes ever accepted, minus the ones this function made."""
        total = 0
        for server in memcached_env.memcached_servers:
            plain = PlainClient(parse_host_port(server), connect_timeout=1, timeout=1)
            total += int(plain.stats()[b"total_connections"])
            plain.close()
        probes.append(len(memcached_env.memcached_servers))
        return total - sum(probes)

    probes: list[int] = []

    get(cache_client, "/upstream/demo/1")  # the first call opens what it needs
    before, upstream_before = memcached_connections(), demo_upstream.connections
    for item in range(2, 12):  # ten MISSes, then ten HITs
        get(cache_client, f"/upstream/demo/{item}")
        get(cache_client, f"/upstream/demo/{item}")
    assert demo_upstream.total_calls() == 11
    assert demo_upstream.connections == upstream_before == 1
    # The first call used one node; the other may have been opened once since, no more.
    assert memcached_connections() - before <= 1


def test_unknown_name_is_404_and_never_reaches_an_upstream(cache_client, demo_upstream):
    status, _, body = get(cache_client, "/upstream/nope")
    assert status == 404
    assert json.loads(body)["error"] == "NotFound" and "demo" in json.loads(body)["message"]
    assert demo_upstream.total_calls() == 0


@pytest.mark.parametrize("item", ["..", ".", "a%2Fb", "%2e%2e", "x%3Fy=1", "a%40evil.com",
                                  "%20", "a" * 101])
def test_item_must_be_one_plain_path_segment(cache_client, demo_upstream, item):
    status, _, body = get(cache_client, f"/upstream/demo/{item}")
    assert status == 400, body
    assert json.loads(body)["field"] == "item"
    assert demo_upstream.total_calls() == 0


def test_upstream_failure_without_a_copy_is_a_502_json(cache_client, demo_upstream):
    demo_upstream.mode = "fail"
    status, _, body = get(cache_client, "/upstream/demo/1")
    assert status == 502
    assert json.loads(body) == {"error": "BadGateway", "message": "upstream 'demo' answered "
                                "HTTP 500", "upstream": "demo", "upstream_status": 500}


def test_upstream_hanging_without_a_copy_is_a_504_json(cache_client, demo_upstream):
    demo_upstream.mode = "hang"
    status, _, body = get(cache_client, "/upstream/demo/1")
    assert status == 504
    assert json.loads(body)["error"] == "GatewayTimeout"
    assert "within 1s" in json.loads(body)["message"]


def test_prod_default_is_the_seeds_example_api_and_local_the_demo():
    prod = parse_upstreams(Settings.from_env({"PULSE_STAGE": "prod"}).upstreams)
    assert list(prod) == ["employees"]
    assert prod["employees"].url == "https://dummy.restapiexample.com/api/v1/employees"
    assert prod["employees"].url_for("5") == \
        "https://dummy.restapiexample.com/api/v1/employee/5"
    local = parse_upstreams(Settings.from_env({}).upstreams)
    assert local["demo"].url == "http://127.0.0.1:18080/api/v1/employees"


def test_item_is_percent_encoded_into_the_configured_url_only():
    up = parse_upstreams(json.dumps({"a": {"url": "https://api.example/v1/x",
                                           "ttl": 5, "timeout": 2}}))["a"]
    assert up.url_for("1~2") == "https://api.example/v1/x/1~2"
    assert (up.ttl, up.timeout, up.negative_ttl, up.stale_ttl) == (5, 2, 5, 3600)


@pytest.mark.parametrize("raw, problem", [
    ("not json", "not JSON"),
    ('{"Bad Name": {"url": "https://a.example"}}', "names are"),
    ('{"a": {"url": "ftp://a.example"}}', "'url'"),
    ('{"a": {"url": "https://a.example", "item_url": "https://{item}.example/"}}', "'item_url'"),
    ('{"a": {"url": "https://a.example", "timeout": 60}}', "'timeout'"),
    ('{"a": {"url": "https://a.example", "ttl": -1}}', "'ttl'"),
])
def test_bad_upstreams_setting_is_named(raw, problem):
    with pytest.raises(UpstreamConfigError, match=problem):
        parse_upstreams(raw)


def test_a_trickling_upstream_is_cut_at_the_total_deadline():
    """Headers at once, then one byte every 50 ms: each read is quick, the whole is not."""
    import socket
    import threading
    import time

    from chalicelib.errors import UpstreamTimeout
    from chalicelib.upstream.upstreams import UpstreamClient

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    port = listener.getsockname()[1]
    up = parse_upstreams(json.dumps({"slow": {"url": f"http://127.0.0.1:{port}/x",
                                              "timeout": 0.5}}))["slow"]
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeout):
            UpstreamClient().fetch(up, up.url, time.monotonic() + up.timeout)
        assert time.monotonic() - started < 0.9
    finally:
        stop.set()
        listener.close()


def test_cache_settings_come_from_their_variables():
    s = Settings.from_env({
        "MEMCACHED_TLS": "true", "MEMCACHED_TLS_CA_FILE": "/ca.pem",
        "MEMCACHED_CONFIG_ENDPOINT": "cfg.example:11211", "MEMCACHED_DISCOVERY_SECONDS": "30",
        "MEMCACHED_DEAD_SECONDS": "5", "MEMCACHED_TIMEOUT": "0.1", "CACHE_TTL_JITTER": "0.2",
        "UPSTREAMS": '{"x": {"url": "https://x.example/a"}}'})
    assert (s.memcached_tls, s.memcached_tls_ca_file, s.memcached_config_endpoint) == (
        True, "/ca.pem", "cfg.example:11211")
    assert (s.memcached_discovery_seconds, s.memcached_dead_seconds, s.memcached_timeout,
            s.cache_ttl_jitter) == (30, 5, 0.1, 0.2)
    assert list(parse_upstreams(s.upstreams)) == ["x"]
    defaults = Settings.from_env({})
    assert not defaults.memcached_tls and defaults.memcached_config_endpoint is None


def test_invalid_upstreams_setting_is_a_500_naming_it(cache_client, monkeypatch):
    from chalicelib.clients import reset_clients

    monkeypatch.setenv("UPSTREAMS", '{"demo": {"url": "gopher://x"}}')
    reset_clients()
    status, _, body = get(cache_client, "/upstream/demo")
    assert status == 500
    assert "UPSTREAMS 'demo': 'url' must be an http(s) URL" in json.loads(body)["message"]
    assert cache_client.http.get("/ui/cache").status_code == 200  # the rest still works
