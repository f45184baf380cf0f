"""/ui/clicks in headless Chromium: clicks are drawn, batched and sent to the
real `chalice local`; the local event runner feeds the stream to the app's consumer;
the page polls GET /hotspots and paints the hotspot as a translucent red square."""
import json
import threading
import time

import pytest

from local.events import EventRunner

pytestmark = pytest.mark.browser

PIXEL_NEAR_HOTSPOT = """([dx, dy]) => {
  const c = document.getElementById('board');
  if (!window.__spot) return null;
  const s = window.__spot, ratio = c.width / c.clientWidth;
  // just outside the box's top-left corner, inside the painted padding: no dot there
  const x = Math.round(s.min[0] * c.width - dx * ratio);
  const y = Math.round(s.min[1] * c.height - dy * ratio);
  return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
}"""


@pytest.fixture
def event_runner(live_app, pulse_env):
    """The runner `make run` starts, delivering Kinesis batches to the app's consumer."""
    import app as pulse_app

    runner = EventRunner(pulse_app.app, settings=pulse_env).setup()
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            runner.deliver_records()
            stop.wait(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield runner
    stop.set()
    thread.join(10)


def without_heat(route):
    """The page's heatmap answers with every cell 0: the board then shows the hotspot
    squares alone, whatever moment the heatmap would have been painted under them."""
    response = route.fetch()
    body = response.json()
    cells = body.get("heatmap", {}).get("cells", [])
    body["heatmap"]["cells"] = [[0] * len(row) for row in cells]
    body["heatmap"]["max"] = 0
    route.fulfill(response=response, json=body)


def test_clicking_a_cluster_paints_a_hotspot(page, live_app, event_runner, tmp_path):
    page.route("**/hotspots?*view=heatmap*", without_heat)
    page.goto(live_app + "/ui/clicks?page=e2e&poll=0.5&flush=200")
    board = page.locator("#board")
    box = board.bounding_box()
    # 24 clicks within a few pixels of (30%, 40%) of the board, 3 stray ones elsewhere
    for i in range(24):
        board.click(position={"x": box["width"] * 0.3 + (i % 6) * 2,
                              "y": box["height"] * 0.4 + (i // 6) * 2})
    for fx, fy in ((0.8, 0.2), (0.1, 0.9), (0.9, 0.8)):
        board.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Sent')")
    # all 24 once the last batch is consumed (an earlier poll may show the first ones)
    page.wait_for_function("() => document.querySelector('#hotspots li')?.textContent"
                           ".startsWith('24 clicks')", timeout=20_000)
    assert page.locator("#hotspots li").count() == 1
    # the square is painted (faded in): red, translucent, next to the cluster
    page.evaluate("""() => fetch('/hotspots?page=e2e').then(r => r.json())
                     .then(b => { window.__spot = b.hotspots[0]; })""")
    page.wait_for_function("(d) => { const p = (" + PIXEL_NEAR_HOTSPOT + ")(d);"
                           " return p && p[0] > 150 && p[3] > 60; }", arg=[3, 3], timeout=5000)
    red = page.evaluate(PIXEL_NEAR_HOTSPOT, [3, 3])
    assert red[0] > red[1] + 60 and red[0] > red[2] + 60 and 60 < red[3] < 255, red
    # far from the cluster nothing is painted
    assert page.evaluate(PIXEL_NEAR_HOTSPOT, [-300, -150])[3] == 0
    board.screenshot(path=str(tmp_path / "clicks.png"))
    assert (tmp_path / "clicks.png").stat().st_size > 1000

    # When the hotspot leaves the answer, its square fades out rather than vanishing.
    page.route("**/hotspots?*", lambda route: route.fulfill(
        status=200, content_type="application/json",
        body=json.dumps({"page": "e2e", "window": {}, "hotspots": [], "computed_at": None})))
    alphas = [red[3]]
    deadline = time.monotonic() + 10
    while alphas[-1] > 0 and time.monotonic() < deadline:
        alphas.append(page.evaluate(PIXEL_NEAR_HOTSPOT, [3, 3])[3])
        time.sleep(0.03)
    assert alphas[-1] == 0, alphas
    assert any(0 < a < red[3] - 20 for a in alphas), alphas  # seen part-way faded
    assert page.locator("#hotspots li").count() == 0


def test_a_page_without_clicks_says_so_and_is_asked_less_and_less_often(page, live_app):
    asked = []
    page.on("request", lambda r: asked.append(time.monotonic()) if "/hotspots?" in r.url
            else None)
    page.goto(live_app + "/ui/clicks?page=nobody&poll=0.5")
    page.get_by_text("No clicks on this page yet").wait_for()
    assert "0 (left edge) to 1 (right edge)" in page.locator("#board-axis").inner_text()
    page.wait_for_timeout(4000)  # polling every 0.5 s would ask 8 times
    gaps = [b - a for a, b in zip(asked, asked[1:], strict=False)]
    assert 2 <= len(asked) <= 4 and gaps == sorted(gaps), gaps


def test_a_window_of_ten_thousand_clicks_is_drawn_as_a_heatmap(page, live_app, pulse_env):
    import random

    from chalicelib.clients import get_redis
    from chalicelib.hotspots.store import HotspotStore

    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    # 10,000 clicks: 3,000 around (25%, 30%) from phones, the rest anywhere from desktops
    records = [(str(i + 1), now_ms, min(1.0, max(0.0, rng.gauss(0.25, 0.02))),
                min(1.0, max(0.0, rng.gauss(0.3, 0.02))), "phone") for i in range(3000)]
    records += [(str(i + 3001), now_ms, rng.random(), rng.random(), "desktop")
                for i in range(7000)]
    HotspotStore(get_redis(), 10_000, 600).apply("big", "shardId-000000000000", records)

    started = time.monotonic()
    page.goto(live_app + "/ui/clicks?page=big")
    page.get_by_text("among the last 10000 clicks.").wait_for(timeout=20_000)
    page.wait_for_function("() => document.getElementById('legend-max').textContent"
                           ".endsWith('clicks per cell')")
    shown_in = time.monotonic() - started
    # the heatmap is painted under the cluster: the board's pixel there is yellow-ish
    pixel = page.evaluate("""() => {
      const c = document.getElementById('board');
      const d = c.getContext("2d").getImageData(Math.round(0.25 * c.width),
                                                Math.round(0.30 * c.height), 1, 1).data;
      return Array.from(d);
    }""")
    assert pixel[3] > 100 and pixel[0] > 100 and pixel[1] > 100, pixel  # not blank, not blue

    page.get_by_label("Clicks from").select_option("desktop")
    page.get_by_text("among the last 7000 clicks (desktops").wait_for(timeout=20_000)
    page.get_by_label("Clicks from").select_option("phone")
    page.get_by_text("1 hotspot among the last 3000 clicks (phones").wait_for(timeout=20_000)
    assert shown_in < 10, shown_in
