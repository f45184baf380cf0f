"""What the click and hotspot routes answer: parse the input, call the writer/store, shape JSON."""
from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping

from chalicelib.errors import DependencyUnavailable, InvalidInput, NotFound
from chalicelib.hotspots import wire, wiring
from chalicelib.http import json_object_body, query_value
from chalicelib.timestamps import iso_z

MAX_BODY_BYTES = 256 * 1024
MAX_CLICKS = 500
# Page ids and sessions become Redis key hash tags and partition keys: no braces,
# no spaces, bounded length.
PAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
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


def parse_clicks(body: Mapping) -> tuple[str, str | None, list[tuple[float, float, int]]]:
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
        parsed.append((x, y, t))
    return page, session, parsed


def post_clicks(raw_body, writer=None) -> tuple[dict, int]:
    """POST /clicks -> (body, status): 202 when every click is in Kinesis."""
    page, session, clicks = parse_clicks(parse_body(raw_body))
    # One partition key per client session spreads pages over shards and keeps each
    # session's clicks in order; a client without a session gets one per request.
    key = session or secrets.token_hex(8)
    records = [(wire.encode(page, key, x, y, t), key) for x, y, t in clicks]
    result = (writer or wiring.get_writer()).put(records)
    if result.failed:
        raise DependencyUnavailable(
            f"{len(result.failed)} of {len(records)} clicks could not be written; resend "
            "those listed in 'failed'", dependency="aws", accepted=result.accepted,
            failed=[{"index": i, "code": code} for i, code in result.failed])
    return {"accepted": result.accepted, "page": page}, 202


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else iso_z(ms / 1000)


def hotspots(params: Mapping[str, str] | None, reader=None) -> dict:
    """GET /hotspots?page=<id>: the hotspots of the page's current window."""
    page = _ident({"page": query_value(params, "page")}, "page", PAGE_ID, required=True)
    reader = reader or wiring.get_reader()
    result = reader.read(page)
    if result is None:
        raise NotFound(f"page {page!r} has no clicks", page=page)
    return {
        "page": page,
        "window": {"clicks": result["clicks"], "max_clicks": reader.store.max_clicks,
                   "seconds": reader.store.window_ms // 1000,
                   "from": _iso_ms(result["oldest_ms"]), "to": _iso_ms(result["newest_ms"]),
                   "scan_radius": reader.scan_radius, "min_points": reader.min_points},
        "hotspots": result["hotspots"],
        "computed_at": iso_z(result["computed_at"]),
    }


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
            "summary": "the hot regions of a page's current window", "tags": ["hotspots"],
            "parameters": [oa.query("page", {**page_id, "example": EXAMPLE_PAGE},
                                    "the page id the clicks were sent with", required=True)],
            "responses": {
                "200": oa.json_answer(oa.ref("Hotspots"), "the hotspots"),
                "400": oa.error(oa.BAD_REQUEST), "404": oa.error("the page has no clicks"),
                "503": oa.error(oa.UNAVAILABLE)}}},
        "/ui/clicks": oa.page("the click hotspots page"),
    }
    schemas = {
        "Clicks": {
            "type": "object", "required": ["page", "clicks"], "additionalProperties": True,
            "properties": {
                "page": page_id,
                "session": {"type": ["string", "null"],
                            "pattern": oa.anchored(SESSION_ID.pattern),
                            "description": "the clicks' partition key: a client session "
                                           "keeps its clicks in order (null or absent: one "
                                           "key per request)"},
                "clicks": oa.array(oa.obj({"x": unit, "y": unit,
                                           "t": {"type": "integer", "minimum": 0,
                                                 "maximum": MAX_T - 1,
                                                 "description": "epoch milliseconds"}},
                                          extra=True),
                                   minItems=1, maxItems=MAX_CLICKS)},
        },
        "ClicksAccepted": oa.obj({"accepted": {"type": "integer", "minimum": 1},
                                  "page": page_id}),
        "Hotspots": oa.obj({
            "page": page_id,
            "window": oa.obj({"clicks": {"type": "integer", "minimum": 0},
                              "max_clicks": oa.INTEGER, "seconds": oa.INTEGER,
                              "from": oa.TIME_OR_NULL, "to": oa.TIME_OR_NULL,
                              "scan_radius": oa.NUMBER, "min_points": oa.INTEGER}),
            "hotspots": oa.array(oa.obj({"density": oa.NUMBER,
                                         "min": oa.array(unit, minItems=2, maxItems=2),
                                         "max": oa.array(unit, minItems=2, maxItems=2),
                                         "count": {"type": "integer", "minimum": 1}})),
            "computed_at": oa.TIME}),
    }
    return {"paths": paths, "schemas": schemas}
