"""Where tweets come from: pluggable sources of X API v2 response pages.

Every source has the interface the ingest orchestrator (ingest.py) needs:

    source.name                                  # "twitter" | "archive" | "synthetic"
    source.pages(since_id=None, until_id=None)   # -> iterator of v2 response pages

`pages` behaves like `GET /2/tweets/search/recent`: the tweets with
since_id < id < until_id, newest first, in pages `{"data": [...], "meta": {...}}`
going back in time; every page but the last of the range has `meta.next_token`
(a range with no tweets is one page without `data`).  A source signals a rate
limit by raising `RateLimited`; anything else it raises is an error.

- `TwitterSource`: tweepy's v2 `Client.search_recent_tweets` + `tweepy.Paginator`.
- `ArchiveSource`: twarc2 JSONL files (one response page per line); `read_pages()`
  streams them for the bulk import, `pages()` replays them as the search API would.
- `SyntheticSource`: a deterministic stream with Zipf-distributed tag popularity,
  for the local demo and the benchmarks.

Client libraries (tweepy, orjson) are imported only by the source that uses them.
"""
from __future__ import annotations

import bisect
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from chalicelib.leaderboard.model import (
    SNOWFLAKE_TIME_SHIFT,
    TWITTER_EPOCH_MS,
    Tweet,
    retweeted_id,
    snowflake_time,
    tweets_from_page,
)
from chalicelib.settings import Settings

log = logging.getLogger("pulse.leaderboard.sources")

Page = dict[str, Any]
SOURCES = ("twitter", "archive", "synthetic")
PAGE_SIZE = 100  # the largest max_results of search/recent

__all__ = ["snowflake_time"]  # defined in model.py; imported from here by callers


class Source(Protocol):
    name: str

    def pages(self, *, since_id: int | None = None,
              until_id: int | None = None) -> Iterator[Page]: ...


class RateLimited(Exception):  # noqa: N818 - a condition, not a failure
    """The source may not be asked again before `reset_at` (epoch seconds, when known)."""

    def __init__(self, reset_at: float | None = None):
        when = (datetime.fromtimestamp(reset_at, UTC).isoformat() if reset_at
                else "an unknown time")
        super().__init__(f"rate limited until {when}")
        self.reset_at = reset_at


class SourceConfigError(ValueError):
    """A source cannot be built from the settings (missing token, unknown name...)."""


class ArchiveError(ValueError):
    """An archive line that is not an X API v2 response page; says file:line."""


def empty_page() -> Page:
    return {"meta": {"result_count": 0}}


def paginate(tweets: Sequence[Mapping[str, Any]], page_size: int = PAGE_SIZE) -> Iterator[Page]:
    """Tweets (newest first) as search-API pages: next_token on every page but the last."""
    if not tweets:
        yield empty_page()
        return
    for start in range(0, len(tweets), page_size):
        data = list(tweets[start:start + page_size])
        meta: dict[str, Any] = {"newest_id": data[0]["id"], "oldest_id": data[-1]["id"],
                                "result_count": len(data)}
        if start + page_size < len(tweets):
            meta["next_token"] = f"p{start + page_size}"
        yield {"data": data, "meta": meta}


# --- X API v2 ----------------------------------------------------------------

def _requests_timeout_adapter(timeout: tuple[float, float]):
    """A requests adapter that gives every request a timeout (tweepy sets none)."""
    from requests.adapters import HTTPAdapter

    class TimeoutAdapter(HTTPAdapter):
        def send(self, request, **kwargs):
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, **kwargs)

    return TimeoutAdapter()


class TwitterSource:
    """Recent search (`GET /2/tweets/search/recent`) through tweepy's v2 Client.

    The Client never sleeps on a rate limit (`wait_on_rate_limit=False`): tweepy's
    `TooManyRequests` ends the iteration as `RateLimited`; the caller stops the run
    and the next scheduled run continues.  Other tweepy errors propagate.
    """

    name = "twitter"
    # referenced_tweets says which tweets are retweets; edit_history_tweet_ids names the
    # first version of an edited tweet; the expansion brings each retweet's original
    # (with the same fields) in `includes.tweets`
    TWEET_FIELDS = ("created_at", "entities", "referenced_tweets", "edit_history_tweet_ids")
    EXPANSIONS = ("referenced_tweets.id",)
    # search/recent reaches back 7 days and answers 400 to a since_id/until_id
    # older than that; keep a margin for clock skew and the request's own time.
    SEARCH_WINDOW_SECONDS = 7 * 86400 - 300

    def __init__(self, bearer_token: str, query: str, *, max_results: int = PAGE_SIZE,
                 timeout: tuple[float, float] = (5.0, 20.0),
                 clock: Callable[[], float] = time.time):
        import tweepy

        if not bearer_token:
            raise SourceConfigError("the X API bearer token is empty")
        if not query or not query.strip():
            raise SourceConfigError("the search query (LEADERBOARD_QUERY) is empty")
        self.query = query
        self.max_results = max_results
        self.clock = clock
        self.client = tweepy.Client(bearer_token=bearer_token, return_type=dict,
                                    wait_on_rate_limit=False)
        self.client.session.mount("https://", _requests_timeout_adapter(timeout))
        self.rate_limit_remaining: int | None = None  # requests left in the X API's window
        self.client.session.hooks["response"].append(self._note_rate_limit)

    def _note_rate_limit(self, response, *args, **kwargs):
        remaining = response.headers.get("x-rate-limit-remaining", "")
        if remaining.isdigit():
            self.rate_limit_remaining = int(remaining)

    def pages(self, *, since_id: int | None = None,
              until_id: int | None = None) -> Iterator[Page]:
        import tweepy

        oldest_searchable = self.clock() - self.SEARCH_WINDOW_SECONDS
        params: dict[str, Any] = {"tweet_fields": list(self.TWEET_FIELDS),
                                  "expansions": list(self.EXPANSIONS),
                                  "max_results": self.max_results}
        if until_id is not None:
            if snowflake_time(until_id) <= oldest_searchable:
                log.warning("the rest of the pending range (before id %s) is older than the "
                            "7 days search/recent reaches; it is given up", until_id)
                return
            params["until_id"] = until_id
        if since_id is not None:
            if snowflake_time(since_id) <= oldest_searchable:
                log.warning("checkpoint since_id %s is older than 7 days: tweets between it "
                            "and 7 days ago can no longer be searched", since_id)
                params["start_time"] = datetime.fromtimestamp(oldest_searchable, UTC)
            else:
                params["since_id"] = since_id
        responses = iter(tweepy.Paginator(self.client.search_recent_tweets, self.query,
                                          **params))
        while True:
            try:
                page = next(responses)
            except StopIteration:
                return
            except tweepy.TooManyRequests as exc:
                raise RateLimited(exc.reset_time) from exc
            yield page


# --- twarc2 JSONL archives ------------------------------------------------------

def _json_loads():
    try:
        import orjson

        return orjson.loads, orjson.JSONDecodeError
    except ImportError:  # orjson is a dev/CLI dependency; the Lambda zip may lack it
        import json

        return json.loads, ValueError


@dataclass(frozen=True, slots=True)
class ArchivePage:
    path: str
    line: int  # 1-based
    nbytes: int  # bytes of the line, newline included (for progress bars)
    page: Page

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def tweets(self, retweets: str = "original") -> list[Tweet]:
        try:
            return tweets_from_page(self.page, retweets)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveError(f"{self.where}: a tweet cannot be read: "
                               f"{type(exc).__name__}: {exc}") from exc


def _check_page(page: Any, where: str) -> Page:
    if not isinstance(page, dict) or not ("data" in page or "meta" in page):
        hint = ""
        if isinstance(page, dict) and "id" in page and "text" in page:
            hint = " (one tweet per line: a `twarc2 flatten` file? use the raw twarc2 output)"
        raise ArchiveError(f"{where}: not an X API v2 response page "
                           f"{{\"data\": [...], \"meta\": {{...}}}}{hint}")
    if not isinstance(page.get("data", []), list):
        raise ArchiveError(f"{where}: `data` is not a list of tweets")
    return page


class ArchiveSource:
    """twarc2 JSONL files: one X API v2 response page per line.

    Whitespace-only lines (a trailing blank line) hold no tweets and are passed
    over; any other line that is not a response page stops the read with an
    `ArchiveError` naming file:line: nothing is skipped silently.
    """

    name = "archive"

    def __init__(self, paths: Iterable[str | os.PathLike], *, page_size: int = PAGE_SIZE):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise SourceConfigError("the archive source needs at least one file")
        self.page_size = page_size

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def read_pages(self) -> Iterator[ArchivePage]:
        """Every page of every file, in file order."""
        loads, decode_error = _json_loads()
        for path in self.paths:
            with open(path, "rb") as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    where = f"{path}:{number}"
                    try:
                        page = loads(line)
                    except decode_error as exc:
                        raise ArchiveError(f"{where}: not valid JSON ({exc})") from exc
                    yield ArchivePage(str(path), number, len(line), _check_page(page, where))

    def pages(self, *, since_id: int | None = None,
              until_id: int | None = None) -> Iterator[Page]:
        """The archive replayed as search/recent would answer: the tweets in the
        range, each once, newest first, whatever order the files are in, each page
        with the originals of its retweets in `includes.tweets`."""
        lo = -1 if since_id is None else int(since_id)
        hi = None if until_id is None else int(until_id)
        kept: dict[int, dict[str, Any]] = {}
        originals: dict[str, dict[str, Any]] = {}
        for archived in self.read_pages():
            for raw in (archived.page.get("includes") or {}).get("tweets") or ():
                if isinstance(raw, dict) and "id" in raw:
                    originals.setdefault(str(raw["id"]), _compact(raw))
            for raw in archived.page.get("data") or ():
                try:
                    tweet_id = int(raw["id"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise ArchiveError(f"{archived.where}: a tweet has no valid id") from exc
                if tweet_id > lo and (hi is None or tweet_id < hi) and tweet_id not in kept:
                    kept[tweet_id] = _compact(raw)
        for page in paginate([kept[i] for i in sorted(kept, reverse=True)], self.page_size):
            carried = [originals[ref] for ref in
                       dict.fromkeys(retweeted_id(t) for t in page.get("data") or ())
                       if ref in originals]
            if carried:
                page["includes"] = {"tweets": carried}
            yield page


def _compact(tweet: Mapping[str, Any]) -> dict[str, Any]:
    """Only what the leaderboard reads (the replay holds a whole archive in memory)."""
    out: dict[str, Any] = {"id": str(tweet["id"]), "created_at": tweet.get("created_at")}
    for name in ("referenced_tweets", "edit_history_tweet_ids"):
        if tweet.get(name):
            out[name] = tweet[name]
    entities = tweet.get("entities")
    if entities is not None:
        out["entities"] = {"hashtags": [{"tag": h["tag"]}
                                        for h in entities.get("hashtags") or ()]}
    else:
        out["text"] = tweet.get("text") or ""
    return out


# --- synthetic stream ---------------------------------------------------------------

DEFAULT_SYNTHETIC_TAGS = (
    "Pulse", "AWS", "Python", "Serverless", "Redis", "KPop", "BTS", "BLACKPINK", "Brexit",
    "WorldCup", "Climate", "AI", "OpenSource", "Music", "Travel", "Food", "Photography",
    "Gaming", "Football", "NBA", "Crypto", "Startup", "Design", "Science", "Space", "Books",
    "Movies", "Fitness", "Coffee", "Art", "東京", "ไทย", "हिंदी", "café",
)


class SyntheticSource:
    """A deterministic tweet stream: `tweets_per_run` tweets every `interval_seconds`.

    Time is cut into ticks of interval/tweets_per_run; tick k holds one tweet whose
    id is a snowflake of the tick's time (so ids increase with time and say when the
    tweet was made) and whose hashtags are drawn, from a generator seeded with
    (seed, k), with Zipf(s) popularity over `tags` (rank r has weight 1/r**s); one
    in ten uses another spelling (upper case), as real users do.  A tweet is a pure
    function of (seed, k) and the ticks that exist are a function of the clock, so a
    range read by one process is read identically by the next: resuming works.

    The stream keeps `retention_seconds` of tweets (search/recent keeps 7 days);
    a range with no lower bound starts one interval back.
    """

    name = "synthetic"

    def __init__(self, seed: int = 0, *, tags: Sequence[str] | int | None = None,
                 zipf_s: float = 1.1, tweets_per_run: int = 500,
                 interval_seconds: float = 300, retention_seconds: float = 3600,
                 variant_rate: float = 0.1, page_size: int = PAGE_SIZE,
                 clock: Callable[[], float] = time.time):
        if tweets_per_run < 1 or interval_seconds <= 0:
            raise SourceConfigError("tweets_per_run and interval_seconds must be positive")
        if isinstance(tags, int):
            tags = [f"tag{i:0{len(str(tags))}d}" for i in range(1, tags + 1)]
        self.tags = tuple(tags or DEFAULT_SYNTHETIC_TAGS)
        if not self.tags:
            raise SourceConfigError("the synthetic source needs at least one tag")
        self.seed = seed
        self.zipf_s = zipf_s
        self.tweets_per_run = tweets_per_run
        self.variant_rate = variant_rate
        self.page_size = page_size
        self.clock = clock
        self.tick_us = max(1, round(interval_seconds * 1_000_000 / tweets_per_run))
        self.first_range_ticks = tweets_per_run
        self.retention_ticks = max(1, int(retention_seconds * 1_000_000 // self.tick_us))
        cumulative, total = [], 0.0
        for rank in range(1, len(self.tags) + 1):
            total += rank ** -zipf_s
            cumulative.append(total)
        self._cumulative = cumulative
        self._total = total

    # ids <-> ticks
    def tweet_id(self, tick: int) -> int:
        ms = tick * self.tick_us // 1000
        return ((ms - TWITTER_EPOCH_MS) << SNOWFLAKE_TIME_SHIFT) | (tick & 0x3FFFFF)

    def _first_tick_after(self, tweet_id: int, hi: int) -> int:
        """The smallest tick <= hi + 1 whose id is > tweet_id (ids grow with ticks)."""
        lo = 0
        hi += 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.tweet_id(mid) > tweet_id:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def tweet(self, tick: int) -> dict[str, Any]:
        rng = random.Random(self.seed * 0x9E3779B97F4A7C15 + tick)
        n_tags = 1 + (rng.random() < 0.4) + (rng.random() < 0.15)
        chosen: list[str] = []
        for _ in range(n_tags):
            tag = self.tags[bisect.bisect_left(self._cumulative, rng.random() * self._total)]
            if rng.random() < self.variant_rate:
                tag = tag.upper() if tag != tag.upper() else tag.lower()
            if tag.lower() not in {c.lower() for c in chosen}:
                chosen.append(tag)
        text, hashtags = f"synthetic post {tick}", []
        for tag in chosen:
            start = len(text) + 1
            text += f" #{tag}"
            hashtags.append({"start": start, "end": start + 1 + len(tag), "tag": tag})
        created = datetime.fromtimestamp(tick * self.tick_us / 1_000_000, UTC)
        return {"id": str(self.tweet_id(tick)), "text": text,
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.")
                + f"{created.microsecond // 1000:03d}Z",
                "entities": {"hashtags": hashtags}}

    def pages(self, *, since_id: int | None = None,
              until_id: int | None = None) -> Iterator[Page]:
        last = int(self.clock() * 1_000_000) // self.tick_us  # the newest tick that exists
        first = last - (self.first_range_ticks if since_id is None else self.retention_ticks) + 1
        if since_id is not None:
            first = max(first, self._first_tick_after(int(since_id), last))
        if until_id is not None:
            last = min(last, self._first_tick_after(int(until_id) - 1, last) - 1)
        first = max(first, 0)
        if last < first:
            yield empty_page()
            return
        for top in range(last, first - 1, -self.page_size):
            bottom = max(first, top - self.page_size + 1)
            data = [self.tweet(k) for k in range(top, bottom - 1, -1)]
            meta: dict[str, Any] = {"newest_id": data[0]["id"], "oldest_id": data[-1]["id"],
                                    "result_count": len(data)}
            if bottom > first:
                meta["next_token"] = f"t{bottom - 1}"
            yield {"data": data, "meta": meta}


# --- choosing a source from the settings --------------------------------------------

def bearer_token(settings: Settings) -> str:
    """The X API token: from Secrets Manager in AWS; from env X_BEARER_TOKEN on the
    local stage only: a secret in a deployed function's plain environment is readable by
    anyone who can read its configuration."""
    if settings.x_bearer_token_secret_arn:
        from chalicelib.clients import get_secret

        return get_secret(settings.x_bearer_token_secret_arn).strip()
    token = (settings.x_bearer_token or "").strip()
    if token and settings.stage == "local":
        return token
    if token:
        raise SourceConfigError(f"X_BEARER_TOKEN is for the local stage only; stage "
                                f"{settings.stage!r} reads the token from Secrets Manager "
                                f"(set X_BEARER_TOKEN_SECRET_ARN)")
    raise SourceConfigError("no X API bearer token: set X_BEARER_TOKEN_SECRET_ARN (AWS) or "
                            "X_BEARER_TOKEN (local stage)")


def retweets_from_settings(settings: Settings) -> str:
    """LEADERBOARD_RETWEETS, checked (a SourceConfigError names the choices)."""
    from chalicelib.leaderboard.model import check_retweets

    try:
        return check_retweets(settings.leaderboard_retweets.strip().lower())
    except ValueError as exc:
        raise SourceConfigError(str(exc)) from None


def source_from_settings(settings: Settings, *, clock: Callable[[], float] = time.time,
                         board: str | None = None, query: str | None = None) -> Source:
    """The configured source for one board (`query`: its search query; None: the
    LEADERBOARD_QUERY).  The synthetic stream of a board other than the default one is
    seeded by the board's name, so boards get different tweets."""
    kind = settings.leaderboard_source
    if kind == "twitter":
        return TwitterSource(bearer_token(settings), query or settings.leaderboard_query,
                             clock=clock)
    if kind == "archive":
        if not settings.leaderboard_archive:
            raise SourceConfigError("LEADERBOARD_SOURCE=archive needs LEADERBOARD_ARCHIVE "
                                    "(comma-separated twarc2 JSONL paths)")
        return ArchiveSource(settings.leaderboard_archive)
    if kind == "synthetic":
        import zlib

        seed = 0 if board in (None, settings.leaderboard_name) else zlib.crc32(board.encode())
        return SyntheticSource(seed=seed, interval_seconds=settings.ingest_rate_minutes * 60,
                               clock=clock)
    raise SourceConfigError(f"LEADERBOARD_SOURCE must be one of {', '.join(SOURCES)}, "
                            f"got {kind!r}")
