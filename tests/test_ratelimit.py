"""Rate limits per client address and route class (chalicelib/ratelimit.py)."""
from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request

import pytest

from chalicelib.clients import get_redis, reset_clients
from chalicelib.ratelimit import CLASSES, policies
from chalicelib.settings import Settings, SettingsError
from tests.conftest import paused, real_redis

LOW = json.dumps({"public-read": {"quota": 3, "window": 60},
                  "public-write": {"quota": 2, "window": 60}})


@pytest.fixture
def limited(app_client, monkeypatch):
    monkeypatch.setenv("RATE_LIMITS", LOW)
    reset_clients()
    return app_client


def test_every_route_has_a_rate_class():
    import app as pulse_app

    unclassed = [f"{method} {path}" for path, methods in pulse_app.app.routes.items()
                 for method, entry in methods.items()
                 if getattr(entry.view_function, "rate_class", None) not in CLASSES]
    assert not unclassed


def test_over_the_quota_a_429_in_the_error_shape_with_the_draft_headers(limited):
    for i in range(3):
        ok = limited.http.get("/leaderboard")
        assert ok.status_code == 200
        assert ok.headers["RateLimit-Policy"] == "public-read;q=3;w=60"
        assert ok.headers["RateLimit"].startswith(f"public-read;r={2 - i};t=")
    refused = limited.http.get("/hotspots?page=a")  # the same class: the same quota
    assert refused.status_code == 429
    body = json.loads(refused.body)
    assert body["error"] == "TooManyRequests" and "public-read" in body["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit"] == \
        f"public-read;r=0;t={refused.headers['Retry-After']}"
    # another class keeps its own quota; pages are not limited this low
    assert limited.http.get("/ui/leaderboard").status_code == 200


def test_a_header_the_caller_writes_does_not_change_the_address(limited):
    statuses = [limited.http.get("/leaderboard", headers={"X-Forwarded-For": f"10.0.0.{i}"})
                .status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_every_counter_key_expires_with_its_window(limited):
    limited.http.get("/leaderboard")
    from chalicelib.ratelimit import get_limiter

    keys = get_redis().keys("pulse:rl:*")
    assert keys == [f"pulse:rl:{{public-read:{get_limiter().client_token('127.0.0.1')}}}"]
    assert "127.0.0.1" not in keys[0]  # a keyed hash names the address, not the address
    assert 0 < get_redis().ttl(keys[0]) <= 60


def test_with_redis_down_requests_pass_at_once_and_it_is_logged(limited, own_redis, caplog):
    own_redis.stop()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pulse.ratelimit"):
        answers = [limited.http.get("/ui/leaderboard").status_code for _ in range(10)]
    assert answers == [200] * 10
    assert time.monotonic() - started < 1.0
    assert any("requests pass unlimited" in r.getMessage() for r in caplog.records)


def test_with_redis_hung_the_limiter_waits_at_most_its_timeout(limited, own_redis, caplog):
    timings = []
    with paused(own_redis), caplog.at_level(logging.WARNING, logger="pulse.ratelimit"):
        for _ in range(5):
            started = time.monotonic()
            assert limited.http.get("/ui/leaderboard").status_code == 200
            timings.append(time.monotonic() - started)
    # the first waits the limiter's timeout; the next skip Redis without asking it
    assert max(timings) < 0.6, timings
    assert sum("redis failed" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("raw, named", [
    ("[1]", "JSON object"), ('{"admin": {"quota": 1}}', "unknown class"),
    ('{"team": {"quota": -1}}', "RATE_LIMITS['team']"),
    ('{"team": {"quota": 1, "burst": 2}}', "RATE_LIMITS['team']")])
def test_a_bad_rate_limits_setting_is_named(raw, named):
    with pytest.raises(SettingsError, match=named.replace("[", r"\[")):
        policies(Settings.from_env({"RATE_LIMITS": raw}))


def test_the_local_stage_quotas_are_far_above_the_others():
    local = policies(Settings.from_env({}))
    prod = policies(Settings.from_env({"PULSE_STAGE": "prod"}))
    assert prod["public-read"].quota == 120 and prod["team"].quota == 30
    assert all(local[c].quota >= 100 * prod[c].quota for c in CLASSES)


def get_from(url: str, source: str) -> int:
    """GET `url` with the client socket bound to the loopback address `source`."""
    class Bound(urllib.request.HTTPHandler):
        def http_open(self, req):
            import http.client

            return self.do_open(lambda host, **kw: http.client.HTTPConnection(
                host, source_address=(source, 0), **kw), req)

    with urllib.request.build_opener(Bound).open(url, timeout=10) as resp:
        return resp.status


def test_chalice_local_counts_by_the_peer_address(live_app):
    if socket.gethostbyname("127.0.0.3") != "127.0.0.3":  # pragma: no cover
        pytest.skip("no loopback range")
    for source in ("127.0.0.2", "127.0.0.3"):
        assert get_from(f"{live_app}/leaderboard", source) == 200
    from chalicelib.ratelimit import Limiter
    from chalicelib.settings import Settings

    token = Limiter(Settings.from_env()).client_token  # the live server's settings' salt
    keys = set(get_redis().keys("pulse:rl:*"))
    assert {f"pulse:rl:{{public-read:{token(a)}}}" for a in ("127.0.0.2", "127.0.0.3")} <= keys


def test_a_read_only_route_is_counted_once_even_after_redis_lost_the_script(limited):
    # /leaderboard runs while its count travels; a Redis restarted (or failed over) without
    # the script answers NOSCRIPT, and the request is then counted the usual way, once.
    assert limited.http.get("/leaderboard").headers["RateLimit"].startswith("public-read;r=2;")
    get_redis().script_flush()
    assert limited.http.get("/leaderboard").headers["RateLimit"].startswith("public-read;r=1;")
    assert limited.http.get("/leaderboard").headers["RateLimit"].startswith("public-read;r=0;")
    assert limited.http.get("/leaderboard").status_code == 429


def test_a_refused_client_does_not_run_read_only_views_again_in_its_window(limited, monkeypatch):
    import app as pulse_app

    calls = []
    top = pulse_app.leaderboard_api.top
    monkeypatch.setattr(pulse_app.leaderboard_api, "top", lambda *a: calls.append(1) or top(*a))
    statuses = [limited.http.get("/leaderboard").status_code for _ in range(8)]
    assert statuses == [200] * 3 + [429] * 5
    # the first refusal ran its view while counted (its answer dropped); the next four
    # were counted first, on this container, and refused without running it
    assert len(calls) == 4
    from chalicelib.ratelimit import get_limiter

    assert get_limiter().send("public-read", "127.0.0.1") is None  # counted before the view


@pytest.fixture(params=["standalone", "cluster"])
def any_redis(request):
    client = real_redis(request)
    yield client
    client.close()


def test_counts_sent_ahead_land_on_each_clients_slot(any_redis):
    from chalicelib.ratelimit import Limiter

    limiter = Limiter(Settings.from_env({"RATE_LIMITS": LOW}),
                      redis_factory=lambda: any_redis)
    addresses = [f"198.51.100.{i}" for i in range(12)]  # keys on all three masters
    keys = [limiter._key("public-read", a) for a in addresses]
    for key in keys:
        any_redis.delete(key)
    for round_ in range(4):
        if round_ == 2:
            any_redis.script_flush()  # every node forgets it: counted the usual way, once
        decisions = [limiter.send("public-read", a).decision() for a in addresses]
        assert [(d.allowed, d.remaining) for d in decisions] == \
            [(round_ < 3, max(0, 2 - round_))] * len(addresses), round_
    # refused: from now on counted before their views, on this container
    assert [limiter.send("public-read", a) for a in addresses] == [None] * len(addresses)
    assert not any(limiter.hit("public-read", a).allowed for a in addresses)
    assert [any_redis.get(k) for k in keys] == ["5"] * len(keys)
    assert all(0 < any_redis.ttl(k) <= 60 for k in keys)


def test_a_cluster_unreachable_when_the_limiter_starts_lets_requests_pass(limited, caplog):
    # RedisCluster connects when it is made: with every node down, making it raises.
    from redis.exceptions import RedisClusterException

    from chalicelib.ratelimit import get_limiter

    def unreachable():
        raise RedisClusterException("Redis Cluster cannot be connected")

    get_limiter()._redis_factory = unreachable
    with caplog.at_level(logging.WARNING, logger="pulse.ratelimit"):
        answers = [limited.http.get(path) for path in ("/leaderboard", "/hotspots?page=a")]
    assert [a.status_code for a in answers] == [200, 200]
    assert not any("RateLimit" in a.headers for a in answers)
    assert any("RedisClusterException" in r.getMessage() for r in caplog.records)
