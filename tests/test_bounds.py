"""Bounded state: every key a public route can create expires or lives in a capped
structure (README "Limits and bounds")."""
from __future__ import annotations

import base64
import json

import pytest
import redis

from chalicelib.hotspots.consumer import HotspotConsumer
from chalicelib.hotspots.store import PAGES_KEY, HotspotStore, page_keys

SHARD = "shardId-000000000000"
T0 = 1_764_460_800.0


def record(page: str, seq: int, at: float) -> dict:
    data = json.dumps({"p": page, "s": "sess", "x": 0.5, "y": 0.5, "t": 1}).encode()
    return {"kinesis": {"sequenceNumber": str(seq), "data": base64.b64encode(data).decode(),
                        "approximateArrivalTimestamp": at},
            "eventID": f"{SHARD}:{seq}"}


@pytest.fixture
def r(redis_server):
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    client.flushall()
    yield client
    client.close()


def test_a_page_expires_a_window_after_its_last_click(r):
    store = HotspotStore(r, max_clicks=1000, window_seconds=600)
    HotspotConsumer(store).consume([record("home", 1, T0)])
    store.save_result("home", 1, {"hotspots": []})
    for key in page_keys("home"):
        assert 590_000 < r.pttl(key) <= 600_000, key
    assert 0 < r.pttl(PAGES_KEY) <= 600_000


def test_past_the_cap_the_least_recently_clicked_page_is_dropped(r):
    store = HotspotStore(r, max_clicks=1000, window_seconds=600, max_pages=3)
    consumer = HotspotConsumer(store)
    for i, page in enumerate(["a", "b", "c", "d", "e"]):
        consumer.consume([record(page, i + 1, T0 + i)])
        assert store.pages() == min(i + 1, 3)
    assert r.zrange(PAGES_KEY, 0, -1) == ["c", "d", "e"]
    for gone in ("a", "b"):
        assert not any(r.exists(key) for key in page_keys(gone)), gone
    consumer.consume([record("c", 10, T0 + 10)])  # clicked again: now the newest
    consumer.consume([record("f", 11, T0 + 11)])
    assert r.zrange(PAGES_KEY, 0, -1) == ["e", "c", "f"]
    assert len(store.window("c")) == 2 and not r.exists(page_keys("d")[0])


def test_qr_counts_keep_the_most_counted_domains_and_expire(r):
    from chalicelib.qr.creations import MARKER_TTL, PREFIX, CreationLog

    log = CreationLog(r, keep=2, max_domains=3)
    domains = ["a.example"] * 3 + ["b.example"] * 2 + ["c.example", "d.example", "e.example"]
    for i, domain in enumerate(domains):
        log.record({"id": f"id{i}", "url": f"https://{domain}/secret?token={i}",
                    "domain": domain, "format": "png", "created_at": 1, "creation": f"c{i}"})
    stats = log.stats(top=10)
    assert [d["domain"] for d in stats["domains"]][:2] == ["a.example", "b.example"]
    assert len(stats["domains"]) == 3 and len(stats["recent"]) == 2
    assert "secret" not in json.dumps(stats) and "secret" not in json.dumps(
        r.lrange(f"{PREFIX}:recent", 0, -1))
    for key in r.keys(f"{PREFIX}:*"):
        assert 0 < r.ttl(key) <= MARKER_TTL, key


def post_qr(client, body: dict):
    resp = client.http.post("/qr", body=json.dumps(body),
                            headers={"Content-Type": "application/json"})
    return resp.status_code, json.loads(resp.body)


@pytest.mark.parametrize("body, field", [
    # the costliest combination the options allowed: a version-40 code of 8,360 px a side
    ({"url": "https://example.com/" + "a" * 2000, "size": 40, "border": 16,
      "error_correction": "L"}, "url"),
    ({"url": "https://example.com/" + "a" * 500, "size": 40, "error_correction": "L"}, "size"),
    ({"url": "https://example.com/" + "a" * 400, "error_correction": "H"}, "url"),
])
def test_a_qr_image_over_the_cost_caps_is_a_400_naming_the_field(app_client, body, field):
    status, answer = post_qr(app_client, body)
    assert (status, answer["error"], answer["field"]) == (400, "BadRequest", field), answer


def test_the_largest_qr_image_allowed_stays_under_the_pixel_cap(app_client, monkeypatch):
    import io

    from PIL import Image

    from chalicelib.clients import reset_clients
    from chalicelib.qr.spec import MAX_PIXELS
    from tests.conftest import LIVE_SERVER_AWS_PATIENCE

    for key, value in LIVE_SERVER_AWS_PATIENCE.items():  # a loaded moto is not the subject
        monkeypatch.setenv(key, value)
    reset_clients()

    status, answer = post_qr(app_client, {"url": "https://example.com/" + "a" * 500,
                                          "size": 38, "border": 0, "error_correction": "L"})
    assert status == 201, answer
    image = app_client.http.get(f"/qr/{answer['id']}", headers={"Accept": "image/png"})
    width, height = Image.open(io.BytesIO(image.body)).size
    assert width == height == 77 * 38 and width * height <= MAX_PIXELS


@pytest.fixture
def guarded(cache_client, demo_upstream, monkeypatch):
    """The app with UPSTREAMS `demo` at most 2 calls a second, open after 2 failures."""
    from chalicelib.clients import reset_clients
    from tests.conftest import upstreams_json

    monkeypatch.setenv("UPSTREAMS", upstreams_json(
        demo_upstream.base_url, ttl=60, timeout=1, calls_per_second=2, breaker_failures=2,
        breaker_seconds=30, item_pattern="[0-9]{1,3}"))
    reset_clients()
    return cache_client


def test_an_item_outside_the_upstreams_pattern_is_a_400_and_never_sent(guarded,
                                                                        demo_upstream):
    answer = guarded.http.get("/upstream/demo/1234")
    assert answer.status_code == 400
    body = json.loads(answer.body)
    assert body["field"] == "item" and "[0-9]{1,3}" in body["message"]
    assert demo_upstream.total_calls() == 0


def test_upstream_calls_a_second_are_capped(guarded, demo_upstream):
    import time

    started = time.monotonic()
    answers = [guarded.http.get(f"/upstream/demo/{i}") for i in range(1, 9)]  # all misses
    statuses = [a.status_code for a in answers]
    seconds = int(time.monotonic()) - int(started) + 1  # the guard's windows spanned
    assert demo_upstream.total_calls() == statuses.count(200) <= 2 * seconds, statuses
    assert set(statuses) == {200, 429}
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["RateLimit-Policy"].startswith("upstream-demo;q=2;w=1, public-read;")


def test_a_failing_upstream_is_not_called_while_its_circuit_is_open(guarded, demo_upstream):
    import time

    demo_upstream.mode = "fail"
    first = [guarded.http.get(f"/upstream/demo/{i}") for i in (1, 2)]
    time.sleep(1.05)  # a new second: the call budget is not what refuses next
    started = time.monotonic()
    shed = guarded.http.get("/upstream/demo/3")
    assert [a.status_code for a in first] == [502, 502]
    assert shed.status_code == 503 and time.monotonic() - started < 0.5
    assert shed.headers["Retry-After"] and "2 times in a row" in json.loads(shed.body)["message"]
    assert demo_upstream.total_calls() == 2
