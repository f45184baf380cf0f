"""The index page in real headless Chromium: what a person sees."""
import pytest

pytestmark = pytest.mark.browser


def test_index_links_every_feature_and_shows_dependency_health(page, live_app):
    page.goto(live_app + "/")
    assert page.title() == "Pulse"
    links = page.locator("#features a")
    assert links.all_inner_texts() == ["Hashtag leaderboard", "QR codes for links",
                                       "Click hotspots", "Read-through cache"]
    assert [links.nth(i).get_attribute("href") for i in range(4)] == [
        "/ui/leaderboard", "/ui/qr", "/ui/clicks", "/ui/cache"]
    health = page.locator("#health")
    health.filter(has_text="redis: ok").wait_for(timeout=5000)
    assert "memcached: ok" in health.inner_text() and "aws: ok" in health.inner_text()
