"""Views of a page's window (hotspots or a heatmap, of a segment, since a time), computed
once per window version and cached.

GET /hotspots asks `HotspotReader.read`.  A saved view (store.py: the default view,
every click of the window as hotspots, in the `result` key; the others in the page's
`views` hash) is reused while it was computed from the current window version and none
of its clicks has left its time span since; otherwise the window is read, the clicks of
the view's segment and span are selected in one pass and run through HOTSPOTS or the
heatmap (compute.py), and the result is saved for that version (only if the window has
not moved on meanwhile).  Readers polling one page therefore share one computation per
change of the window, and a redelivered batch (which changes no version) changes nothing.

A view's span is `since` (5m, 1h, 1d) cut to the window: the window holds no click older
than HOTSPOTS_WINDOW_SECONDS, so a `since` longer than that is the whole window.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.hotspots.compute import GRID_BOUNDS, find_hotspots, heatmap
from chalicelib.hotspots.store import Click, HotspotStore, ViewStore
from chalicelib.hotspots.wire import VIEWPORTS

KINDS = ("hotspots", "heatmap")
SEGMENTS = ("all", *VIEWPORTS)
SINCE_SECONDS = {"5m": 300, "1h": 3600, "1d": 86400}


@dataclass(frozen=True)
class View:
    kind: str = "hotspots"
    segment: str = "all"  # "all" or a viewport class
    since: str = ""  # a key of SINCE_SECONDS, or "" for the whole window
    grid: int = GRID_BOUNDS[0]  # cells a side (heatmap only)

    def key(self) -> str:
        grid = f":{self.grid}" if self.kind == "heatmap" else ""
        return f"{self.kind}:{self.segment}:{self.since or 'window'}{grid}"


DEFAULT = View()


def select(window: Iterable[Click], since_ms: int, segment: str = "all") -> list[Click]:
    """The clicks that arrived at or after since_ms, of the segment."""
    if segment == "all":
        return [c for c in window if c.arrival_ms >= since_ms]
    return [c for c in window if c.arrival_ms >= since_ms and c.viewport == segment]


def _span(clicks: list[Click]) -> dict:
    arrivals = [c.arrival_ms for c in clicks]
    return {"clicks": len(clicks), "oldest_ms": min(arrivals, default=None),
            "newest_ms": max(arrivals, default=None)}


def hotspots_of(window: Iterable[Click], since_ms: int, scan_radius: float,
                min_points: int, segment: str = "all") -> dict:
    """The hotspots of the segment's clicks that arrived at or after since_ms."""
    clicks = select(window, since_ms, segment)
    spots = find_hotspots([(c.x, c.y) for c in clicks], scan_radius, min_points)
    return {"hotspots": [h.to_dict() for h in spots], **_span(clicks)}


def heatmap_of(window: Iterable[Click], since_ms: int, grid: int,
               segment: str = "all") -> dict:
    """The heatmap (compute.heatmap) of the segment's clicks that arrived at or after
    since_ms: `cells` rounded to 3 decimals, `max` the largest cell."""
    clicks = select(window, since_ms, segment)
    cells = heatmap([(c.x, c.y) for c in clicks], grid)
    return {"cells": [[round(v, 3) for v in row] for row in cells],
            "max": round(max(map(max, cells)), 3), **_span(clicks)}


class HotspotReader:
    def __init__(self, store: HotspotStore, scan_radius: float, min_points: int,
                 clock=time.time):
        self.store = store
        self.views = ViewStore(store)
        self.scan_radius = scan_radius
        self.min_points = min_points
        self.clock = clock

    def span_seconds(self, view: View) -> int:
        """How far back the view looks: its `since`, at most the window."""
        window = self.store.window_ms // 1000
        return min(SINCE_SECONDS[view.since], window) if view.since else window

    def read(self, page: str, view: View = DEFAULT) -> dict | None:
        """The page's current result for the view, or None for a page never clicked."""
        if view == DEFAULT:
            version, saved = self.store.current(page)
        else:
            version, saved = self.views.current(page, view.key())
        if version is None:
            return None
        now = self.clock()
        since = int(now * 1000) - self.span_seconds(view) * 1000
        if saved is not None and saved["version"] == version and (
                saved["oldest_ms"] is None or saved["oldest_ms"] >= since):
            return saved
        window = self.store.window(page)
        if view.kind == "heatmap":
            result = heatmap_of(window, since, view.grid, view.segment)
        else:
            result = hotspots_of(window, since, self.scan_radius, self.min_points, view.segment)
        result["computed_at"] = now
        if view == DEFAULT:
            self.store.save_result(page, version, result)
        else:
            self.views.save(page, view.key(), version, result)
        return {**result, "version": version}
