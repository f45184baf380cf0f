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


def test_the_largest_qr_image_allowed_stays_under_the_pixel_cap(app_client):
    import io

    from PIL import Image

    from chalicelib.qr.spec import MAX_PIXELS

    status, answer = post_qr(app_client, {"url": "https://example.com/" + "a" * 500,
                                          "size": 38, "border": 0, "error_correction": "L"})
    assert status == 201, answer
    image = app_client.http.get(f"/qr/{answer['id']}", headers={"Accept": "image/png"})
    width, height = Image.open(io.BytesIO(image.body)).size
    assert width == height == 77 * 38 and width * height <= MAX_PIXELS
