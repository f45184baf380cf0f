"""Tweets as the leaderboard sees them, parsed from X API v2 response pages."""
from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Tweet:
    id: int  # a snowflake id: larger is newer
    created_at: float  # epoch seconds
    hashtags: tuple[str, ...]  # as written, without '#'


def _epoch(created_at: str | None) -> float:
    if not created_at:
        raise ValueError("tweet has no created_at (ask the API for tweet.fields=created_at)")
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


def hashtags_of(tweet: Mapping[str, Any]) -> tuple[str, ...]:
    """The API's `entities.hashtags` when present, else twitter-text extraction of the text.

    Replayed text and older archives carry no entities; the text of a v2
    response is HTML-escaped, so it is unescaped before extraction.
    """
    entities = tweet.get("entities")
    if entities is not None:
        return tuple(h["tag"] for h in entities.get("hashtags") or ())
    from chalicelib.hashtags import extract_hashtags

    return tuple(extract_hashtags(html.unescape(tweet.get("text") or "")))


def tweet_from_api(tweet: Mapping[str, Any]) -> Tweet:
    return Tweet(int(tweet["id"]), _epoch(tweet.get("created_at")), hashtags_of(tweet))


def tweets_from_page(page: Mapping[str, Any]) -> list[Tweet]:
    """One v2 response page (`{"data": [...], "meta": {...}}`); an empty page has no data."""
    return [tweet_from_api(t) for t in page.get("data") or ()]
