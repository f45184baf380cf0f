"""/ui/qr's dynamic option in headless Chromium over `chalice local`: make a dynamic code,
decode its image, open the decoded short link as a phone and land on the target, change
the target, open the same link again and land on the new one, and see both scans in the
chart.  The app runs on its own port with PULSE_HTTP_PORT set to it, as `make run` does,
so the short link the image encodes is this server's."""
from __future__ import annotations

import urllib.request

import pytest

from local import processes
from tests.conftest import ROOT, chalice_local
from tests.qr_support import decode_png

pytestmark = pytest.mark.browser

SHOTS = ROOT / ".local" / "screenshots"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


@pytest.fixture(scope="module")
def own_app(stack_env, stack_dir):
    port = processes.free_port()
    with chalice_local("chalice-local-dynqr", stack_env, stack_dir, port=port,
                       PULSE_HTTP_PORT=str(port)) as url:
        yield url


@pytest.fixture
def target_site():
    """Two pages to land on (the targets), served by a thread of the test."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"<!doctype html><title>{self.path}</title><h1>landed {self.path}</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_make_scan_edit_scan_and_see_the_scans(browser, own_app, pulse_env, target_site):
    desk = browser.new_context(viewport={"width": 1200, "height": 900})
    phone = browser.new_context(user_agent=IPHONE, viewport={"width": 390, "height": 800})
    try:
        page = desk.new_page()
        page.goto(own_app + "/ui/qr?refresh=0.5")
        page.get_by_label("URL").fill(f"{target_site}/spring")
        page.get_by_role("checkbox", name="Dynamic").check()
        page.get_by_role("button", name="Make the code").click()
        page.locator("#dynamic-code").wait_for(state="visible")
        page.wait_for_function("() => document.getElementById('code').naturalWidth > 0")
        [decoded] = decode_png(page.locator("#code").screenshot())
        assert decoded.startswith(own_app + "/r/")
        assert page.locator("#short-link").inner_text() == decoded
        assert page.locator("#target-now").inner_text() == f"{target_site}/spring"

        scanner = phone.new_page()
        scanner.goto(decoded)
        assert scanner.url == f"{target_site}/spring"
        assert scanner.locator("h1").inner_text() == "landed /spring"

        page.get_by_label("Target", exact=True).fill(f"{target_site}/summer")
        page.get_by_role("button", name="Add a rule").click()
        page.get_by_label("Device", exact=True).select_option("android")
        page.locator("#rules [name=target]").fill(f"{target_site}/android")
        page.get_by_role("button", name="Save").click()
        page.get_by_text(f"Saved: scans now go to {target_site}/summer.").wait_for()
        assert "Android" in page.locator("#rules-now").inner_text()

        scanner.goto(decoded)  # the same printed code
        assert scanner.url == f"{target_site}/summer"

        page.wait_for_function(
            "() => document.querySelector('#scan-days li:last-child')?.dataset.humans === '2'",
            timeout=15_000)
        assert page.locator("#scan-days li").count() == 7
        assert page.locator("#devices li").first.inner_text() == "iOS × 2"
        assert "2 scans by people" in page.locator("#scans-status").inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "qr-dynamic.png"), full_page=True)
        assert (SHOTS / "qr-dynamic.png").stat().st_size > 10_000

        # a bad rule is refused with the field named, and nothing changes
        page.locator("#rules [name=language]").fill("not a language")
        page.get_by_role("button", name="Save").click()
        page.locator("#edit-error").wait_for(state="visible")
        assert page.locator("#edit-error").get_attribute("data-field") == "rules[0].language"

        page.get_by_role("button", name="Retire this code").click()
        page.get_by_text("Retired: the short link").wait_for()
        assert page.locator("#target-now").inner_text() == "nowhere: retired"
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(decoded, timeout=10)
        assert gone.value.code == 410
    finally:
        desk.close()
        phone.close()


def test_the_dynamic_code_page_passes_axe(browser, own_app, pulse_env):
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        page = context.new_page()
        page.goto(own_app + "/ui/qr")
        page.get_by_label("URL").fill("https://example.com/a11y")
        page.get_by_role("checkbox", name="Dynamic").check()
        page.get_by_role("button", name="Make the code").click()
        page.locator("#dynamic-code").wait_for(state="visible")
        page.get_by_role("button", name="Add a rule").click()
        page.locator("#scan-days li").first.wait_for()
        results = Axe().run(page, options={"resultTypes": ["violations"]})
        assert results.violations_count == 0, results.generate_report()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "qr-dynamic-phone.png"), full_page=True)
    finally:
        context.close()
