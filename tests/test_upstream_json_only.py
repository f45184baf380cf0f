"""/upstream passes JSON through and nothing else: an upstream answering HTML, text, an
image or "JSON" that does not parse is a 502 naming what it sent, never its page served
from our domain."""
from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import pytest

from tests.conftest import QuietHandler

# path -> (Content-Type, body) the upstream answers
ANSWERS = {
    "/html": ("text/html; charset=utf-8", b"<script>alert(document.domain)</script>"),
    "/text": ("text/plain", b"hello"),
    "/png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    "/none": ("", b"<b>no type</b>"),  # read as JSON (upstreams.py), and it is not
    "/broken": ("application/json", b"<html>not json</html>"),
    "/json": ("application/json; charset=utf-8", b'{"ok": true}'),
    "/problem": ("application/problem+json", b'{"title": "fine"}'),
}


@pytest.fixture(scope="module")
def odd_upstream():
    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            content_type, body = ANSWERS[self.path]
            self.answer(body, {"Content-Type": content_type} if content_type else {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def odd_client(memcached_env, odd_upstream, monkeypatch):
    from chalice.test import Client

    import app as pulse_app
    from tests.conftest import ROOT, reset_clients

    monkeypatch.setenv("UPSTREAMS", json.dumps({"odd": {
        "url": f"{odd_upstream}/json", "item_url": odd_upstream + "/{item}", "ttl": 60,
        "timeout": 1, "item_pattern": "[a-z]{1,9}"}}))  # the items here are ANSWERS' names
    reset_clients()
    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        yield client


@pytest.mark.parametrize(("item", "named"), [("html", "text/html"), ("text", "text/plain"),
                                             ("png", "image/png"),
                                             ("none", "not UTF-8 JSON"),
                                             ("broken", "not UTF-8 JSON")])
def test_anything_but_json_is_a_502_naming_its_content_type(odd_client, item, named):
    response = odd_client.http.get(f"/upstream/odd/{item}", headers={"Accept": "*/*"})
    assert response.status_code == 502, response.body
    assert response.headers["Content-Type"] == "application/json"
    body = json.loads(response.body)
    assert body["error"] == "BadGateway" and named in body["message"], body
    assert b"<script>" not in response.body


@pytest.mark.parametrize(("item", "content_type"), [
    ("json", "application/json; charset=utf-8"),
    ("problem", "application/problem+json; charset=utf-8")])
def test_json_is_passed_through_as_json(odd_client, item, content_type):
    response = odd_client.http.get(f"/upstream/odd/{item}")
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(response.body) == json.loads(ANSWERS[f"/{item}"][1])
