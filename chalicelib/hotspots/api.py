"""What the click and hotspot routes answer: parse the input, call the writer/store, shape JSON."""
from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from collections.abc import Mapping

from chalicelib import telemetry
from chalicelib.errors import DependencyUnavailable, InvalidInput
from chalicelib.hotspots import wire, wiring
from chalicelib.hotspots.compute import GRID_BOUNDS, HEATMAP_RADIUS, HEATMAP_SIGMA_CELLS
from chalicelib.hotspots.reader import KINDS, SEGMENTS, SINCE_SECONDS, View, heatmap_of, hotspots_of
from chalicelib.http import json_object_body, query_choice, query_int, query_value
from chalicelib.timestamps import iso_z

MAX_BODY_BYTES = 256 * 1024
# Clicks per request: a page sends its queue every 0.4 s, ~10 clicks; 100 a request keeps
# one client within a shard's 1,000 records/s even at the public-write quota.
MAX_CLICKS = 100
# Page ids and sessions become Redis key hash tags and partition keys: no braces,
# no spaces, bounded length.
PAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A click's id: a resend with the same id is counted once (store.py).
CLICK_ID = SESSION_ID
MAX_T = 2 ** 53  # epoch ms as a JSON number stays exact below this


def parse_body(raw: bytes | str | None) -> dict:
    """The body as an object.  NaN and Infinity (which json reads, though JSON has no such
    numbers) stay floats here, so the check of the field holding one names it
    (`clicks[3].x`: a number from 0 to 1)."""
    return json_object_body(raw, MAX_BODY_BYTES)


def _ident(body: Mapping, name: str, pattern: re.Pattern, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInput(f"'{name}' must be 1-64 characters of letters, digits and "
                           f"{'_.:-' if pattern is PAGE_ID else '_-'}", field=name)
    return value


def _whole(value):
    """A JSON number with no fractional part (1700000000000.0) as the integer it is: JSON
    Schema's `integer`, as the API contract (GET /openapi.json) states it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unit(click: Mapping, name: str, where: str) -> float:
    value = click.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"'{where}.{name}' must be a number from 0 to 1, got {value!r:.40}",
                           field=f"{where}.{name}")
    return float(value)


def parse_viewport(body: Mapping) -> str | None:
    """The request's viewport class ("viewport"), None when absent or null."""
    value = body.get("viewport")
    if value is None or value in wire.VIEWPORTS:
        return value
    raise InvalidInput(f"'viewport' must be one of {', '.join(wire.VIEWPORTS)} (the page's "
                       f"width class), got {value!r:.40}", field="viewport")


def _click_id(click: Mapping, where: str) -> str | None:
    value = click.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not CLICK_ID.fullmatch(value):
        raise InvalidInput(f"'{where}.id' must be 1-64 characters of letters, digits and _-",
                           field=f"{where}.id")
    return value


def make_click_id(page: str, session: str | None, x: float, y: float, t: int) -> str:
    """The id of a click its client sent without one: with a session, derived from
    (page, session, t, x, y), so the same click resent after a 503 or a timeout gets the
    same id (and a session cannot click one spot twice in one millisecond); without a
    session nothing identifies the client again, so a random uuid4 hex."""
    if session is None:
        return uuid.uuid4().hex
    text = f"{page}\n{session}\n{t}\n{x!r}\n{y!r}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def parse_clicks(body: Mapping) -> tuple[str, str | None,
                                          list[tuple[float, float, int, str | None]]]:
    page = _ident(body, "page", PAGE_ID, required=True)
    session = _ident(body, "session", SESSION_ID, required=False)
    clicks = body.get("clicks")
    if not isinstance(clicks, list) or not 1 <= len(clicks) <= MAX_CLICKS:
        got = len(clicks) if isinstance(clicks, list) else type(clicks).__name__
        raise InvalidInput(f"'clicks' must be a list of 1 to {MAX_CLICKS} clicks, got {got}",
                           field="clicks")
    parsed = []
    for i, click in enumerate(clicks):
        where = f"clicks[{i}]"
        if not isinstance(click, dict):
            raise InvalidInput(f"'{where}' must be an object {{x, y, t}}", field=where)
        x, y = _unit(click, "x", where), _unit(click, "y", where)
        t = _whole(click.get("t"))
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < MAX_T:
            raise InvalidInput(f"'{where}.t' must be a time in epoch milliseconds (an integer)",
                               field=f"{where}.t")
        parsed.append((x, y, t, _click_id(click, where)))
    return page, session, parsed


def post_clicks(raw_body, writer=None) -> tuple[dict, int]:
    """POST /clicks -> (body, status): 202 when every click is in Kinesis."""
    body = parse_body(raw_body)
    page, session, clicks = parse_clicks(body)
    viewport = parse_viewport(body)
    # One partition key per client session spreads pages over shards and keeps each
    # session's clicks in order; a client without a session gets one per request.
    key = session or secrets.token_hex(8)
    records = [(wire.encode(page, key, x, y, t, viewport,
                            cid or make_click_id(page, session, x, y, t)), key)
               for x, y, t, cid in clicks]
    result = (writer or wiring.get_writer()).put(records)
    telemetry.count("hotspots", "ClicksAccepted", result.accepted)
    telemetry.count("hotspots", "ClicksRefused", len(result.failed))
    if result.failed:
        raise DependencyUnavailable(
            f"{len(result.failed)} of {len(records)} clicks could not be written; resend "
            "those listed in 'failed'", dependency="aws", accepted=result.accepted,
            failed=[{"index": i, "code": code} for i, code in result.failed])
    return {"accepted": result.accepted, "page": page}, 202


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else iso_z(ms / 1000)


def parse_view(params: Mapping[str, str] | None) -> View:
    kind = query_choice(params, "view", "hotspots", KINDS)
    grid = query_int(params, "grid", *GRID_BOUNDS)
    segment = query_choice(params, "segment", "all", SEGMENTS)
    since = query_choice(params, "since", "", SINCE_SECONDS)
    return View(kind, segment, since, grid)


def hotspots(params: Mapping[str, str] | None, reader=None) -> dict:
    """GET /hotspots?page=<id>[&view=heatmap&grid=N][&segment=S][&since=5m|1h|1d]: the
    hotspots or heatmap of the page's current window; a page without clicks is an empty
    answer."""
    page = _ident({"page": query_value(params, "page")}, "page", PAGE_ID, required=True)
    view = parse_view(params)
    reader = reader or wiring.get_reader()
    result = reader.read(page, view)
    if result is None:  # never clicked, or its keys expired: no clicks in the window
        empty = heatmap_of([], 0, view.grid) if view.kind == "heatmap" else \
            hotspots_of([], 0, reader.scan_radius, reader.min_points)
        result = {**empty, "computed_at": reader.clock()}
    answer = {
        "page": page, "view": view.kind,
        "window": {"clicks": result["clicks"], "max_clicks": reader.store.max_clicks,
                   "seconds": reader.store.window_ms // 1000,
                   "segment": view.segment, "since": view.since or None,
                   "span_seconds": reader.span_seconds(view),
                   "from": _iso_ms(result["oldest_ms"]), "to": _iso_ms(result["newest_ms"]),
                   "scan_radius": reader.scan_radius, "min_points": reader.min_points},
    }
    if view.kind == "heatmap":
        answer["heatmap"] = {"grid": view.grid, "cells": result["cells"], "max": result["max"],
                             "unit": "clicks per cell", "kernel": "gaussian",
                             "sigma_cells": HEATMAP_SIGMA_CELLS,
                             "radius_cells": HEATMAP_RADIUS}
    else:
        answer["hotspots"] = result["hotspots"]
    answer["computed_at"] = iso_z(result["computed_at"])
    return answer


# A page tests/test_openapi.py clicks before its run, so GET /hotspots reaches a 200.
EXAMPLE_PAGE = "home"


def openapi_part() -> dict:
    """The click and hotspot paths and schemas of the API contract (chalicelib.openapi)."""
    from chalicelib import openapi as oa

    unit = {"type": "number", "minimum": 0, "maximum": 1}
    page_id = {"type": "string", "pattern": oa.anchored(PAGE_ID.pattern)}
    paths = {
        "/clicks": {"post": {
            "summary": "a batch of clicks on a page, into the click stream", "tags": ["hotspots"],
            "requestBody": {"required": True, "content": {oa.JSON: {
                "schema": oa.ref("Clicks"),
                "example": {"page": EXAMPLE_PAGE, "session": "s1",
                            "clicks": [{"x": 0.5, "y": 0.5, "t": 1_700_000_000_000}]}}},
                "description": f"at most {MAX_BODY_BYTES} bytes"},
            "responses": {
                "202": oa.json_answer(oa.ref("ClicksAccepted"), "every click is in the stream"),
                "400": oa.error(oa.BAD_REQUEST),
                "503": oa.error(oa.UNAVAILABLE + "; `failed` lists the clicks to send again")}}},
        "/hotspots": {"get": {
            "summary": "the hot regions or the heatmap of a page's current window",
            "tags": ["hotspots"],
            "parameters": [
                oa.query("page", {**page_id, "example": EXAMPLE_PAGE},
                         "the page id the clicks were sent with", required=True),
                oa.query("view", oa.enum(KINDS, KINDS[0]),
                         "hotspots (dense regions) or heatmap (smoothed clicks per cell)"),
                oa.query("grid", oa.bounded_int(GRID_BOUNDS),
                         "the heatmap's cells a side (view=heatmap)"),
                oa.query("segment", oa.enum(SEGMENTS, SEGMENTS[0]),
                         "the clicks of one viewport class only (all: every click)"),
                oa.query("since", oa.enum(SINCE_SECONDS),
                         "only the clicks of the last 5 minutes, hour or day within the "
                         "window (longer than the window: the whole window; absent: the "
                         "whole window)")],
            "responses": {
                "200": oa.json_answer({"oneOf": [oa.ref("Hotspots"), oa.ref("Heatmap")]},
                                      "the hotspots or the heatmap (a page without clicks: "
                                      "none, or a grid of zeros)"),
                "400": oa.error(oa.BAD_REQUEST), "503": oa.error(oa.UNAVAILABLE)}}},
        "/ui/clicks": oa.page("the click hotspots page"),
    }
    schemas = {
        "Clicks": {
            "type": "object", "required": ["page", "clicks"], "additionalProperties": True,
            "properties": {
                "page": page_id,
                "viewport": {"type": ["string", "null"], "enum": [*wire.VIEWPORTS, None],
                             "description": "the page's width class: phone under 600 CSS "
                                            "px, tablet under 1024, desktop (null or "
                                            "absent: none, the clicks count in `all` only)"},
                "session": {"type": ["string", "null"],
                            "pattern": oa.anchored(SESSION_ID.pattern),
                            "description": "the clicks' partition key: a client session "
                                           "keeps its clicks in order (null or absent: one "
                                           "key per request)"},
                "clicks": oa.array(oa.obj({"x": unit, "y": unit,
                                           "t": {"type": "integer", "minimum": 0,
                                                 "maximum": MAX_T - 1,
                                                 "description": "epoch milliseconds"},
                                           "id": {"type": ["string", "null"],
                                                  "pattern": oa.anchored(CLICK_ID.pattern),
                                                  "description": "the click's id: a click "
                                                                 "sent again with the same "
                                                                 "id is counted once"}},
                                          required=["x", "y", "t"], extra=True),
                                   minItems=1, maxItems=MAX_CLICKS)},
        },
        "ClicksAccepted": oa.obj({"accepted": {"type": "integer", "minimum": 1},
                                  "page": page_id}),
        "Hotspots": oa.obj({
            "page": page_id, "view": {"const": "hotspots"}, "window": oa.ref("ClickWindow"),
            "hotspots": oa.array(oa.obj({"density": oa.NUMBER,
                                         "min": oa.array(unit, minItems=2, maxItems=2),
                                         "max": oa.array(unit, minItems=2, maxItems=2),
                                         "count": {"type": "integer", "minimum": 1}})),
            "computed_at": oa.TIME}),
        "Heatmap": oa.obj({
            "page": page_id, "view": {"const": "heatmap"}, "window": oa.ref("ClickWindow"),
            "heatmap": oa.obj({
                "grid": oa.bounded_int(GRID_BOUNDS),
                "cells": oa.array(oa.array({"type": "number", "minimum": 0}),
                                  description="rows top to bottom (y) of cells left to "
                                              "right (x): grid x grid"),
                "max": {"type": "number", "minimum": 0}, "unit": {"const": "clicks per cell"},
                "kernel": {"const": "gaussian"}, "sigma_cells": oa.NUMBER,
                "radius_cells": oa.INTEGER}),
            "computed_at": oa.TIME}),
        "ClickWindow": oa.obj({
            "clicks": {"type": "integer", "minimum": 0,
                       "description": "the clicks of the segment and span"},
            "max_clicks": oa.INTEGER, "seconds": oa.INTEGER,
            "segment": oa.enum(SEGMENTS), "since": {"enum": [*SINCE_SECONDS, None]},
            "span_seconds": oa.INTEGER, "from": oa.TIME_OR_NULL, "to": oa.TIME_OR_NULL,
            "scan_radius": oa.NUMBER, "min_points": oa.INTEGER}),
    }
    return {"paths": paths, "schemas": schemas}
