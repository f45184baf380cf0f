"""Every route, fed untrusted input: never a 5xx, and every refusal is the one error shape.

The routes come from the app itself (`app.routes`), so a new route is fuzzed without a
line here.  Inputs mix valid and hostile values for the names the routes read (so the
fuzzer gets past the first check), arbitrary path segments (percent-encoded bytes,
any Unicode), arbitrary headers the routes look at, and arbitrary bodies (bytes, JSON
of any shape, objects with the expected keys and wrong values).  Against the real local
stack (Redis, memcached, moto, a demo upstream), healthy: so a 5xx is always our bug.
"""
from __future__ import annotations

import json
from urllib.parse import quote, quote_from_bytes, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import app as pulse_app

ROUTES = sorted((method, path) for path, entry in pulse_app.app.routes.items()
                for method in entry)
# The short link a phone opens answers its refusals as a small HTML page, unless the
# caller's Accept names JSON (checked apart below).
SHORT_LINK = ("GET", "/r/{code}")
JSON_ROUTES = [(m, p) for m, p in ROUTES if p != "/" and not p.startswith("/ui/")
               and (m, p) != SHORT_LINK]
ERROR_STATUSES = {400, 404, 405, 409, 410, 413, 415, 422, 429}
# the names the routes read, so that values reach the checks behind the first one
QUERY_NAMES = ["window", "n", "offset", "board", "order", "neighbours", "top", "redirect",
               "page", "session"]
BODY_NAMES = ["url", "format", "size", "border", "error_correction", "fg", "bg", "id",
              "page", "session", "clicks", "x", "y", "t"]

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
numbers = st.one_of(st.integers(min_value=-10**30, max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True))
words = st.sampled_from(["1h", "24h", "7d", "all", "top", "rising", "0", "1", "10", "-1",
                         "1e3", "  5 ", "٣", "png", "svg", "default", "https://example.com/",
                         "\x00", "%", "#tag", "{x}", "a" * 300, "9" * 5000])
query_value = st.one_of(words, text, numbers.map(str))
segment = st.one_of(
    words.map(lambda w: quote(w, safe="")),
    text.filter(bool).map(lambda t: quote(t, safe="")),
    st.binary(min_size=1, max_size=30).map(lambda b: quote_from_bytes(b, safe="")),
    st.sampled_from(["demo", "..", "%2e%2e", "%2F", "abcdefabcdefabcdefabcdefabcdefab"]))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | text | words,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.one_of(st.sampled_from(BODY_NAMES), text), inner, max_size=5),
    max_leaves=12)
# values that pass a route's checks, mixed with the rest, so some requests get through
urls = st.one_of(st.sampled_from([
    "https://example.com/", "http://例え.jp/パス?q=1#f", "https://a.example/" + "x" * 2500,
    "https://[::1]:8080/", "https://user:pw@example.com/", "javascript:alert(1)",
    "ftp://example.com/", "https://exa mple.com/", "https://xn--/"]), text)
units = st.one_of(st.floats(min_value=0, max_value=1), json_values)
millis = st.one_of(st.integers(min_value=1_600_000_000_000, max_value=1_900_000_000_000),
                   json_values)
clickish = st.fixed_dictionaries({"x": units, "y": units, "t": millis})
good_or = {"url": urls, "format": st.sampled_from(["png", "svg", "gif"]) | json_values,
           "size": st.integers(-5, 60) | json_values, "border": st.integers(-1, 20) | json_values,
           "error_correction": st.sampled_from(["L", "M", "Q", "H", "X"]) | json_values,
           "page": st.sampled_from(["home", "a:b.c-d", "x" * 65]) | json_values,
           "session": st.sampled_from(["s1", "ü"]) | json_values}
body_object = st.fixed_dictionaries({}, optional={
    **{name: json_values for name in BODY_NAMES}, **good_or,
    "clicks": st.one_of(json_values, st.lists(clickish, min_size=1, max_size=3))})
nearly_valid = st.one_of(
    st.fixed_dictionaries({"url": urls}, optional={k: good_or[k] for k in (
        "format", "size", "border", "error_correction")}),
    st.fixed_dictionaries({"page": st.sampled_from(["home", "a:b.c-d"]),
                           "clicks": st.lists(st.fixed_dictionaries({
                               "x": st.floats(0, 1), "y": st.floats(0, 1),
                               "t": st.integers(1_600_000_000_000, 1_900_000_000_000)}),
                               min_size=1, max_size=3) | st.lists(clickish, min_size=1)},
                          optional={"session": good_or["session"]}))
bodies = st.one_of(
    st.none(),
    nearly_valid.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    nearly_valid.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    body_object.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.just(b"[" * 5000 + b"]" * 5000),
    st.just(b'{"url": "https://example.com/", "url": "https://example.org/"}'))
headers = st.fixed_dictionaries({}, optional={
    "If-None-Match": st.one_of(text, st.just("*"), st.just('W/"x", "y"')),
    "Accept": st.sampled_from(["*/*", "image/png", "image/svg+xml", "text/html",
                               "application/json", "\u00e9"]),
    "Content-Type": st.sampled_from(["application/json"] * 4 + [
        "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded"])})


@pytest.fixture
def fuzz_client(pulse_env, demo_upstream, monkeypatch):
    """The app over the healthy local stack, with the demo upstream as `demo`."""
    from chalice.test import Client

    from tests.conftest import ROOT, reset_clients, upstreams_json

    monkeypatch.setenv("UPSTREAMS", upstreams_json(demo_upstream.base_url, ttl=60, timeout=1))
    reset_clients()
    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        yield client


def request_for(draw, method: str, template: str) -> tuple[str, dict, bytes | None]:
    path = "/".join(draw(segment) if part.startswith("{") else part
                    for part in template.split("/"))
    query = draw(st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), text),
                                    query_value), max_size=4))
    if query:
        path += "?" + urlencode(query)
    body = draw(bodies) if method in ("POST", "PUT", "PATCH") else None
    return path, draw(headers), body


def check_answer(method: str, template: str, path: str, response, accept: str = "") -> None:
    where = f"{method} {path}"
    assert response.status_code < 500, (where, response.status_code, response.body[:300])
    if (method, template) == SHORT_LINK and response.status_code >= 400:
        assert response.status_code in ERROR_STATUSES, (where, response.status_code)
        # the route's own 404/410 follow Accept; Chalice's refusals (415...) are JSON
        wanted = "text/html" if response.status_code in (404, 410) \
            and "application/json" not in accept else "application/json"
        assert response.headers.get("Content-Type", "").startswith(wanted), where
        return
    if (method, template) not in JSON_ROUTES or response.status_code < 400:
        return
    assert response.status_code in ERROR_STATUSES, (where, response.status_code)
    if method == "HEAD":  # the GET's status and headers, no body
        assert response.body == b"", where
        return
    assert response.headers.get("Content-Type", "").startswith("application/json"), where
    body = json.loads(response.body)
    assert isinstance(body.get("error"), str) and body["error"], (where, body)
    assert isinstance(body.get("message"), str) and body["message"], (where, body)


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_untrusted_input_never_gives_a_5xx_and_refusals_share_one_shape(
        fuzz_client, method, template, data):
    path, hdrs, body = request_for(data.draw, method, template)
    response = fuzz_client.http.request(method, path, headers=hdrs, body=body or b"")
    event(f"status {response.status_code}")  # --hypothesis-show-statistics: what it reached
    check_answer(method, template, path, response, hdrs.get("Accept", ""))


def test_every_json_route_is_fuzzed():
    # the table comes from the app: a new route is in it (and an empty table fails)
    assert ("POST", "/qr") in JSON_ROUTES and ("GET", "/leaderboard/{hashtag}") in JSON_ROUTES
    assert SHORT_LINK in ROUTES
    assert len(JSON_ROUTES) >= 9


@pytest.mark.parametrize(("method", "path", "headers", "status", "error"), [
    ("DELETE", "/qr", {}, 405, "MethodNotAllowedError"),
    ("POST", "/clicks", {"Content-Type": "text/plain"}, 415, "UnsupportedMediaType"),
])
def test_chalices_own_refusals_come_in_the_same_shape(app_client, method, path, headers,
                                                      status, error):
    response = app_client.http.request(method, path, headers=headers, body=b"{}")
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = json.loads(response.body)
    assert body["error"] == error and body["message"]  # not Chalice's {"Code", "Message"}


# --- text that is not Unicode: a 400 naming where it is, on every route ---
import local.chalice_local  # noqa: E402,F401  (the local server's query decoding, in-process)

NOT_UTF8 = st.sampled_from(["%ED%A0%80", "%ED%BF%BF", "%C0%AF", "%E0%80%AF", "%FF", "%80",
                            "%E2%82", "%F8%88%80%80%80"])
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
PLAIN = st.text(st.characters(min_codepoint=0x30, max_codepoint=0x7A).filter(str.isalnum),
                max_size=8)


def example_body(template: str) -> dict:
    operation = pulse_app.api_document()["paths"][template]["post"]
    return json.loads(json.dumps(
        operation["requestBody"]["content"]["application/json"]["example"]))


def string_fields(value, where: str = "") -> list[str]:
    """The paths (`url`, `clicks[0].page`) of the strings in a JSON value."""
    if isinstance(value, str):
        return [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in string_fields(v, f"{where}.{k}"
                                                                   if where else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in string_fields(v, f"{where}[{i}]")]
    return []


def put_at(value, where: str, new: str):
    import re as _re

    parts = _re.findall(r"[^.\[\]]+|\[\d+\]", where)
    *outer, last = parts
    for part in outer:
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    if last.startswith("["):
        value[int(last[1:-1])] = new
    else:
        value[last] = new


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_text_that_is_not_unicode_is_a_400_naming_where_it_is(fuzz_client, method, template,
                                                              data):
    params = [part[1:-1] for part in template.split("/") if part.startswith("{")]
    places = ["query"] + (["path"] if params else []) + (["body", "bytes"]
                                                         if method == "POST" else [])
    place = data.draw(st.sampled_from(places))
    path, body, expected = template, None, None
    prefix, suffix = data.draw(PLAIN), data.draw(PLAIN)
    if method == "POST":
        body = json.dumps(example_body(template)).encode()
    if place == "path":
        expected = data.draw(st.sampled_from(params))
    for name in params:
        value = prefix + data.draw(NOT_UTF8) + suffix if name == expected else "x"
        path = path.replace("{" + name + "}", value)
    if place == "query":
        expected = data.draw(st.sampled_from(QUERY_NAMES))
        path += f"?{expected}={quote(prefix)}{data.draw(NOT_UTF8)}{quote(suffix)}"
    elif place == "body":
        doc = example_body(template)
        expected = data.draw(st.sampled_from(string_fields(doc)))
        put_at(doc, expected, prefix + data.draw(SURROGATES) + suffix)
        body = json.dumps(doc).encode()  # ensure_ascii: the surrogate as a \\udXXX escape
    elif place == "bytes":
        expected = "body"
        raw = data.draw(NOT_UTF8)
        bad = bytes(int(h, 16) for h in raw.split("%")[1:])
        body = body.replace(b'"', b'"' + bad, 1)
    response = fuzz_client.http.request(method, path, body=body or b"",
                                        headers={"Content-Type": "application/json"})
    event(f"{place}")
    assert response.status_code == 400, (method, path, body, response.status_code,
                                         response.body[:300])
    if method != "HEAD":
        answer = json.loads(response.body)
        assert answer["field"] == expected, (method, path, body, answer)


def test_a_lone_surrogate_in_a_qr_url_is_a_400_naming_url(fuzz_client):
    response = fuzz_client.http.post("/qr", headers={"Content-Type": "application/json"},
                                     body=b'{"url": "http://example.com/\\ud800"}')
    assert response.status_code == 400, response.body
    assert json.loads(response.body)["field"] == "url"
