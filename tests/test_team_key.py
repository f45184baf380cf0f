"""The team's routes behind the API key, on a stage that requires it, served by `chalice
local` with the local check that mirrors API Gateway's (local/chalice_local.py): POST /qr
and GET /health/details refused without the key, answered with it; the public routes
open; the QR page asks for the key, keeps it for the session and makes the code."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.conftest import chalice_local
from tests.qr_support import decode_png

KEY = "team-key-for-the-test-3f9a"


@pytest.fixture(scope="module")
def keyed_server(stack_env, stack_dir, session_upstream):
    """`chalice local` of the local stack on a stage that requires the team's key."""
    with chalice_local("chalice-local-keyed", stack_env, stack_dir,
                       upstream=session_upstream, TEAM_API_KEY_REQUIRED="true",
                       PULSE_LOCAL_API_KEY=KEY) as url:
        yield url


@pytest.fixture
def keyed_app(keyed_server, pulse_env) -> str:
    return keyed_server


def call(url: str, method: str = "GET", body: dict | None = None, **headers):
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_teams_routes_need_the_key_and_the_publics_do_not(keyed_app):
    for headers in ({}, {"x-api-key": "not-the-key"}):
        status, body = call(f"{keyed_app}/qr", "POST", {"url": "https://a.example/"}, **headers)
        assert (status, body["error"]) == (403, "Forbidden"), body
        status, body = call(f"{keyed_app}/health/details", **headers)
        assert (status, body["error"]) == (403, "Forbidden"), body
    status, body = call(f"{keyed_app}/qr", "POST", {"url": "https://a.example/"},
                        **{"x-api-key": KEY})
    assert status == 201, body
    status, details = call(f"{keyed_app}/health/details", **{"x-api-key": KEY})
    assert status == 200 and "dynamodb table" in details["dependencies"]["aws"]["detail"]
    status, public = call(f"{keyed_app}/health")  # anyone: ok/degraded and which, no detail
    assert status == 200 and public["status"] == "ok" and public["failing"] == []
    assert public["dependencies"]["aws"] == {"status": "ok"}
    assert call(f"{keyed_app}/qr")[0] == 200  # the statistics stay public
    assert call(f"{keyed_app}/leaderboard")[0] in (200, 404)


@pytest.mark.browser
def test_the_qr_page_asks_for_the_key_and_makes_the_code_with_it(page, keyed_app):
    page.goto(keyed_app + "/ui/qr")
    assert page.locator("#key-box").is_hidden()  # nothing asked before the stage refuses
    page.get_by_label("URL").fill("https://team.example/launch")
    page.get_by_role("button", name="Make the code").click()
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "API key" in error.inner_text()
    assert page.locator("#result").is_hidden()
    key_field = page.get_by_label("Team API key")
    assert key_field.is_visible()

    key_field.fill("not-the-key")
    page.get_by_role("button", name="Make the code").click()
    page.wait_for_function(
        "() => document.getElementById('error').innerText.includes('refused')")
    assert page.locator("#result").is_hidden()

    key_field.fill(KEY)
    page.get_by_role("button", name="Make the code").click()
    page.locator("#result").wait_for(state="visible")
    assert page.locator("#encoded").inner_text() == "https://team.example/launch"
    page.wait_for_function("() => document.getElementById('code').naturalWidth > 0")
    assert decode_png(page.locator("#code").screenshot()) == ["https://team.example/launch"]
    # kept for the session (sessionStorage), not beyond it (no localStorage, no cookie)
    assert page.evaluate("() => sessionStorage.getItem('pulse.teamApiKey')") == KEY
    assert page.evaluate("() => localStorage.length") == 0
    assert page.context.cookies() == []
    page.reload()
    assert page.get_by_label("Team API key").input_value() == KEY
