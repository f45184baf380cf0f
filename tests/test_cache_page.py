"""/ui/cache in headless Chromium, against `chalice local` and the demo upstream run as
`make run` runs it (a process of local/demo_upstream.py, ~300 ms per answer)."""
from __future__ import annotations

import os
import sys

import pytest

from local import processes
from tests.conftest import ROOT, upstreams_json

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cache_site(stack_env, tmp_path_factory):
    """chalice local whose UPSTREAMS names a demo upstream process; its URL."""
    run_dir = tmp_path_factory.mktemp("cache-site")
    demo_port = processes.free_port()
    demo = processes.Server("demo-upstream", demo_port,
                            [sys.executable, "-m", "local.demo_upstream", "--port",
                             str(demo_port)], ROOT, rundir=run_dir).start()
    port = processes.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack_env, UPSTREAMS=upstreams_json(f"http://127.0.0.1:{demo_port}/api/v1",
                                                   ttl=60, timeout=1.5))
    site = processes.Server("chalice-cache", port,
                            [sys.executable, "-m", "local.chalice_local", "local", "--stage",
                             "local", "--no-autoreload", "--host", "127.0.0.1", "--port",
                             str(port)], ROOT, env=env, rundir=run_dir).start(timeout=60)
    yield f"http://127.0.0.1:{port}"
    site.stop()
    demo.stop()


def rows(page):
    """The calls table once every call listed has its answer (a row is made at the call)."""
    page.wait_for_function("() => !document.querySelector('#calls .tag.PENDING')")
    cells = page.locator("#calls tr")
    return [(cells.nth(i).locator("td.status").inner_text(),
             cells.nth(i).locator(".tag").inner_text()) for i in range(cells.count())]


def test_five_calls_show_a_miss_then_hits_with_latencies(page, cache_site, memcached_env):
    page.goto(cache_site + "/ui/cache")
    page.get_by_role("button", name="Call 5×").click()
    page.locator("#calls tr").nth(4).wait_for()
    assert rows(page) == [("200", "MISS")] + [("200", "HIT")] * 4
    bars = page.locator("#chart .bar")
    assert bars.count() == 5
    labels = bars.evaluate_all("bs => bs.map(b => b.getAttribute('aria-label'))")
    assert [label.split()[0] for label in labels] == ["MISS", "HIT", "HIT", "HIT", "HIT"]
    assert all(label.endswith(" ms") for label in labels)
    assert "median HIT" in page.locator("#status").inner_text()
    # the bars' scale is labelled: ticks 0, 1, 10, 100, 1000 ms (log), and each bar ends
    # between the ticks of its latency
    ticks = page.locator("#scale span")
    assert ticks.all_inner_texts() == ["0", "1", "10", "100", "1000"]
    tick_x = dict(zip(ticks.all_inner_texts(), ticks.evaluate_all("""ts => ts.map(t => {
        const scale = t.parentElement.getBoundingClientRect();
        return scale.left + scale.width * parseFloat(t.style.left) / 100; })"""), strict=True))
    ends = bars.evaluate_all("bs => bs.map(b => b.getBoundingClientRect().right)")
    latencies = [float(label.split()[-2]) for label in labels]
    for ms, end in zip(latencies, ends, strict=True):
        below = max(t for t in (0, 1, 10, 100, 1000) if t <= ms)
        above = min(t for t in (1, 10, 100, 1000) if t > ms)
        assert tick_x[str(below)] - 2 <= end <= tick_x[str(above)] + 2, (ms, end, tick_x)
    assert "log" in page.locator("#chart-axis").inner_text()


def test_missing_item_and_unknown_upstream_are_shown(page, cache_site, memcached_env):
    page.goto(cache_site + "/ui/cache?item=999")
    # Two clicks in quick succession: the second call starts while the first is still
    # waiting for the ~300 ms upstream, and is listed second whichever answers first.
    page.get_by_role("button", name="Call", exact=True).click()
    page.get_by_role("button", name="Call", exact=True).click()
    page.locator("#calls tr").nth(1).wait_for()
    assert rows(page) == [("404", "MISS"), ("404", "HIT")]

    page.get_by_label("Upstream").fill("nope")
    page.get_by_label("Item (optional)").fill("")
    page.get_by_role("button", name="Call", exact=True).click()
    page.locator("#calls tr").nth(2).wait_for()
    assert rows(page)[2] == ("404", "ERROR")  # no cache involved: no X-Cache


def test_index_links_the_cache_page(page, cache_site):
    page.goto(cache_site + "/")
    page.get_by_role("link", name="Read-through cache").click()
    page.get_by_role("heading", name="Read-through cache").wait_for()
