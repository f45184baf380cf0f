"""The hotspots of a page's window, computed once per window version and cached.

GET /hotspots asks `HotspotReader.read`.  The saved result (store.py) is reused while
it was computed from the current window version and none of its clicks has left the
time window since; otherwise the window is read, its clicks of the last
`window_seconds` are run through HOTSPOTS (compute.py), and the result is saved for
that version (only if the window has not moved on meanwhile).  Readers polling one
page therefore share one computation per change of the window, and a redelivered
batch (which changes no version) changes no hotspot.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from chalicelib.hotspots.compute import find_hotspots
from chalicelib.hotspots.store import Click, HotspotStore


def hotspots_of(window: Iterable[Click], since_ms: int, scan_radius: float,
                min_points: int) -> dict:
    """The result for the clicks that arrived at or after since_ms."""
    clicks = [c for c in window if c.arrival_ms >= since_ms]
    spots = find_hotspots([(c.x, c.y) for c in clicks], scan_radius, min_points)
    arrivals = [c.arrival_ms for c in clicks]
    return {"hotspots": [h.to_dict() for h in spots], "clicks": len(clicks),
            "oldest_ms": min(arrivals, default=None), "newest_ms": max(arrivals, default=None)}


class HotspotReader:
    def __init__(self, store: HotspotStore, scan_radius: float, min_points: int,
                 clock=time.time):
        self.store = store
        self.scan_radius = scan_radius
        self.min_points = min_points
        self.clock = clock

    def read(self, page: str) -> dict | None:
        """The page's current result, or None for a page never clicked."""
        version, saved = self.store.current(page)
        if version is None:
            return None
        now = self.clock()
        since = int(now * 1000) - self.store.window_ms
        if saved is not None and saved["version"] == version and (
                saved["oldest_ms"] is None or saved["oldest_ms"] >= since):
            return saved
        result = hotspots_of(self.store.window(page), since, self.scan_radius, self.min_points)
        result["computed_at"] = now
        self.store.save_result(page, version, result)
        return {**result, "version": version}
