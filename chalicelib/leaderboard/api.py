"""What the leaderboard routes answer: parse the query, ask the store, shape the JSON."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote

from chalicelib.errors import InvalidInput, NotFound
from chalicelib.http import query_choice, query_int
from chalicelib.leaderboard import WINDOWS

MAX_TAG_LENGTH = 139  # the longest hashtag a 280-character post can hold


@lru_cache(maxsize=1)
def get_board():
    from chalicelib.clients import get_redis
    from chalicelib.leaderboard.store import Leaderboard
    from chalicelib.settings import get_settings

    return Leaderboard(get_redis(), get_settings().leaderboard_name)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _entry(e) -> dict:
    return {"rank": e.rank, "hashtag": e.hashtag, "score": e.score}


def _source() -> str:
    from chalicelib.settings import get_settings

    return get_settings().leaderboard_source


def top(params: Mapping[str, str] | None, board=None) -> dict:
    window = query_choice(params, "window", "all", WINDOWS)
    n = query_int(params, "n", 10, 1, 100)
    offset = query_int(params, "offset", 0, 0, 1_000_000)
    page = (board or get_board()).page(window, n, offset)  # one consistent read
    return {"window": window, "n": n, "offset": offset,
            "items": [_entry(e) for e in page.entries], "total": page.total,
            "updated_at": _iso(page.updated_at), "source": _source()}


def parse_tag(raw: str) -> str:
    tag = unquote(raw or "").strip()
    if tag.startswith(("#", "＃")):
        tag = tag[1:]
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
    window = query_choice(params, "window", "all", WINDOWS)
    neighbours = query_int(params, "neighbours", 2, 0, 10)
    # one consistent read: an ingest landing meanwhile cannot mix two states
    found = (board or get_board()).standing(tag, window, neighbours)
    if found is None:
        raise NotFound(f"#{tag} has no count in window {window}", hashtag=tag, window=window)
    return {"window": window, **_entry(found.entry),
            "above": [_entry(e) for e in found.above],
            "below": [_entry(e) for e in found.below],
            "updated_at": _iso(found.updated_at)}
