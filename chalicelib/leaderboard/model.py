"""What the leaderboard takes and gives: tweets parsed from X API v2 response pages, and
the entries, pages and standings a board answers with."""
from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# LEADERBOARD_RETWEETS: what a retweet counts.  A v2 retweet's `text` is "RT @user: " and
# the original cut to fit, so its own `entities.hashtags` miss every tag past the cut.
#   original  the hashtags of the original it carries in `includes.tweets` (default)
#   own       the retweet's own entities (what the API lists for it)
#   skip      nothing (the retweet is still seen, so it is never counted later either)
RETWEET_POLICIES = ("original", "own", "skip")

# Snowflake ids: milliseconds since Twitter's epoch in the bits above 22.
TWITTER_EPOCH_MS = 1288834974657
SNOWFLAKE_TIME_SHIFT = 22


def snowflake_time(tweet_id: int) -> float:
    """Epoch seconds at which a snowflake id was minted."""
    return ((int(tweet_id) >> SNOWFLAKE_TIME_SHIFT) + TWITTER_EPOCH_MS) / 1000


@dataclass(frozen=True, slots=True)
class Tweet:
    id: int  # a snowflake id: larger is newer
    created_at: float  # epoch seconds
    hashtags: tuple[str, ...]  # as written, without '#'
    # a retweet counted with its own entities: its original was not in `includes`
    original_missing: bool = False
    # an edited tweet's first version (`edit_history_tweet_ids[0]`) when not this one:
    # every version of a tweet has its own id, and the tweet counts once, by this id
    first_id: int | None = None


def _epoch(tweet: Mapping[str, Any]) -> float:
    """`created_at`, or the time in the id when the field was not asked for (any
    response without tweet.fields=created_at, e.g. tweepy's recorded ones)."""
    created_at = tweet.get("created_at")
    if not created_at:
        return snowflake_time(int(tweet["id"]))
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


def hashtags_of(tweet: Mapping[str, Any]) -> tuple[str, ...]:
    """The API's `entities.hashtags` when present, else twitter-text extraction of the text.

    Replayed text and older archives carry no entities; the text of a v2
    response is HTML-escaped, so it is unescaped before extraction.
    """
    entities = tweet.get("entities")
    if entities is not None:
        return tuple(h["tag"] for h in entities.get("hashtags") or ())
    from chalicelib.leaderboard.hashtags import extract_hashtags

    return tuple(extract_hashtags(html.unescape(tweet.get("text") or "")))


def retweeted_id(tweet: Mapping[str, Any]) -> str | None:
    """The id of the tweet this one retweets; None for any other tweet (quotes and
    replies count their own text)."""
    for ref in tweet.get("referenced_tweets") or ():
        if ref.get("type") == "retweeted":
            return str(ref["id"])
    return None


def _first_id(tweet: Mapping[str, Any]) -> int | None:
    history = tweet.get("edit_history_tweet_ids") or ()
    first = int(history[0]) if history else None
    return None if first == int(tweet["id"]) else first


def tweet_from_api(tweet: Mapping[str, Any], hashtags: tuple[str, ...] | None = None,
                   original_missing: bool = False) -> Tweet:
    return Tweet(int(tweet["id"]), _epoch(tweet),
                 hashtags_of(tweet) if hashtags is None else hashtags, original_missing,
                 _first_id(tweet))


def check_retweets(policy: str) -> str:
    if policy not in RETWEET_POLICIES:
        raise ValueError(f"LEADERBOARD_RETWEETS must be one of {', '.join(RETWEET_POLICIES)}, "
                         f"got {policy!r}")
    return policy


def tweets_from_page(page: Mapping[str, Any], retweets: str = "original") -> list[Tweet]:
    """One v2 response page (`{"data": [...], "includes": {...}, "meta": {...}}`); an
    empty page has no data.  `retweets` is the policy (RETWEET_POLICIES)."""
    check_retweets(retweets)
    included: dict[str, Mapping[str, Any]] = {}
    if retweets == "original":
        included = {str(t["id"]): t for t in (page.get("includes") or {}).get("tweets") or ()}
    out = []
    for raw in page.get("data") or ():
        original = retweeted_id(raw) if retweets != "own" else None
        if original is None:
            out.append(tweet_from_api(raw))
        elif retweets == "skip":
            out.append(tweet_from_api(raw, ()))
        elif original in included:
            out.append(tweet_from_api(raw, hashtags_of(included[original])))
        else:
            out.append(tweet_from_api(raw, original_missing=True))
    return out


# --- what a board answers -------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    rank: int  # 1-based position
    hashtag: str  # the most common spelling
    score: int


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    total: int  # distinct tags in the window
    updated_at: float | None  # clock time of the last record call
    sources: dict[str, int]  # source name -> tweets it contributed to the board


@dataclass(frozen=True)
class Standing:
    entry: Entry
    above: list[Entry]  # best first
    below: list[Entry]
    updated_at: float | None
    hourly: list[tuple[int, int]]  # (hour start, count) over the last 24 h, oldest first


@dataclass(frozen=True)
class Riser:
    rank: int  # 1-based position by score
    hashtag: str
    count: int  # in the window
    expected: float  # what the tag's rate over the baseline window predicts
    score: float  # (count - expected) / sqrt(expected + RISING_SMOOTHING)


@dataclass(frozen=True)
class RisingPage:
    items: list[Riser]
    candidates: int  # tags scored (the window's highest, at most RISING_CANDIDATES)
    updated_at: float | None
    sources: dict[str, int]
