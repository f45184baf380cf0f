"""What the leaderboard routes answer: parse the query, ask the store, shape the JSON."""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from chalicelib.errors import InvalidInput, NotFound
from chalicelib.http import query_choice, query_int, query_value
from chalicelib.leaderboard import RISING_BASELINE, RISING_DECIMALS, WINDOWS
from chalicelib.leaderboard.wiring import board_names, get_board
from chalicelib.timestamps import iso_z

MAX_TAG_LENGTH = 139  # the longest hashtag a 280-character post can hold
ORDERS = ("top", "rising")
RISING_WINDOWS = tuple(RISING_BASELINE)
# The query's bounds, (default, minimum, maximum), which openapi_part() states too.
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
                                   "rising": round(i.score, RISING_DECIMALS)}
                                  for i in rising.items],
                "candidates": rising.candidates, "updated_at": iso_z(rising.updated_at),
                "sources": rising.sources}
    page = board.page(window, n, offset)  # one consistent read
    return {**head, "items": [_entry(e) for e in page.entries], "total": page.total,
            "updated_at": iso_z(page.updated_at), "sources": page.sources}


def parse_tag(raw: str) -> str:
    from chalicelib.leaderboard.hashtags import extract_hashtags, without_hash_sign

    tag = without_hash_sign(unquote(raw or "").strip())
    if not tag:
        raise InvalidInput("the hashtag is empty", field="hashtag")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidInput(f"a hashtag has at most {MAX_TAG_LENGTH} characters, got {len(tag)}",
                           field="hashtag")
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
            "hourly": [{"hour": iso_z(h), "count": c} for h, c in found.hourly],
            "updated_at": iso_z(found.updated_at)}


# A tag tests/test_openapi.py counts before its run, so the contract run reaches a 200.
EXAMPLE_TAG = "pulse"


# The contract's pattern of a hashtag: '#' or '＃' optional, letters, digits and '_' with at
# least one letter.
HASHTAG_PATTERN = "^[#\uff03]?(?=[0-9_]*[A-Za-z])[A-Za-z0-9_]+$"


def openapi_part() -> dict:
    """The leaderboard's paths and schemas of the API contract (chalicelib.openapi)."""
    from chalicelib import openapi as oa

    etag_headers = {
        "ETag": oa.header("a strong tag of the body: send it back as If-None-Match"),
        "Cache-Control": oa.header("`max-age=N`: LEADERBOARD_MAX_AGE seconds"),
    }
    if_none_match = {"name": "If-None-Match", "in": "header", "required": False,
                     "schema": oa.STRING,
                     "description": "an ETag of an earlier answer: a 304 without a body when "
                                    "it still names the answer"}
    not_modified = {"description": "If-None-Match names this answer", "headers": etag_headers}
    board = oa.query("board", oa.enum(board_names()), "the campaign's board, one of the "
                     "configured ones (default: the first); an unknown one is a 404 naming "
                     "the boards")
    window = oa.query("window", oa.enum(WINDOWS, WINDOWS[0]),
                      f"the window; with order=rising one of {', '.join(RISING_WINDOWS)} "
                      f"(default {RISING_WINDOWS[0]})")
    entry = oa.obj({"rank": {"type": "integer", "minimum": 1}, "hashtag": oa.STRING,
                    "score": oa.INTEGER})
    sources = {"type": "object", "additionalProperties": oa.INTEGER,
               "description": "tweets each source (twitter, archive, synthetic) contributed"}
    head = {"board": oa.STRING, "boards": oa.array(oa.STRING, minItems=1),
            "n": {"type": "integer", "minimum": N_BOUNDS[1], "maximum": N_BOUNDS[2]},
            "offset": {"type": "integer", "minimum": OFFSET_BOUNDS[1],
                       "maximum": OFFSET_BOUNDS[2]},
            "updated_at": oa.TIME_OR_NULL, "sources": sources}
    paths = {
        "/leaderboard": {"get": {
            "summary": "the top of a window (order=top) or what is taking off (order=rising)",
            "tags": ["leaderboard"],
            "parameters": [
                oa.query("order", oa.enum(ORDERS, ORDERS[0]), "top counts or rising tags"),
                window,
                oa.query("n", oa.bounded_int(N_BOUNDS), "how many entries"),
                oa.query("offset", oa.bounded_int(OFFSET_BOUNDS), "entries to skip"),
                board, if_none_match],
            "responses": {
                "200": oa.json_answer({"oneOf": [oa.ref("LeaderboardTop"),
                                                 oa.ref("LeaderboardRising")]},
                                      "one page of the board", etag_headers),
                "304": not_modified,
                "400": oa.error(oa.BAD_REQUEST),
                "404": oa.error("no such board"),
                "503": oa.error(oa.UNAVAILABLE)}}},
        "/leaderboard/{hashtag}": {"get": {
            "summary": "one tag's standing: rank, neighbours, hourly counts",
            "tags": ["leaderboard"],
            "parameters": [
                oa.path("hashtag", {"type": "string", "minLength": 1,
                                    "maxLength": MAX_TAG_LENGTH + 1,
                                    "pattern": HASHTAG_PATTERN},
                        f"a hashtag, with or without '#': at most {MAX_TAG_LENGTH} letters, "
                        "digits, marks and '_', at least one letter (the pattern states its "
                        "ASCII form; letters and marks of any script are taken too)",
                        EXAMPLE_TAG),
                oa.query("window", oa.enum(WINDOWS, WINDOWS[0]), "the window"),
                oa.query("neighbours", oa.bounded_int(NEIGHBOURS_BOUNDS),
                         "entries shown above and below"),
                board, if_none_match],
            "responses": {
                "200": oa.json_answer(oa.ref("Standing"), "the tag's standing",
                                      etag_headers),
                "304": not_modified,
                "400": oa.error(oa.BAD_REQUEST),
                "404": oa.error("no such board, or the tag has no count in the window"),
                "503": oa.error(oa.UNAVAILABLE)}}},
        "/ui/leaderboard": oa.page("the leaderboard page"),
    }
    schemas = {
        "LeaderboardTop": oa.obj({
            **head, "order": {"const": "top"}, "window": oa.enum(WINDOWS),
            "items": oa.array(oa.ref("Entry")),
            "total": {"type": "integer", "minimum": 0}}),
        "LeaderboardRising": oa.obj({
            **head, "order": {"const": "rising"}, "window": oa.enum(RISING_WINDOWS),
            "items": oa.array(oa.obj({"rank": {"type": "integer", "minimum": 1},
                                      "hashtag": oa.STRING, "score": oa.INTEGER,
                                      "expected": oa.NUMBER, "rising": oa.NUMBER})),
            "candidates": {"type": "integer", "minimum": 0}}),
        "Entry": entry,
        "Standing": oa.obj({
            "board": oa.STRING, "window": oa.enum(WINDOWS), **entry["properties"],
            "above": oa.array(oa.ref("Entry")),
            "below": oa.array(oa.ref("Entry")),
            "hourly": oa.array(oa.obj({"hour": oa.TIME, "count": oa.INTEGER})),
            "updated_at": oa.TIME_OR_NULL}),
    }
    return {"paths": paths, "schemas": schemas}
