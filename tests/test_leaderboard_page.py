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
    page.wait_for_function("() => !document.querySelector('#chart').innerText.includes('brexit')")
    assert [t for t, _ in chart(page)] == ["#KPop", "#bts", "#lisa"]
    assert page.get_by_role("tab", name="24 hours").get_attribute("aria-selected") == "true"

    record(board, 200, 30, ["lisa"], ["lisa"], ["lisa"])  # new counts arrive
    page.wait_for_function(
        "() => document.querySelector('#chart li .tag').innerText === '#lisa'", timeout=5000)
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


def test_rising_tab_and_a_tags_hourly_chart(page, live_app, board, tmp_path):
    now = time.time()
    ids = iter(range(1, 10_000))
    history = []
    for h in range(24):  # 'steady' 30 an hour; 'takeoff' 1 an hour, then 25 in the last
        at = now - 3600 * h - 1800
        history += [Tweet(next(ids), at, ("steady",) * 30),
                    Tweet(next(ids), at, ("takeoff",) * (25 if h == 0 else 1))]
    board.record(history)
    page.goto(live_app + "/ui/leaderboard")
    page.locator("#chart li").first.wait_for()
    assert [t for t, _ in chart(page)][:2] == ["#steady", "#takeoff"]  # biggest first

    page.get_by_role("tab", name="Rising").click()
    page.wait_for_function("() => document.querySelector('#chart').classList.contains('rising')")
    assert page.get_by_role("tab", name="Rising").get_attribute("aria-selected") == "true"
    assert chart(page) == [("#takeoff", "25"), ("#steady", "30")]  # taking off comes first
    assert page.locator("#chart li .lift").first.inner_text().startswith("↑")

    page.locator("#chart li", has_text="takeoff").click()
    page.locator("#hourly").wait_for(state="visible")
    assert page.locator("#hourly-title").inner_text() == "#takeoff per hour, last 24 h"
    bars = page.locator("#hours .hour")
    assert bars.count() == 24
    counts = [int(c) for c in bars.evaluate_all("bs => bs.map(b => b.dataset.count)")]
    heights = bars.evaluate_all("bs => bs.map(b => b.offsetHeight)")
    first_hour = int(now // 3600) * 3600 - 23 * 3600  # the chart's 24 hours, the last so far
    assert max(counts) == 25 and sum(counts) == sum(
        len(t.hashtags) for t in history
        if t.hashtags[0] == "takeoff" and t.created_at >= first_hour)
    tallest = counts.index(25)
    assert heights[tallest] == max(heights) and heights[tallest] > 3 * min(
        h for h, c in zip(heights, counts, strict=True) if c)
    shot = tmp_path / "leaderboard-rising-hourly.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_refresh_revalidates_with_the_etag(page, live_app, board):
    record(board, 1, 60, ["KPop"], ["bts"])
    statuses = []
    page.on("response", lambda r: statuses.append(r.status)
            if "/leaderboard?" in r.url else None)
    page.goto(live_app + "/ui/leaderboard?refresh=1")
    page.locator("#chart li").first.wait_for()
    page.wait_for_function("() => true", timeout=100)
    deadline = time.time() + 6
    while 304 not in statuses and time.time() < deadline:
        page.wait_for_timeout(200)
    assert statuses[0] == 200 and 304 in statuses  # nothing changed: 304, chart kept
    assert [t for t, _ in chart(page)] == ["#bts", "#KPop"]
    record(board, 50, 30, ["lisa"], ["lisa"])  # an ingest: the next refresh gets a 200
    page.wait_for_function(
        "() => document.querySelector('#chart li .tag').innerText === '#lisa'", timeout=5000)


def test_the_demo_banner_shows_only_when_synthetic_tweets_are_in_the_board(page, live_app,
                                                                          board):
    now = time.time()
    board.record([Tweet(1, now - 60, ("real",))], source="archive")
    page.goto(live_app + "/ui/leaderboard")
    page.locator("#chart li").first.wait_for()
    assert page.locator("#note").is_hidden()
    board.record([Tweet(2, now - 60, ("demo",))], source="synthetic")
    page.reload()
    page.locator("#note").wait_for(state="visible")
    assert "synthetic" in page.locator("#note").inner_text()


@pytest.fixture(scope="module")
def boards_app(stack_env, stack_dir):
    """A second `chalice local` whose deployment follows two campaigns (spring, autumn)."""
    import os
    from pathlib import Path

    from local import processes
    from tests.conftest import ROOT

    port = processes.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack_env, LEADERBOARD_BOARDS='{"spring": "#spring", "autumn": "#autumn"}')
    server = processes.Server("chalice-boards", port,
                              [str(Path(os.sys.executable).parent / "chalice"), "local",
                               "--stage", "local", "--no-autoreload", "--host", "127.0.0.1",
                               "--port", str(port)], ROOT, env=env, rundir=stack_dir)
    server.start(timeout=60)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_the_board_picker_switches_campaigns(page, boards_app, pulse_env):
    now = time.time()
    Leaderboard(get_redis(), "spring").record([Tweet(1, now - 60, ("tulips",))])
    Leaderboard(get_redis(), "autumn").record([Tweet(2, now - 60, ("leaves",)),
                                               Tweet(3, now - 60, ("leaves",))])
    page.goto(boards_app + "/ui/leaderboard")
    page.locator("#chart li").first.wait_for()
    assert chart(page) == [("#tulips", "1")]  # the first board is the default
    picker = page.get_by_label("Board")
    assert picker.is_visible() and picker.input_value() == "spring"
    picker.select_option("autumn")
    page.wait_for_function("() => document.querySelector('#chart li .tag').innerText === '#leaves'")
    assert chart(page) == [("#leaves", "2")] and "board=autumn" in page.url
    page.reload()  # the choice is in the address
    page.locator("#chart li").first.wait_for()
    assert chart(page) == [("#leaves", "2")] and picker.input_value() == "autumn"


def test_a_late_answer_for_the_tab_left_is_not_drawn(page, live_app, board):
    record(board, 1, 60, ["KPop"], ["KPop"])  # now
    record(board, 100, 3 * 86400, ["brexit"], ["brexit"], ["brexit"])  # 3 days ago: all time only
    held = []
    page.route(lambda url: "window=all" in url, lambda route: held.append(route))  # held
    page.goto(live_app + "/ui/leaderboard")
    page.wait_for_function("() => true")
    page.get_by_role("tab", name="24 hours").click()
    page.wait_for_function("() => document.querySelector('#chart li .tag')?.innerText === '#KPop'")
    assert len(held) == 1
    with page.expect_response(lambda r: "window=all" in r.url):
        held[0].continue_()  # the all-time answer arrives after the switch
    page.wait_for_timeout(300)
    assert chart(page) == [("#KPop", "2")]
    assert page.get_by_role("tab", name="24 hours").get_attribute("aria-selected") == "true"


def test_going_back_to_a_tab_shows_its_answer_even_when_it_is_a_304(page, live_app, board):
    record(board, 1, 60, ["KPop"])
    record(board, 100, 3 * 86400, ["brexit"], ["brexit"])
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if "window=all" in r.url else None)
    page.goto(live_app + "/ui/leaderboard")
    page.locator("#chart li").first.wait_for()
    assert [t for t, _ in chart(page)] == ["#brexit", "#KPop"]
    page.get_by_role("tab", name="24 hours").click()
    page.wait_for_function("() => !document.querySelector('#chart').innerText.includes('brexit')")
    page.get_by_role("tab", name="All time").click()
    page.wait_for_function("() => document.querySelector('#chart').innerText.includes('brexit')")
    assert statuses == [200, 304]  # revalidated, not fetched again
    assert "2 hashtags in this window" in page.locator("#status").inner_text()


def test_a_refused_window_says_why_and_is_not_asked_again(page, live_app, board):
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/leaderboard?window" in r.url
            and "/ui/" not in r.url else None)
    page.goto(live_app + "/ui/leaderboard?window=bogus")
    status = page.locator("#status")
    status.filter(has_text="Could not load").wait_for()
    assert "'window' must be one of" in status.inner_text()
    assert "Trying again" not in status.inner_text()
    assert page.locator("#retry").is_hidden()
    page.wait_for_timeout(3500)  # a retry with backoff would have asked twice by now
    assert len(asked) == 1
    record(board, 1, 60, ["KPop"])
    page.get_by_role("tab", name="24 hours").click()  # a window that exists
    page.locator("#chart li").first.wait_for()
    assert chart(page) == [("#KPop", "1")]


def test_a_failing_service_is_retried_with_growing_waits(page, live_app, board):
    record(board, 1, 60, ["KPop"])
    attempts = []

    def unavailable_twice(route):
        attempts.append(time.monotonic())
        if len(attempts) <= 2:
            route.fulfill(status=503, content_type="application/json",
                          body='{"error": "ServiceUnavailable", "message": "redis is down"}')
        else:
            route.continue_()

    page.route(lambda url: "/leaderboard?" in url, unavailable_twice)
    page.goto(live_app + "/ui/leaderboard")
    status = page.locator("#status")
    status.filter(has_text="Trying again in 1 s").wait_for()
    assert "redis is down" in status.inner_text() and page.locator("#retry").is_visible()
    status.filter(has_text="Trying again in 2 s").wait_for()
    page.locator("#chart li").first.wait_for(timeout=5000)
    assert chart(page) == [("#KPop", "1")] and "Could not" not in status.inner_text()
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)][:2]
    assert 0.8 < gaps[0] < 1.8 and 1.8 < gaps[1] < 3.0, gaps


def test_long_numbers_fit_their_column_on_a_phone(browser, live_app, board):
    """A count in the hundreds of billions, on a 390 px screen: shown whole, on the row,
    and the page does not scroll sideways."""
    import json

    record(board, 1, 60, ["a_very_long_hashtag_name_for_a_campaign"], ["KPop"])

    def huge_counts(route):
        answer = route.fetch().json()  # the real answer, its counts made huge
        for i, item in enumerate(answer["items"]):
            item["score"] = 123_456_789_012 // (i + 1)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.route(lambda url: "/leaderboard?" in url, huge_counts)
        page.goto(live_app + "/ui/leaderboard")
        page.locator("#chart li").first.wait_for()
        assert chart(page)[0][1] == "123,456,789,012"
        clipped = page.locator("#chart .score, #chart .tag").evaluate_all("""els => els
            .filter(e => e.classList.contains('score') ? e.scrollWidth > e.clientWidth
                         : e.getBoundingClientRect().right > innerWidth)
            .map(e => e.textContent)""")
        assert clipped == []
        right = page.locator("#chart .score").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().right)")
        assert max(right) <= 390 and len(set(right)) == 1  # one right-aligned column
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
