"""The click record on the click stream: what POST /clicks puts in a Kinesis record's
data and the consumer reads back.

One click per record, compact JSON {"p": page, "s": session, "x": 0..1, "y": 0..1,
"t": epoch ms}, plus "v": the viewport class of the page the click was made on
("phone", "tablet" or "desktop", see VIEWPORTS) when the client sent one, and "i": the
click id (1-64 of [A-Za-z0-9_-]), what the consumer drops a resent click by (store.py;
a record without one is applied without that check).  `decode` runs once per consumed
click: it is written for speed (plain tuples, the JSON scanner called directly, one try
block; see BENCHMARKS.md).
"""
from __future__ import annotations

import json

# The json module's C scanner, called directly: json.loads() spends more time around
# it (encoding detection, whitespace regexes) than in it for a 60-byte click.
_scan_json = json.JSONDecoder().scan_once


# Viewport width classes, by the page's width in CSS pixels: phone < 600 <= tablet < 1024 <=
# desktop (the page classifies itself and sends the class with its clicks).
VIEWPORTS = ("phone", "tablet", "desktop")


class MalformedRecord(ValueError):
    """A record that is not a click: no retry can fix it."""


def encode(page: str, session: str, x: float, y: float, t: int,
           viewport: str | None = None, click_id: str = "") -> bytes:
    data = {"p": page, "s": session, "x": x, "y": y, "t": t}
    if viewport:
        data["v"] = viewport
    if click_id:
        data["i"] = click_id
    return json.dumps(data, separators=(",", ":")).encode()


def _json_object(raw: bytes):
    text = raw.decode()
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # not a JSON value at index 0 (perhaps leading whitespace)
        return json.loads(text)
    return value if end == len(text) else json.loads(text)  # json.loads says what's wrong


def decode(raw: bytes) -> tuple[str, float, float, str, str]:
    """(page, x, y, viewport class, click id or "") of one record's data, or
    MalformedRecord saying why it is not a click: a page of 1-64 characters without braces
    (a Redis hash tag), x and y from 0 to 1, an id (when there is one) of 1-64 characters
    without spaces.  The viewport class is "" when absent or not one of VIEWPORTS: the
    click still counts, in no segment but `all`."""
    try:
        data = _json_object(raw)
        page = data["p"]
        x, y = data["x"], data["y"]
        click_id = data.get("i", "")
    except (KeyError, TypeError, AttributeError, ValueError,
            RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise MalformedRecord(f"unreadable record: {type(exc).__name__}: {exc}") from None
    if type(page) is not str or not page or len(page) > 64 or "{" in page or "}" in page:
        raise MalformedRecord("p (page) is invalid")
    if type(click_id) is not str or len(click_id) > 64 or " " in click_id:
        raise MalformedRecord("i (click id) is invalid")
    # type() is: bool (an int subclass) is not a coordinate; the range test is also false
    # for NaN and Infinity, which json lets in
    if (type(x) is float or type(x) is int) and (type(y) is float or type(y) is int) \
            and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0:
        viewport = data.get("v", "")
        return page, x, y, viewport if viewport in VIEWPORTS else "", click_id
    raise MalformedRecord(f"x, y must be numbers from 0 to 1, got {x!r:.30}, {y!r:.30}")
