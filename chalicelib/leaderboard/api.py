"""What the leaderboard routes answer: parse the query, ask the store, shape the JSON."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import unquote

from chalicelib.errors import InvalidInput, NotFound
from chalicelib.http import query_choice, query_int, query_value
from chalicelib.leaderboard import RISING_BASELINE, WINDOWS
from chalicelib.leaderboard.model import strip_hash
from chalicelib.leaderboard.wiring import board_names, get_board

MAX_TAG_LENGTH = 139  # the longest hashtag a 280-character post can hold
ORDERS = ("top", "rising")
RISING_WINDOWS = tuple(RISING_BASELINE)
# The query's bounds, (default, minimum, maximum): also stated in chalicelib/openapi.py.
N_BOUNDS = (10, 1, 100)
OFFSET_BOUNDS = (0, 0, 1_000_000)
NEIGHBOURS_BOUNDS = (2, 0, 10)


def choose_board(params: Mapping[str, str] | None):
    """`?board=` (default: the first configured board); an unknown board is a 404."""
    names = board_names()
    name = query_value(params, "board") or names[0]
    if name not in names:
        raise NotFound(f"no board {name[:70]!r}: the boards are {', '.join(names)}",
                       board=name[:70], boards=names)
    return get_board(name)


def answer(body: dict, request_headers: Mapping[str, str] | None):
    """A read route's response: ETag, Cache-Control max-age (LEADERBOARD_MAX_AGE: counts
    change at most once an ingest) and 304 on a matching If-None-Match."""
    from chalicelib.http import cached_json_response
    from chalicelib.settings import get_settings

    return cached_json_response(body, request_headers, get_settings().leaderboard_max_age)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _entry(e) -> dict:
    return {"rank": e.rank, "hashtag": e.hashtag, "score": e.score}


def top(params: Mapping[str, str] | None, board=None) -> dict:
    """GET /leaderboard: the top of a window (order=top) or what is taking off
    (order=rising, window 1h or 24h)."""
    order = query_choice(params, "order", ORDERS[0], ORDERS)
    if order == "rising":
        window = query_choice(params, "window", RISING_WINDOWS[0], RISING_WINDOWS)
    else:
        window = query_choice(params, "window", WINDOWS[0], WINDOWS)
    n = query_int(params, "n", *N_BOUNDS)
    offset = query_int(params, "offset", *OFFSET_BOUNDS)
    board = board or choose_board(params)
    head = {"board": board.name, "boards": board_names(), "order": order, "window": window,
            "n": n, "offset": offset}
    if order == "rising":
        rising = board.rising(window, n, offset)  # one consistent read
        return {**head, "items": [{"rank": i.rank, "hashtag": i.hashtag, "score": i.count,
                                   "expected": round(i.expected, 1),
                                   "rising": round(i.score, 2)} for i in rising.items],
                "candidates": rising.candidates, "updated_at": _iso(rising.updated_at),
                "sources": rising.sources}
    page = board.page(window, n, offset)  # one consistent read
    return {**head, "items": [_entry(e) for e in page.entries], "total": page.total,
            "updated_at": _iso(page.updated_at), "sources": page.sources}


def parse_tag(raw: str) -> str:
    tag = strip_hash(unquote(raw or "").strip())
    if not tag:
        raise InvalidInput("the hashtag is empty", field="hashtag")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidInput(f"a hashtag has at most {MAX_TAG_LENGTH} characters, got {len(tag)}",
                           field="hashtag")
    from chalicelib.hashtags import extract_hashtags

    if extract_hashtags("#" + tag) != [tag]:
        raise InvalidInput(f"{tag[:40]!r} is not a hashtag (letters, digits, marks and '_' "
                           "only, with at least one letter)", field="hashtag")
    return tag


def one_tag(raw_tag: str, params: Mapping[str, str] | None, board=None) -> dict:
    tag = parse_tag(raw_tag)
    window = query_choice(params, "window", WINDOWS[0], WINDOWS)
    neighbours = query_int(params, "neighbours", *NEIGHBOURS_BOUNDS)
    # one consistent read: an ingest landing meanwhile cannot mix two states
    board = board or choose_board(params)
    found = board.standing(tag, window, neighbours)
    if found is None:
        raise NotFound(f"#{tag} has no count in window {window}", hashtag=tag, window=window)
    return {"board": board.name, "window": window, **_entry(found.entry),
            "above": [_entry(e) for e in found.above],
            "below": [_entry(e) for e in found.below],
            "hourly": [{"hour": _iso(h), "count": c} for h, c in found.hourly],
            "updated_at": _iso(found.updated_at)}
