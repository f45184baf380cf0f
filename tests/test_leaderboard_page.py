"""/ui/leaderboard in headless Chromium: bars, window switch, auto-refresh."""
import time

import pytest

from chalicelib.clients import get_redis
from chalicelib.leaderboard.model import Tweet
from chalicelib.leaderboard.store import Leaderboard

pytestmark = pytest.mark.browser


@pytest.fixture
def board(live_app, pulse_env):
    return Leaderboard(get_redis(), pulse_env.leaderboard_name)


def record(board, start_id, age, *tag_lists):
    now = time.time()
    board.record([Tweet(start_id + i, now - age, tuple(t)) for i, t in enumerate(tag_lists)])


def chart(page):
    rows = page.locator("#chart li")
    return [(rows.nth(i).locator(".tag").inner_text(), rows.nth(i).locator(".score").inner_text())
            for i in range(rows.count())]


def test_bars_window_switch_and_auto_refresh(page, live_app, board):
    record(board, 1, 60, ["KPop", "bts"], ["KPop", "bts"], ["kpop", "lisa"])  # now
    record(board, 100, 3 * 86400, ["brexit"], ["brexit"], ["brexit"], ["brexit"])  # 3 days ago
    page.goto(live_app + "/ui/leaderboard?refresh=1")
    page.locator("#chart li").first.wait_for()
    assert chart(page) == [("#brexit", "4"), ("#KPop", "3"), ("#bts", "2"), ("#lisa", "1")]
    widths = page.locator("#chart .bar").evaluate_all("bs => bs.map(b => b.offsetWidth)")
    assert widths[0] > widths[1] > widths[2] > 0  # bar length follows the count

    page.get_by_role("tab", name="24 hours").click()
    page.wait_for_function("!document.querySelector('#chart').innerText.includes('brexit')")
    assert [t for t, _ in chart(page)] == ["#KPop", "#bts", "#lisa"]
    assert page.get_by_role("tab", name="24 hours").get_attribute("aria-selected") == "true"

    record(board, 200, 30, ["lisa"], ["lisa"], ["lisa"])  # new counts arrive
    page.wait_for_function(
        "document.querySelector('#chart li .tag').innerText === '#lisa'", timeout=5000)
    assert chart(page)[0] == ("#lisa", "4")


def test_tag_text_is_shown_as_text_not_html(page, live_app, board):
    record(board, 1, 60, ["b<i>x</i>"])  # hostile spelling can only come from a bad source
    page.goto(live_app + "/ui/leaderboard")
    page.locator("#chart li").first.wait_for()
    assert page.locator("#chart i").count() == 0


def test_an_empty_board_says_so(page, live_app, board):
    page.goto(live_app + "/ui/leaderboard")
    page.locator("#empty").wait_for(state="visible")
    assert "No hashtags" in page.locator("#empty").inner_text()
