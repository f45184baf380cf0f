"""The heatmap view of GET /hotspots and the segment / since filters of both views: peaks
of a known layout in the right cells, phone clicks absent from the desktop view, `since`
within the window, an empty page as an empty answer, bad parameters as 400s naming the
field; on a real Redis through the real consumer."""
import base64
import itertools
import json
import random
import time

import pytest

from chalicelib.hotspots import api
from chalicelib.hotspots.compute import GRID_BOUNDS, heatmap
from chalicelib.hotspots.consumer import HotspotConsumer
from chalicelib.hotspots.reader import HotspotReader
from chalicelib.hotspots.store import HotspotStore, views_key
from chalicelib.hotspots.wire import encode
from tests.conftest import real_redis

HEADERS = {"Content-Type": "application/json"}
_pages = itertools.count()
_seq = itertools.count(1)


def two_clusters_and_noise(rng, grid=32):
    """400 clicks around the centre of cell (8, 9), 250 around cell (22, 24), both with a
    spread of 0.6 cells, and 300 clicks anywhere: (points, the two peak cells (row, col))."""
    def cluster(col, row, n):
        cx, cy = (col + 0.5) / grid, (row + 0.5) / grid
        return [(min(1.0, max(0.0, rng.gauss(cx, 0.6 / grid))),
                 min(1.0, max(0.0, rng.gauss(cy, 0.6 / grid)))) for _ in range(n)]

    points = cluster(8, 9, 400) + cluster(22, 24, 250) + \
        [(rng.random(), rng.random()) for _ in range(300)]
    rng.shuffle(points)
    return points, [(9, 8), (24, 22)]


def local_maxima(cells):
    """(value, (row, col)) of each cell above all its 8 neighbours, highest first."""
    n = len(cells)
    out = []
    for r, c in itertools.product(range(n), range(n)):
        v = cells[r][c]
        near = [cells[i][j] for i in range(max(0, r - 1), min(n, r + 2))
                for j in range(max(0, c - 1), min(n, c + 2)) if (i, j) != (r, c)]
        if v > max(near):
            out.append((v, (r, c)))
    return sorted(out, reverse=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_clusters_in_noise_are_the_two_highest_peaks_in_their_cells(seed):
    points, peaks = two_clusters_and_noise(random.Random(seed))
    cells = heatmap(points, 32)
    assert len(cells) == 32 and all(len(row) == 32 for row in cells)
    maxima = local_maxima(cells)
    assert [cell for _, cell in maxima[:2]] == peaks
    # the third peak, if any, is noise: well under the smaller cluster's
    assert len(maxima) < 3 or maxima[2][0] < maxima[1][0] / 3
    # smoothing moves clicks between cells, never in or out of the canvas
    assert sum(map(sum, cells)) == pytest.approx(len(points))


def test_clicks_on_the_edges_and_corners_keep_their_weight():
    cells = heatmap([(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.5, 1.0)], 16)
    assert sum(map(sum, cells)) == pytest.approx(4)
    assert cells[0][0] == max(map(max, cells))  # the corner click is its own peak


# --- through the consumer and the route function, on a real Redis ---------------------

@pytest.fixture(params=["standalone", "cluster"])
def r(request):
    """A real Redis: standalone, and a 3-master cluster (the views hash shares the page's
    slot with its window)."""
    client = real_redis(request)
    yield client
    client.close()


def lambda_record(page, x, y, at_s, viewport=None):
    seq = next(_seq)
    data = encode(page, "s", x, y, 1, viewport)
    return {"kinesis": {"sequenceNumber": str(seq), "data": base64.b64encode(data).decode(),
                        "approximateArrivalTimestamp": at_s},
            "eventID": f"shardId-000000000000:{seq}"}


def blob(page, cx, cy, n, at_s, viewport=None):
    return [lambda_record(page, cx + (i % 5) * 0.002, cy + (i // 5) * 0.002, at_s, viewport)
            for i in range(n)]


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def get(reader, **params):
    return api.hotspots(params, reader=reader)


def cell_value(answer, x, y):
    heat = answer["heatmap"]
    grid = heat["grid"]
    return heat["cells"][min(int(y * grid), grid - 1)][min(int(x * grid), grid - 1)]


def test_segments_show_only_their_viewport_class(r):
    page = f"seg{next(_pages)}"
    now = time.time()
    store = HotspotStore(r, 1000, 600)
    HotspotConsumer(store).consume(
        blob(page, 0.2, 0.2, 25, now, "phone") + blob(page, 0.7, 0.7, 30, now, "desktop")
        + blob(page, 0.2, 0.8, 20, now, "tablet") + blob(page, 0.8, 0.2, 15, now))
    reader = HotspotReader(store, scan_radius=0.02, min_points=10, clock=Clock(now))

    every = get(reader, page=page, view="heatmap", grid="16")
    assert every["window"]["clicks"] == 90 and every["window"]["segment"] == "all"
    for x, y in [(0.2, 0.2), (0.7, 0.7), (0.2, 0.8), (0.8, 0.2)]:
        assert cell_value(every, x, y) > 1

    desktop = get(reader, page=page, view="heatmap", grid="16", segment="desktop")
    assert desktop["window"]["clicks"] == 30
    assert cell_value(desktop, 0.7, 0.7) > 1
    assert cell_value(desktop, 0.2, 0.2) == 0  # the phone's clicks are not in it
    assert cell_value(desktop, 0.2, 0.8) == 0 and cell_value(desktop, 0.8, 0.2) == 0
    assert sum(map(sum, desktop["heatmap"]["cells"])) == pytest.approx(30, abs=0.1)

    phone = get(reader, page=page, segment="phone")
    assert [(h["count"], h["min"]) for h in phone["hotspots"]] == [(25, [0.2, 0.2])]
    assert phone["window"]["clicks"] == 25
    tablet = get(reader, page=page, segment="tablet")
    assert [h["count"] for h in tablet["hotspots"]] == [20]
    # the clicks sent without a class count in `all` only
    assert len(get(reader, page=page)["hotspots"]) == 4


def test_since_keeps_the_recent_clicks_and_a_longer_since_is_the_whole_window(r):
    page = f"since{next(_pages)}"
    now = time.time()
    store = HotspotStore(r, 1000, 7200)  # a two-hour window
    HotspotConsumer(store).consume(blob(page, 0.3, 0.3, 20, now - 1800)  # 30 minutes ago
                                   + blob(page, 0.6, 0.6, 20, now - 60))  # a minute ago
    reader = HotspotReader(store, scan_radius=0.02, min_points=10, clock=Clock(now))

    recent = get(reader, page=page, since="5m")
    assert [h["min"] for h in recent["hotspots"]] == [[0.6, 0.6]]
    assert (recent["window"]["clicks"], recent["window"]["span_seconds"]) == (20, 300)
    heat = get(reader, page=page, view="heatmap", since="5m")
    assert cell_value(heat, 0.3, 0.3) == 0 and cell_value(heat, 0.6, 0.6) > 1
    hour = get(reader, page=page, since="1h")
    assert len(hour["hotspots"]) == 2 and hour["window"]["span_seconds"] == 3600
    day = get(reader, page=page, since="1d")  # longer than the window: all of it
    assert day["window"]["span_seconds"] == 7200 and day["window"]["clicks"] == 40
    assert day["window"]["since"] == "1d"

    # the 5-minute view drops the recent clicks once they are 5 minutes old, cached or not
    reader.clock = Clock(now + 300)
    assert get(reader, page=page, since="5m")["hotspots"] == []


def test_a_heatmap_is_computed_once_per_window_version(r):
    page = f"cache{next(_pages)}"
    now = time.time()
    store = HotspotStore(r, 1000, 600)
    consumer = HotspotConsumer(store)
    consumer.consume(blob(page, 0.5, 0.5, 20, now, "phone"))
    reader = HotspotReader(store, scan_radius=0.02, min_points=10, clock=Clock(now))
    first = get(reader, page=page, view="heatmap", segment="phone")
    reader.clock = Clock(now + 5)
    assert get(reader, page=page, view="heatmap", segment="phone") == first  # cached
    assert r.ttl(views_key(page)) > 0  # the cached views expire with the window
    consumer.consume(blob(page, 0.1, 0.9, 20, now + 5, "phone"))
    second = get(reader, page=page, view="heatmap", segment="phone")
    assert second["computed_at"] != first["computed_at"]
    assert second["window"]["clicks"] == 40 and cell_value(second, 0.1, 0.9) > 1


# --- the route ----------------------------------------------------------------------------

def test_posted_viewport_reaches_the_desktop_and_phone_views(app_client, pulse_env):
    from tests.test_hotspots_api import as_lambda_records, stream_records

    now = int(time.time() * 1000)

    def send(viewport, x, y, n):
        body = {"page": "vp", "session": viewport, "viewport": viewport,
                "clicks": [{"x": x + (i % 5) * 0.002, "y": y + (i // 5) * 0.002, "t": now}
                           for i in range(n)]}
        resp = app_client.http.post("/clicks", headers=HEADERS, body=json.dumps(body))
        assert resp.status_code == 202

    send("phone", 0.25, 0.25, 20)
    send("desktop", 0.75, 0.75, 20)
    from chalicelib.hotspots.wiring import get_store

    HotspotConsumer(get_store()).consume(
        as_lambda_records(stream_records(pulse_env.click_stream_name)))

    def heat(segment):
        resp = app_client.http.get(f"/hotspots?page=vp&view=heatmap&grid=8&segment={segment}")
        assert resp.status_code == 200
        return json.loads(resp.body)

    desktop, phone = heat("desktop"), heat("phone")
    assert cell_value(desktop, 0.25, 0.25) == 0 and cell_value(desktop, 0.75, 0.75) > 2
    assert cell_value(phone, 0.75, 0.75) == 0 and cell_value(phone, 0.25, 0.25) > 2
    assert desktop["heatmap"]["kernel"] == "gaussian" and desktop["heatmap"]["grid"] == 8


@pytest.mark.parametrize("query", ["", "&view=heatmap", "&view=heatmap&grid=4&since=5m"])
def test_an_empty_page_is_an_empty_answer(app_client, query):
    resp = app_client.http.get(f"/hotspots?page=empty-page{query}")
    assert resp.status_code == 200
    body = json.loads(resp.body)
    assert body["window"]["clicks"] == 0 and body["window"]["from"] is None
    if "heatmap" in query:
        grid = body["heatmap"]["grid"]
        assert grid == (4 if "grid=4" in query else GRID_BOUNDS[0])
        assert body["heatmap"]["cells"] == [[0] * grid] * grid
    else:
        assert body["hotspots"] == []


@pytest.fixture(scope="module")
def plain_client():
    """The app without a provisioned world: input is rejected before any dependency."""
    from chalice.test import Client

    import app as pulse_app
    from tests.conftest import ROOT

    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        yield client


@pytest.mark.parametrize(("query", "field"), [
    ("view=map", "view"), ("view=heatmap&grid=3", "grid"), ("view=heatmap&grid=129", "grid"),
    ("view=heatmap&grid=32.5", "grid"), ("grid=-1", "grid"), ("segment=tv", "segment"),
    ("segment=Phone", "segment"), ("since=2h", "since"), ("since=5", "since"),
    ("view=heatmap&view=hotspots", "view"),
])
def test_bad_view_parameters_are_400_naming_the_field(plain_client, query, field):
    resp = plain_client.http.get(f"/hotspots?page=home&{query}")
    body = json.loads(resp.body)
    assert resp.status_code == 400, body
    assert body["field"] == field and field in body["message"]


@pytest.mark.parametrize("viewport", ["watch", "", 600, ["phone"]])
def test_a_bad_viewport_is_400_naming_it(plain_client, viewport):
    body = {"page": "home", "viewport": viewport, "clicks": [{"x": 0.5, "y": 0.5, "t": 1}]}
    resp = plain_client.http.post("/clicks", headers=HEADERS, body=json.dumps(body))
    assert resp.status_code == 400
    assert json.loads(resp.body)["field"] == "viewport"
