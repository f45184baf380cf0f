"""Every page as a visitor meets it, on a desktop (1280 px) and a phone (390 px): axe-core
finds no violation of any impact, the console has no error, no request fails, nothing
scrolls sideways and every control is at least 44 px for touch; on a fresh stack and again
after each page is used (tabs switched, a QR code made, clicks posted, the cache called).
Screenshots of each page at both widths go to .local/screenshots/.

And the answers themselves: every page and asset carries the security headers and an
explicit Cache-Control (no browser needed)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import app as pulse_app
from chalicelib import web
from tests.conftest import ROOT
from tests.qr_support import drain_qr_events

SHOTS = ROOT / ".local" / "screenshots"
WIDTHS = {"desktop": dict(viewport={"width": 1280, "height": 900}),
          "phone": dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                        device_scale_factor=2)}
PAGES = {"index": "/", "leaderboard": "/ui/leaderboard", "qr": "/ui/qr",
         "clicks": "/ui/clicks?page=a11y&poll=0.5&flush=200", "cache": "/ui/cache"}
# Controls a finger must hit: every button and form field, the tabs, and the links that
# are not inside a sentence.
TOUCH_TARGETS = ("button, input, select, [role=tab], header a, footer a, .features a, "
                 "#download")


@dataclass
class Watch:
    """What a page reports: console errors, uncaught exceptions, failed requests and
    4xx/5xx answers."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda r: self.problems.append(
            f"request failed: {r.method} {r.url} {r.failure}"))
        page.on("response", self._response)

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        self.problems.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def _response(self, resp) -> None:
        if resp.status >= 400:
            self.problems.append(f"{resp.status} {resp.request.method} {resp.url}")


def audit(page, watch: Watch, name: str) -> dict:
    """axe-core, sideways scroll, touch sizes and a screenshot of the page as it is now;
    returns what it found (empty lists when all is well)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"]})
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    small = page.eval_on_selector_all(TOUCH_TARGETS, """els => els
        .filter(e => e.offsetParent !== null)
        .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect()])
        .filter(([, r]) => r.height < 44 || r.width < 44)
        .map(([html, r]) => `${html} ${Math.round(r.width)}x${Math.round(r.height)}`)""")
    return {"axe": results.generate_report() if results.violations_count else "",
            "sideways scroll (px)": max(0, overflow), "under 44 px": small,
            "problems": list(watch.problems)}


def assert_clean(found: dict, name: str) -> None:
    clean = {"axe": "", "sideways scroll (px)": 0, "under 44 px": [], "problems": []}
    assert found == clean, f"{name}: {found}"


def settle(page, name: str) -> None:
    """Wait until the page shows what its first answers say (or its empty state)."""
    waits = {
        "index": "() => document.getElementById('health').textContent.includes('redis:')",
        "leaderboard": "() => !document.getElementById('status').textContent"
                       ".startsWith('Loading')",
        "clicks": "() => !document.getElementById('hotspots-state').textContent"
                  ".startsWith('Looking')",
    }
    if name in waits:
        page.wait_for_function(waits[name], timeout=10_000)
    else:  # the QR page's first GET /qr, or no request at all (the cache page)
        page.wait_for_load_state("networkidle")


def visit(context, base: str, name: str):
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(base + PAGES[name])
    settle(page, name)
    return page, watch


def use(page, name: str, settings) -> None:
    """Do on the page what a visitor comes for, and wait until it shows the outcome."""
    from local.events import EventRunner

    if name == "leaderboard":
        page.get_by_role("tab", name="24 hours").click()
        page.get_by_role("tab", name="Rising").click()
        page.get_by_role("tab", name="All time").click()
        page.get_by_text("3 hashtags in this window").wait_for()
        page.get_by_role("button", name="#spring").click()
        page.locator("#hourly").wait_for(state="visible")
    elif name == "qr":
        page.get_by_label("URL").fill("https://shop.example/spring?utm=qr")
        page.get_by_role("button", name="Make the code").click()
        page.wait_for_function("() => document.getElementById('code').naturalWidth > 0")
        events = EventRunner(pulse_app.app, settings=settings).setup()
        assert drain_qr_events(events, 3) == 1  # qr.created
        page.locator("#domains-section").wait_for(state="visible", timeout=15_000)
    elif name == "clicks":
        events = EventRunner(pulse_app.app, settings=settings).setup()
        board = page.locator("#board")
        box = board.bounding_box()
        for i in range(20):
            board.click(position={"x": box["width"] * 0.3 + (i % 5) * 2,
                                  "y": box["height"] * 0.4 + (i // 5) * 2})
        page.wait_for_function("() => document.getElementById('status').textContent"
                               ".startsWith('Sent')")
        shown = page.get_by_text("1 hotspot among the last 20 clicks")
        deadline = time.monotonic() + 20
        while not shown.is_visible() and time.monotonic() < deadline:
            events.deliver_records()
            page.wait_for_timeout(200)
        assert shown.is_visible() and page.locator("#hotspots li").count() == 1
        # the time control: every click is from the last 5 minutes
        page.get_by_label("Made in").select_option("5m")
        page.get_by_text("1 hotspot among the last 20 clicks (in the last 5 minutes)").wait_for()
        assert page.locator("#legend-max").inner_text().endswith("clicks per cell")
    elif name == "cache":
        page.get_by_role("button", name="Call 5×").click()
        page.locator("#calls tr").nth(4).wait_for()
        page.wait_for_function("() => !document.querySelector('#calls .tag.PENDING')")


@pytest.mark.browser
@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_passes_axe_with_a_clean_console_and_no_sideways_scroll(
        browser, live_app, pulse_env, width, capsys):
    from chalicelib.clients import get_redis
    from chalicelib.leaderboard.model import Tweet
    from chalicelib.leaderboard.store import Leaderboard

    context = browser.new_context(**WIDTHS[width])
    found = {}
    try:
        # a fresh stack: every page empty
        for name in PAGES:
            page, watch = visit(context, live_app, name)
            found[f"{width}-{name}-fresh"] = audit(page, watch, f"{width}-{name}-fresh")
            page.close()
        # the same pages in use
        now = time.time()
        Leaderboard(get_redis(), pulse_env.leaderboard_name).record(
            [Tweet(i + 1, now - 60, tags) for i, tags in enumerate(
                [("spring", "sale"), ("spring",), ("spring", "launch"), ("sale",)])])
        for name in PAGES:
            page, watch = visit(context, live_app, name)
            use(page, name, pulse_env)
            found[f"{width}-{name}-used"] = audit(page, watch, f"{width}-{name}-used")
            page.close()
    finally:
        context.close()
    with capsys.disabled():
        print(f"\nscreenshots: {SHOTS}/{width}-*.png")
    for name, result in found.items():
        assert_clean(result, name)


@pytest.mark.browser
def test_an_empty_clicks_page_logs_no_error(browser, live_app, pulse_env):
    context = browser.new_context(**WIDTHS["desktop"])
    try:
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(live_app + PAGES["clicks"])
        settle(page, "clicks")
        assert "No clicks on this page yet" in page.locator("#hotspots-state").inner_text()
        assert errors == []
    finally:
        context.close()


# --- the answers' headers (chalice.test.Client, no browser) ---
CSP_FIXED = ["default-src 'self'", "script-src 'self'", "style-src 'self'",
             "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
             "form-action 'self'"]


def page_paths() -> list[str]:
    return sorted(path for path in pulse_app.app.routes
                  if path == "/" or (path.startswith("/ui/") and "{" not in path))


def check_security_headers(headers, moto_origin: str) -> None:
    csp = [part.strip() for part in headers["Content-Security-Policy"].split(";")]
    assert all(part in csp for part in CSP_FIXED), csp
    assert f"img-src 'self' data: blob: {moto_origin}" in csp, csp
    assert not any("unsafe" in part for part in csp), csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_every_page_and_asset_has_the_security_headers_and_a_cache_control(app_client,
                                                                          pulse_env):
    import os

    moto = os.environ["AWS_ENDPOINT_URL"]  # presigned QR images point there
    pages = page_paths()
    assert pages == ["/", "/ui/cache", "/ui/clicks", "/ui/leaderboard", "/ui/qr"]
    for path in pages:
        resp = app_client.http.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8", path
        assert resp.headers["Cache-Control"] == "no-cache", path
        check_security_headers(resp.headers, moto)
        body = resp.body.decode()
        # scripts and styles only from files: no inline script, style or event handler
        assert "<style" not in body and not re.search(r"<[^>]*\s(style|on[a-z]+)=", body), path
        assert body.count("<script") == body.count('<script src="/ui/assets/'), path
    names = sorted(web.asset_names())
    assert {"pulse.css", "common.js", "favicon.svg"} <= set(names)
    expected = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}
    for name in names:
        resp = app_client.http.get(f"/ui/assets/{name}", headers={"Accept": "*/*"})
        assert resp.status_code == 200, name
        assert resp.headers["Content-Type"] == expected[Path(name).suffix], name
        assert resp.headers["Cache-Control"] == "public, max-age=300", name
        check_security_headers(resp.headers, moto)
    icon = app_client.http.get("/favicon.ico", headers={"Accept": "image/*,*/*;q=0.8"})
    assert icon.status_code == 200 and icon.headers["Content-Type"] == "image/svg+xml"
    assert icon.body.startswith(b"<svg")


@pytest.mark.parametrize("name", ["nope.css", "..%2Fqr.html", "qr.html", "%2e%2e", "pulse.CSS"])
def test_an_unknown_asset_is_a_404_in_the_error_shape(app_client, name):
    import json

    resp = app_client.http.get(f"/ui/assets/{name}")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    body = json.loads(resp.body)
    assert body["error"] == "NotFound" and body["field"] == "name" and "asset" in body["message"]


def test_every_page_has_the_one_layout(app_client):
    """Header with the app's name and the four feature links (the current one marked),
    one main, a footer; the one stylesheet and the page's own script."""
    for path in page_paths():
        body = app_client.http.get(path).body.decode()
        header = body[body.index("<header"):body.index("</header>")]
        assert '<a class="brand" href="/">Pulse</a>' in header
        links = re.findall(r'<a href="(/ui/[a-z]+)"( aria-current="page")?>', header)
        assert [href for href, _ in links] == ["/ui/leaderboard", "/ui/qr", "/ui/clicks",
                                                "/ui/cache"], path
        assert [href for href, current in links if current] == (
            [] if path == "/" else [path]), path
        assert body.count("<main") == 1 and body.count("<footer") == 1, path
        assert body.count('<link rel="stylesheet" href="/ui/assets/pulse.css">') == 1
        script = "index" if path == "/" else path.rsplit("/", 1)[1]
        assert f'<script src="/ui/assets/{script}.js" defer></script>' in body, path
