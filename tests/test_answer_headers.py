"""Every route's answers carry the headers that keep them safe to serve on our domain: an
explicit Cache-Control and `nosniff` on every answer (JSON, images, redirects, errors,
pages), and on JSON answers a CSP that loads nothing and forbids framing plus a
Referrer-Policy.  The routes come from `app.routes` and their valid parameters from the
OpenAPI document's examples, so a new route is checked without a line here."""
from __future__ import annotations

import json
import time

import pytest

import app as pulse_app
from chalicelib.hotspots.api import EXAMPLE_PAGE
from chalicelib.leaderboard.api import EXAMPLE_TAG
from chalicelib.qr.api import EXAMPLE_CODE, EXAMPLE_URL

DOCUMENT = pulse_app.api_document()
ROUTES = sorted((method, path) for path, entry in pulse_app.app.routes.items()
                for method in entry)


def valid_request(method: str, template: str) -> tuple[str, bytes | None]:
    """The route's path with the document's example parameters, and its example body."""
    operation = DOCUMENT["paths"][template][method.lower()]
    path, query = template, []
    for param in operation.get("parameters", []):
        example = param.get("example", param["schema"].get("example"))
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", example)
        elif param.get("required"):
            query.append(f"{param['name']}={example}")
    body = None
    if "requestBody" in operation:
        body = json.dumps(operation["requestBody"]["content"]["application/json"]["example"])
    return path + ("?" + "&".join(query) if query else ""), body and body.encode()


@pytest.fixture(scope="module")
def seeded_client(stack_env, session_upstream):
    """The app over a clean local stack holding what the examples name: a counted tag, a
    QR code of the example URL, a clicked page; `demo` is the demo upstream.  One world
    for the module: the requests here only read, or make what is already made."""
    from chalice.test import Client

    from chalicelib.clients import get_redis
    from chalicelib.hotspots.wiring import get_store
    from chalicelib.leaderboard.model import Tweet
    from chalicelib.leaderboard.store import Leaderboard
    from tests.conftest import ROOT, clean_world, reset_clients, upstreams_json

    with pytest.MonkeyPatch.context() as mp:
        world = clean_world(mp, stack_env, UPSTREAMS=upstreams_json(
            session_upstream.base_url, ttl=60, timeout=1))
        now = time.time()
        Leaderboard(get_redis(), world.leaderboard_name).record(
            [Tweet(1 + i, now - 60, (EXAMPLE_TAG,)) for i in range(3)])
        get_store().apply(EXAMPLE_PAGE, "shardId-000000000000",
                          [("1", int(now * 1000), 0.5, 0.5)])
        with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
            made = client.http.post("/qr", headers={"Content-Type": "application/json"},
                                    body=json.dumps({"url": EXAMPLE_URL}).encode())
            assert made.status_code in (200, 201), made.body
            with pytest.MonkeyPatch.context() as drawn:
                drawn.setattr("chalicelib.qr.codes.new_code", lambda: EXAMPLE_CODE)
                assert dynamic_code(client) == EXAMPLE_CODE
            yield client
        reset_clients()


def dynamic_code(client) -> str:
    """A new dynamic code of the example URL: its code."""
    made = client.http.post("/qr", headers={"Content-Type": "application/json"},
                            body=json.dumps({"url": EXAMPLE_URL, "dynamic": True}).encode())
    assert made.status_code == 201, made.body
    return json.loads(made.body)["code"]


def assert_safe_headers(response, where: str) -> None:
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert headers.get("cache-control"), (where, headers)
    assert headers.get("x-content-type-options") == "nosniff", (where, headers)
    assert headers.get("referrer-policy"), (where, headers)
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, (where, headers)
    assert "unsafe-inline" not in csp, (where, csp)
    if headers.get("content-type", "").startswith("application/json"):
        assert "default-src 'none'" in csp, (where, csp)


def send(client, method: str, path: str, body: bytes | None, **headers):
    return client.http.request(method, path, body=body or b"",
                               headers={"Content-Type": "application/json", "Accept": "*/*",
                                        **headers})


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_answers_with_the_safe_headers_on_success_and_on_error(
        seeded_client, method, template):
    path, body = valid_request(method, template)
    if (method, template) == ("DELETE", "/qr/{qr_id}"):  # retire a code of its own
        path = f"/qr/{dynamic_code(seeded_client)}"
    ok = send(seeded_client, method, path, body)
    success = (302,) if template == "/r/{code}" else range(200, 300)  # a short link redirects
    assert ok.status_code in success, (method, path, ok.status_code, ok.body[:300])
    assert_safe_headers(ok, f"{method} {path} {ok.status_code}")
    # Chalice refuses a Content-Type other than JSON on every route: an error answer
    refused = send(seeded_client, method, path, body, **{"Content-Type": "text/plain"})
    assert refused.status_code == 415, (method, path, refused.status_code)
    assert_safe_headers(refused, f"{method} {path} 415")


def test_a_redirect_and_a_not_found_carry_them_too(seeded_client):
    qr_id = DOCUMENT["paths"]["/qr/{qr_id}"]["get"]["parameters"][0]["example"]
    redirect = seeded_client.http.get(f"/qr/{qr_id}?redirect=1")
    assert redirect.status_code == 302
    assert_safe_headers(redirect, "302")
    missing = seeded_client.http.get("/qr/" + "a" * 32)
    assert missing.status_code == 404
    assert_safe_headers(missing, "404")
    assert missing.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("template", sorted(p for m, p in ROUTES if m == "GET"))
def test_head_answers_the_gets_status_and_headers_without_a_body(seeded_client, template):
    path, _ = valid_request("GET", template)
    got = send(seeded_client, "GET", path, None)
    head = send(seeded_client, "HEAD", path, None)
    assert head.status_code == got.status_code
    assert head.body == b""
    # what changes from one request to the next: the rate limit's remaining count among them
    skip = {"content-length", "age", "date", "x-cache", "ratelimit"}
    assert {k.lower(): v for k, v in head.headers.items() if k.lower() not in skip} == \
        {k.lower(): v for k, v in got.headers.items() if k.lower() not in skip}


def test_every_get_route_has_a_head():
    gets = {p for m, p in ROUTES if m == "GET"}
    assert gets and gets == {p for m, p in ROUTES if m == "HEAD"}
