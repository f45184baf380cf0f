"""Dynamic QR codes on the local stack: the short link in the image, the redirect and its
rules, edits seen at once, retirement, and scans counted without storing who scanned."""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request

import pytest

from chalicelib.clients import get_aws_client, reset_clients
from tests.conftest import paused
from tests.qr_support import JSON, decode_png, fetch

BASE = "http://pulse.test"

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Mobile Safari/537.36")
SAMSUNG = ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like "
           "Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")
MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
       "Gecko) Version/17.4 Safari/605.1.15")
# Search crawlers and link-preview fetchers (chat apps and social networks unfurling a link).
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "WhatsApp/2.23.20.0 A",
    "TelegramBot (like TwitterBot)",
    "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "curl/8.5.0",
    "",
]
PHONES = [IPHONE, ANDROID, SAMSUNG, IPAD]


@pytest.fixture
def dyn_client(app_client, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    reset_clients()
    return app_client


@pytest.fixture
def fixed_salt(dyn_client):
    """Today's visitor salt fixed for the app's scan counter. The salt is random per day,
    and with it which HyperLogLog registers the visitors land in; two hashes that share one
    make the estimate read one fewer (about 5 % of the time at 40 visitors), so a test that
    compares estimates with the truth fixes it, making each run land the same."""
    from chalicelib.qr import wiring
    from chalicelib.qr.scans import SALT_SECONDS, day_of

    counter = wiring.get_scan_counter()
    counter.flush(5)
    exact = getattr(counter, "counter", counter)  # the background sender wraps it
    exact.redis.set(f"pulse:scan:salt:{day_of(time.time())}", "c" * 64, ex=SALT_SECONDS)
    exact._salts = {}


def create(client, body: dict) -> tuple[int, dict]:
    resp = client.http.post("/qr", headers=JSON, body=json.dumps({"dynamic": True, **body}))
    return resp.status_code, json.loads(resp.body)


def patch(client, qr_id: str, body) -> tuple[int, dict]:
    raw = body if isinstance(body, str) else json.dumps(body)
    resp = client.http.patch(f"/qr/{qr_id}", headers=JSON, body=raw)
    return resp.status_code, json.loads(resp.body)


def scan(client, code: str, ua: str = IPHONE, query: str = "", **headers):
    resp = client.http.get(f"/r/{code}{query}", headers={"User-Agent": ua, **headers})
    return resp


def report(client, code: str, days: int = 1) -> dict:
    resp = client.http.get(f"/qr/{code}/scans?days={days}")
    assert resp.status_code == 200, resp.body
    return json.loads(resp.body)


def test_the_image_encodes_the_short_link_which_redirects_to_the_target(dyn_client):
    status, body = create(dyn_client, {"url": "https://example.com/spring?src=poster"})
    assert status == 201, body
    code = body["code"]
    assert body["id"] == code and 7 <= len(code) <= 10
    assert body["short_url"] == f"{BASE}/r/{code}"
    assert body["target"] == "https://example.com/spring?src=poster"
    image = dyn_client.http.get(f"/qr/{code}", headers={"Accept": "image/png"})
    assert image.status_code == 200
    assert decode_png(image.body) == [body["short_url"]]
    _, _, presigned = fetch(body["image_url"])
    assert decode_png(presigned) == [body["short_url"]]

    resp = scan(dyn_client, body["short_url"].removeprefix(f"{BASE}/r/"))
    assert resp.status_code == 302
    assert resp.headers["Location"] == "https://example.com/spring?src=poster"
    assert resp.headers["Cache-Control"] == "private, no-store"


def gateway_event(method: str, resource: str, full_path: str, domain: str, body: str) -> dict:
    """A REST API proxy event as API Gateway sends it: `full_path` is the path the caller
    used (the stage first on an execute-api URL), `resource` the route's."""
    return {"resource": resource, "path": resource, "httpMethod": method,
            "headers": {"content-type": "application/json", "host": domain},
            "multiValueHeaders": {}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": body, "isBase64Encoded": False,
            "requestContext": {"resourcePath": resource, "httpMethod": method,
                               "path": full_path, "domainName": domain, "stage": "api",
                               "requestId": "r-1", "identity": {"sourceIp": "192.0.2.7"}}}


@pytest.mark.parametrize("domain, full_path, origin", [
    ("a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "/api/qr",
     "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/api"),
    ("go.example.org", "/qr", "https://go.example.org"),
    ("go.example.org", "/campaign/qr", "https://go.example.org/campaign"),
])
def test_without_public_base_url_a_deployed_stage_links_where_it_was_called(
        app_client, monkeypatch, domain, full_path, origin):
    # `make deploy` learns the API's URL only once it exists: without PUBLIC_BASE_URL the
    # short link is on the URL the team called (execute-api with its stage, or a custom
    # domain with its base path), which then answers the scan.
    from chalice.local import LambdaContext

    import app as pulse_app

    monkeypatch.setenv("PULSE_STAGE", "dev")
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    reset_clients()
    event = gateway_event("POST", "/qr", full_path, domain,
                          json.dumps({"dynamic": True, "url": "https://example.com/fall"}))
    answer = pulse_app.app(event, LambdaContext("api_handler", 512))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 201, body
    assert body["short_url"] == f"{origin}/r/{body['code']}"
    monkeypatch.setenv("PULSE_STAGE", "local")
    reset_clients()
    resp = scan(app_client, body["code"])
    assert resp.status_code == 302 and resp.headers["Location"] == "https://example.com/fall"


def test_the_item_has_no_ttl_and_codes_differ(dyn_client, pulse_env):
    codes = {create(dyn_client, {"url": "https://example.com/"})[1]["code"] for _ in range(5)}
    assert len(codes) == 5
    items = get_aws_client("dynamodb").scan(TableName=pulse_env.qr_table)["Items"]
    dynamic = [i for i in items if i["pk"]["S"].startswith("dyn#")]
    assert len(dynamic) == 5 and not any("ttl" in i for i in dynamic)


def test_scan_query_parameters_are_forwarded_and_merged(dyn_client):
    _, body = create(dyn_client, {"url": "https://example.com/p?utm_source=poster&a=1"})
    resp = scan(dyn_client, body["code"], query="?utm_source=flyer&b=2&b=3")
    assert resp.status_code == 302
    assert resp.headers["Location"] == \
        "https://example.com/p?a=1&utm_source=flyer&b=2&b=3"


def test_an_edit_changes_where_the_same_image_goes(dyn_client):
    _, body = create(dyn_client, {"url": "https://example.com/old"})
    code = body["code"]
    before = dyn_client.http.get(f"/qr/{code}", headers={"Accept": "image/png"}).body
    assert scan(dyn_client, code).headers["Location"] == "https://example.com/old"  # cached
    status, changed = patch(dyn_client, code, {"target": "https://example.com/new"})
    assert status == 200 and changed["target"] == "https://example.com/new"
    after = dyn_client.http.get(f"/qr/{code}", headers={"Accept": "image/png"}).body
    assert decode_png(after) == decode_png(before) == [f"{BASE}/r/{code}"]
    assert scan(dyn_client, code).headers["Location"] == "https://example.com/new"


def test_rules_by_device_and_language_first_match_wins(dyn_client):
    _, body = create(dyn_client, {"url": "https://example.com/", "rules": [
        {"device": "ios", "target": "https://apps.apple.com/app/pulse"},
        {"device": "android", "language": "de", "target": "https://example.com/de-android"},
        {"device": "android", "target": "https://play.google.com/store/apps/pulse"},
        {"language": "fr", "target": "https://example.com/fr"},
        {"device": "mobile", "target": "https://example.com/m"},
        {"device": "desktop", "language": "pt-br", "target": "https://example.com/br"},
    ]})
    code = body["code"]
    cases = [
        (IPHONE, "fr-FR,fr;q=0.9", "https://apps.apple.com/app/pulse"),  # ios before fr
        (IPAD, None, "https://apps.apple.com/app/pulse"),
        (ANDROID, "de-AT,de;q=0.9", "https://example.com/de-android"),
        (SAMSUNG, "en-GB", "https://play.google.com/store/apps/pulse"),
        (DESKTOP, "en-US,fr;q=0.5", "https://example.com/fr"),
        (DESKTOP, "en-US,fr;q=0", "https://example.com/"),  # q=0: not acceptable
        (MAC, "pt-BR", "https://example.com/br"),
        (DESKTOP, "pt-PT", "https://example.com/"),  # pt-br wants that region
        (DESKTOP, None, "https://example.com/"),
    ]
    for ua, language, expected in cases:
        headers = {"Accept-Language": language} if language else {}
        resp = scan(dyn_client, code, ua, **headers)
        assert resp.headers["Location"] == expected, (ua, language)
    # rules replaced by a PATCH are what the next scan follows
    assert patch(dyn_client, code, {"rules": [
        {"device": "mobile", "target": "https://example.com/phones"}]})[0] == 200
    assert scan(dyn_client, code, IPHONE).headers["Location"] == "https://example.com/phones"
    assert scan(dyn_client, code, DESKTOP).headers["Location"] == "https://example.com/"


def test_bots_and_link_previews_are_counted_apart_from_phones(dyn_client, fixed_salt):
    _, body = create(dyn_client, {"url": "https://example.com/"})
    code = body["code"]
    for ua in BOTS:
        assert scan(dyn_client, code, ua).status_code == 302  # bots are redirected too
    for ua in PHONES + [DESKTOP, MAC]:
        scan(dyn_client, code, ua)
    got = report(dyn_client, code)
    today = got["days"][0]
    assert today["bots"] == len(BOTS)
    assert today["humans"] == len(PHONES) + 2
    assert today["devices"] == {"ios": 2, "android": 2, "mobile": 0, "desktop": 2, "other": 0}
    assert today["unique_visitors"] == len(PHONES) + 2  # same address, different agents
    assert got["totals"]["humans"] == today["humans"] and got["totals"]["bots"] == len(BOTS)


def test_a_deleted_code_is_gone_and_an_unknown_one_not_found(dyn_client):
    _, body = create(dyn_client, {"url": "https://example.com/"})
    code = body["code"]
    scan(dyn_client, code)  # a cached copy exists
    resp = dyn_client.http.delete(f"/qr/{code}")
    assert resp.status_code == 200 and json.loads(resp.body)["deleted_at"]
    gone = scan(dyn_client, code, Accept="application/json")
    assert gone.status_code == 410 and json.loads(gone.body)["error"] == "Gone"
    page = scan(dyn_client, code, Accept="text/html")
    assert page.status_code == 410 and page.headers["Content-Type"].startswith("text/html")
    assert b"410" in page.body
    assert patch(dyn_client, code, {"target": "https://example.com/x"})[0] == 410
    assert dyn_client.http.delete(f"/qr/{code}").status_code == 410
    for unknown in ("abcdefghij", "not-a-code", "x" * 200):
        resp = scan(dyn_client, unknown, Accept="application/json")
        assert resp.status_code == 404 and json.loads(resp.body)["error"] == "NotFound"
    resp = scan(dyn_client, "abcdefghij")
    assert resp.status_code == 404 and b"<h1>404" in resp.body
    assert dyn_client.http.delete("/qr/abcdefghij").status_code == 404
    assert dyn_client.http.get("/qr/abcdefghij/scans").status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "https://u:p@example.com/"}, "url"),
    ({"url": "https://example.com/" + "a" * 2040}, "url"),
    ({"url": "https://example.com/", "dynamic": "yes"}, "dynamic"),
    ({"url": "https://example.com/", "rules": {}}, "rules"),
    ({"url": "https://example.com/", "rules": ["x"]}, "rules[0]"),
    ({"url": "https://example.com/", "rules": [{"target": "https://e.com"}]}, "rules[0]"),
    ({"url": "https://example.com/", "rules": [{"device": "tv", "target": "https://e.com"}]},
     "rules[0].device"),
    ({"url": "https://example.com/", "rules": [{"language": "french!",
                                                 "target": "https://e.com"}]},
     "rules[0].language"),
    ({"url": "https://example.com/", "rules": [{"device": "ios"}]}, "rules[0].target"),
    ({"url": "https://example.com/", "rules": [{"device": "ios", "target": "ftp://e.com"}]},
     "rules[0].target"),
    ({"url": "https://example.com/", "rules": [{"device": "ios", "os": "x",
                                                 "target": "https://e.com"}]},
     "rules[0].os"),
    ({"url": "https://example.com/", "rules": [{"device": "ios",
                                                 "target": "https://e.com"}] * 11}, "rules"),
])
def test_bad_creations_are_400_naming_the_field(dyn_client, body, field):
    status, answer = create(dyn_client, body)
    assert status == 400 and answer["field"] == field, answer


def test_rules_without_dynamic_are_refused(dyn_client):
    resp = dyn_client.http.post("/qr", headers=JSON, body=json.dumps(
        {"url": "https://example.com/", "rules": []}))
    assert resp.status_code == 400 and json.loads(resp.body)["field"] == "rules"


@pytest.mark.parametrize("body, field", [
    ({"target": "javascript:alert(1)"}, "target"),
    ({"target": "https://user:pw@example.com/"}, "target"),
    ({"target": "https://example.com/" + "a" * 2040}, "target"),
    ({"target": 5}, "target"),
    ({"rules": "ios"}, "rules"),
    ({"rules": [{"device": "watch", "target": "https://e.com"}]}, "rules[0].device"),
    ({"url": "https://example.com/"}, "url"),
    ({}, "body"),
    ("[]", "body"),
    ("{", "body"),
])
def test_bad_edits_are_400_naming_the_field(dyn_client, body, field):
    _, made = create(dyn_client, {"url": "https://example.com/"})
    status, answer = patch(dyn_client, made["code"], body)
    assert status == 400 and answer["field"] == field, answer


@pytest.mark.parametrize("path, method, field", [
    ("/qr/abc/scans", "GET", "id"),
    ("/qr/abcdefghij/scans?days=0", "GET", "days"),
    ("/qr/abcdefghij/scans?days=91", "GET", "days"),
    ("/qr/abcdefghij/scans?days=x", "GET", "days"),
    ("/qr/" + "a" * 32, "DELETE", "id"),  # a static code cannot be retired
    ("/qr/short", "DELETE", "id"),
])
def test_bad_ids_and_days_are_400_naming_the_field(dyn_client, path, method, field):
    resp = getattr(dyn_client.http, method.lower())(path)
    assert resp.status_code == 400 and json.loads(resp.body)["field"] == field, resp.body


def test_scans_report_days_and_devices(dyn_client):
    _, body = create(dyn_client, {"url": "https://example.com/"})
    got = report(dyn_client, body["code"], days=3)
    assert [d["humans"] for d in got["days"]] == [0, 0, 0] and len(got["days"]) == 3
    assert got["days"][0]["date"] > got["days"][1]["date"]
    scan(dyn_client, body["code"], ANDROID)
    got = report(dyn_client, body["code"], days=3)
    assert got["days"][0]["humans"] == 1 and got["totals"]["devices"]["android"] == 1


# --- counting at scale, failures, privacy ---------------------------------------------

def _scan_direct(code: str, address: str, ua: str, lookup, counter) -> str:
    from chalicelib.qr import redirect

    return redirect.redirect(redirect.Scan(code, [], ua, None, address), lookup, counter)


def test_5000_concurrent_scans_are_counted_exactly(dyn_client):
    """Eight threads, 5,000 scans, half of them by a bot: the local stage's background
    sender batches them, and every one is counted once."""
    from chalicelib.qr import wiring

    _, body = create(dyn_client, {"url": "https://example.com/burst"})
    lookup, counter = wiring.get_cached_codes(), wiring.get_scan_counter()
    errors, per_thread = [], 625

    def worker(t: int):
        try:
            for i in range(per_thread):
                ua = IPHONE if i % 2 else BOTS[0]
                assert _scan_direct(body["code"], f"10.{t}.{i // 256}.{i % 256}", ua,
                                    lookup, counter) == "https://example.com/burst"
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert counter.flush(30)
    today = report(dyn_client, body["code"])["days"][0]
    assert today["humans"] + today["bots"] == 5000
    humans = 8 * sum(1 for i in range(per_thread) if i % 2)
    assert today["humans"] == humans and today["bots"] == 5000 - humans


def test_unique_visitors_within_two_percent_at_10000(dyn_client, fixed_salt):
    from chalicelib.qr import wiring

    _, body = create(dyn_client, {"url": "https://example.com/"})
    lookup, counter = wiring.get_cached_codes(), wiring.get_scan_counter()
    for i in range(10_000):
        _scan_direct(body["code"], f"198.51.{i // 256}.{i % 256}", ANDROID, lookup, counter)
    for i in range(2_000):  # the same visitors again: not new uniques
        _scan_direct(body["code"], f"198.51.{i // 256}.{i % 256}", ANDROID, lookup, counter)
    today = report(dyn_client, body["code"])["days"][0]
    assert today["humans"] == 12_000
    assert abs(today["unique_visitors"] - 10_000) / 10_000 < 0.02, today["unique_visitors"]


def test_redis_paused_redirects_still_answer_within_100_ms(dyn_client, own_redis, caplog):
    from chalicelib.qr import wiring

    _, body = create(dyn_client, {"url": "https://example.com/"})
    code = body["code"]
    assert scan(dyn_client, code).status_code == 302  # warm: memcached copy, Redis client
    timings = []
    with paused(own_redis), caplog.at_level(logging.WARNING, logger="pulse.qr.scans"):
        for _ in range(5):
            start = time.perf_counter()
            resp = scan(dyn_client, code)
            timings.append(time.perf_counter() - start)
            assert resp.status_code == 302
            assert resp.headers["Location"] == "https://example.com/"
        wiring.get_scan_counter().flush(2)
    assert max(timings) < 0.1, timings
    assert f"scan(s) of {code} not counted: Redis failed" in caplog.text


@pytest.mark.parametrize("send", ["inline", "background"])
def test_either_way_a_paused_redis_costs_a_redirect_at_most_its_timeout(
        dyn_client, own_redis, monkeypatch, send):
    """Inline, the first scan waits QR_SCAN_TIMEOUT (50 ms) and the next ones none (counting
    pauses a second after a failure); in the background none does; Redis back, scans
    count again."""
    from chalicelib.qr import wiring

    monkeypatch.setenv("QR_SCAN_SEND", send)
    reset_clients()
    _, body = create(dyn_client, {"url": "https://example.com/"})
    code = body["code"]
    assert scan(dyn_client, code).status_code == 302
    assert wiring.get_scan_counter().flush(2)  # counted before the pause
    own_redis.pause()
    try:
        timings = []
        for _ in range(20):
            start = time.perf_counter()
            assert scan(dyn_client, code).status_code == 302
            timings.append(time.perf_counter() - start)
        wiring.get_scan_counter().flush(2)
    finally:
        own_redis.resume()
    assert max(timings) < 0.1, timings
    time.sleep(1.1)  # counting resumes after its pause
    scan(dyn_client, code)
    # The first and the last count; of the 20 in between, only the batch that timed out
    # may (a paused Redis runs what it had read when it resumes): never any twice.
    humans = report(dyn_client, code)["days"][0]["humans"]
    assert 2 <= humans < 22, humans


def test_an_edit_reaches_every_scan_started_after_its_answer(live_app, monkeypatch):
    """Eight threads scan over HTTP while the target changes: no scan that started after
    the PATCH answered lands on the old target."""
    base = live_app
    req = urllib.request.Request(base + "/qr", method="POST", headers=JSON, data=json.dumps(
        {"url": "https://example.com/old", "dynamic": True}).encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        code = json.loads(resp.read())["code"]
    results: list[tuple[float, str]] = []
    stop = threading.Event()

    def scanner():
        while not stop.is_set():
            started = time.monotonic()
            status, headers, _ = fetch(f"{base}/r/{code}")
            assert status == 302
            results.append((started, headers["Location"]))

    threads = [threading.Thread(target=scanner) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    req = urllib.request.Request(f"{base}/qr/{code}", method="PATCH", headers=JSON,
                                 data=json.dumps({"target": "https://example.com/new"}).encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    answered = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    before = [loc for started, loc in results if started < answered]
    after = [loc for started, loc in results if started > answered]
    assert "https://example.com/old" in before and after
    assert set(after) == {"https://example.com/new"}, len(after)


def test_no_address_or_agent_is_stored_or_logged(dyn_client, pulse_env, caplog):
    from chalicelib.qr import wiring

    address, agent = "203.0.113.77", ANDROID.replace("Pixel 8", "Pixel 8 PulseProbe")
    _, body = create(dyn_client, {"url": "https://example.com/"})
    lookup, counter = wiring.get_cached_codes(), wiring.get_scan_counter()
    with caplog.at_level(logging.DEBUG):
        for ua in (agent, "PulseProbeBot/1.0 (+https://example.com/bot)"):
            _scan_direct(body["code"], address, ua, lookup, counter)
        scan(dyn_client, body["code"], agent)
        report(dyn_client, body["code"])
    assert report(dyn_client, body["code"])["days"][0]["humans"] == 2
    import redis

    raw = redis.Redis.from_url(pulse_env.redis_url)  # bytes: every key's whole value
    stored = []
    for key in raw.scan_iter("*"):
        stored.append(key.decode() + repr(raw.dump(key)))
        if raw.type(key) == b"hash":
            stored.append(repr(raw.hgetall(key)))
    raw.close()
    stored.append(json.dumps(get_aws_client("dynamodb").scan(
        TableName=pulse_env.qr_table)["Items"]))
    stores = "\n".join(stored)
    assert "pulse:scan:" in stores
    for secret in (address, "PulseProbe", "127.0.0.1"):  # 127.0.0.1: the Client's scan
        assert secret not in stores, secret
    for secret in (address, "PulseProbe"):
        assert secret not in caplog.text, secret


@pytest.mark.parametrize("where", ["standalone", "cluster"])
def test_counters_per_day_with_ttls_on_redis_and_the_cluster(request, where):
    """Two days of scans counted apart, every key with a TTL, on one Redis and on a
    three-master cluster (MemoryDB), where a code's keys share a slot."""
    import redis
    from redis.cluster import RedisCluster

    from chalicelib.qr.scans import SALT_SECONDS, ScanCounter

    if where == "standalone":
        client = redis.Redis(port=request.getfixturevalue("redis_server").port,
                             decode_responses=True)
    else:
        nodes = request.getfixturevalue("redis_cluster")
        client = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
    now = [1_790_000_000.0]  # 2026-09-21, UTC noon-ish
    counter = ScanCounter(client, days_kept=400, clock=lambda: now[0])
    code = "Tst" + str(int(time.time() * 1000))[-7:]
    # The salts are random per day, so the HyperLogLog's registers, and with them an
    # estimate that may read one fewer than the truth (two of 40 hashes share one of 16,384
    # registers about 5 % of the time), differ per run. Fixed salts make them the same each
    # run; these give exact estimates.
    for day, salt in (("2026-09-21", "a" * 64), ("2026-09-22", "b" * 64)):
        client.set(f"pulse:scan:salt:{day}", salt, ex=SALT_SECONDS)
    try:
        for i in range(30):
            assert counter.count(code, f"192.0.2.{i}", IPHONE, False, "ios")
        counter.count(code, "192.0.2.1", BOTS[0], True, "other")
        now[0] += 86400
        for i in range(10):
            counter.count(code, f"192.0.2.{i}", DESKTOP, False, "desktop")
        got = counter.report(code, 3)
        assert [(d["humans"], d["bots"]) for d in got["days"]] == [(10, 0), (30, 1), (0, 0)]
        assert [d["unique_visitors"] for d in got["days"]] == [10, 30, 0]
        assert got["totals"]["humans"] == 40 and got["totals"]["unique_visitors"] == 40
        assert got["totals"]["devices"]["ios"] == 30 and got["days"][0]["devices"]["desktop"] == 10
        keys = [k for k in client.scan_iter(f"pulse:scan:*{code}*")] + \
            [k for k in client.scan_iter("pulse:scan:salt:*")]
        assert len(keys) >= 5
        for key in keys:
            assert 0 < client.ttl(key) <= 400 * 86400, key
    finally:
        client.close()


def test_an_image_the_lifecycle_removed_is_rendered_again(dyn_client, pulse_env):
    _, body = create(dyn_client, {"url": "https://example.com/", "format": "png"})
    s3 = get_aws_client("s3")
    s3.delete_object(Bucket=pulse_env.qr_bucket, Key=f"qr/dynamic/{body['code']}.png")
    resp = dyn_client.http.get(f"/qr/{body['code']}", headers={"Accept": "image/png"})
    assert resp.status_code == 200 and decode_png(resp.body) == [body["short_url"]]
    s3.head_object(Bucket=pulse_env.qr_bucket, Key=f"qr/dynamic/{body['code']}.png")


def test_the_team_routes_need_the_api_key_outside_the_local_stage():
    import app as pulse_app
    from chalicelib.settings import Settings

    assert Settings.from_env({}).team_api_key_required is False
    for stage in ("dev", "prod"):
        assert Settings.from_env({"PULSE_STAGE": stage}).team_api_key_required is True
    assert Settings.from_env({"PULSE_STAGE": "prod", "TEAM_API_KEY_REQUIRED": "false"}
                             ).team_api_key_required is False
    routes = pulse_app.app.routes
    team = [routes["/qr/{qr_id}"]["PATCH"], routes["/qr/{qr_id}"]["DELETE"],
            routes["/qr/{qr_id}/scans"]["GET"]]
    assert not any(r.api_key_required for r in team)  # this process: the local stage
    # app.py imported as on prod (how `chalice package` reads the routes)
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = ("import app; r = app.app.routes; print([bool(r[p][m].api_key_required) for p, m "
              "in (('/qr/{qr_id}', 'PATCH'), ('/qr/{qr_id}', 'DELETE'), "
              "('/qr/{qr_id}/scans', 'GET'), ('/r/{code}', 'GET'))])")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, env={"PATH": os.environ["PATH"], "PULSE_STAGE": "prod"},
                         check=True, timeout=60).stdout
    assert out.strip() == "[True, True, True, False]"  # phones scan without a key
