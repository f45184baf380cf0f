"""/ui/qr in headless Chromium over `chalice local`: make a code, see it, download it,
see the recent creations and per-domain counts, and the message for a bad URL."""
from __future__ import annotations

import pytest

from tests.qr_support import decode_png, drain_qr_events

pytestmark = pytest.mark.browser


@pytest.fixture
def runner(live_app, pulse_env):
    import app as pulse_app
    from local.events import EventRunner

    return EventRunner(pulse_app.app, settings=pulse_env).setup()


def test_make_a_code_see_it_download_it_and_see_it_listed(page, live_app, runner, tmp_path):
    page.goto(live_app + "/ui/qr?refresh=0.5")
    page.get_by_label("URL").fill("https://shop.example/spring?utm=qr")
    page.get_by_label("Error correction").select_option("Q")
    page.get_by_role("button", name="Make the code").click()
    page.locator("#result").wait_for(state="visible")
    assert page.locator("#encoded").inner_text() == "https://shop.example/spring?utm=qr"
    assert page.locator("#origin").inner_text() == "made just now"
    # The image shown is the presigned S3 object, and it loaded.
    page.wait_for_function("() => document.getElementById('code').naturalWidth > 0")
    shown = page.locator("#code").screenshot()
    assert decode_png(shown) == ["https://shop.example/spring?utm=qr"]
    # The download link serves the same code through GET /qr/{id}.
    href = page.locator("#download").get_attribute("href")
    download = page.request.get(live_app + href)
    assert download.status == 200 and download.headers["content-type"] == "image/png"
    assert decode_png(download.body()) == ["https://shop.example/spring?utm=qr"]

    assert drain_qr_events(runner, 3) == 1  # the qr.created event
    page.wait_for_function(
        "() => document.getElementById('recent').innerText.includes('shop.example')")
    assert page.locator("#domains li").first.inner_text() == "shop.example × 1"
    page.screenshot(path=str(tmp_path / "qr-page.png"), full_page=True)
    assert (tmp_path / "qr-page.png").stat().st_size > 10_000

    page.get_by_role("button", name="Make the code").click()  # same input: from the cache
    page.wait_for_function(
        "() => document.getElementById('origin').innerText.includes('cache')")


def test_a_bad_url_shows_the_message_and_no_code(page, live_app, tmp_path):
    page.goto(live_app + "/ui/qr")
    page.wait_for_load_state("networkidle")  # the first GET /qr: no code made yet
    assert page.get_by_text("None yet.").is_visible()
    assert page.get_by_role("heading", name="Codes per domain").count() == 0  # no empty list
    page.get_by_label("URL").fill("javascript:alert(document.cookie)")
    page.get_by_role("button", name="Make the code").click()
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "http or https" in error.inner_text()
    assert error.get_attribute("data-field") == "url"
    assert page.locator("#result").is_hidden()
    page.screenshot(path=str(tmp_path / "qr-page-error.png"))
