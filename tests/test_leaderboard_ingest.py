"""Ingest, on real Redis (standalone and the 3-master cluster): sources, the exactly-once
orchestrator and the archive import.

The X API is a small local HTTP server imitating `GET /2/tweets/search/recent`
(paging by next_token, since_id/until_id/start_time, only the requested tweet
fields, 429/503 on demand) that serves the recorded pages of
../shared/sample-data/tweets/.  tweepy's real Client talks to it: the Client's
`requests` session gets an adapter, mounted for https://api.twitter.com/, that
rewrites each request's URL to the local server; nothing else of tweepy changes.
"""
from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from chalicelib.leaderboard.ingest import import_archive, run_ingest, run_scheduled_ingest
from chalicelib.leaderboard.model import Tweet, tweets_from_page
from chalicelib.leaderboard.sources import (
    ArchiveError,
    ArchiveSource,
    SourceConfigError,
    SyntheticSource,
    TwitterSource,
    snowflake_time,
    source_from_settings,
)
from chalicelib.leaderboard.store import Leaderboard
from chalicelib.settings import Settings, SettingsError
from tests.conftest import shared_path

X_API = "https://api.twitter.com"
TOKEN = "test-token"
SAMPLES = ("kpop.jsonl", "brexit.jsonl", "2sets.jsonl")


# --- the sample data and what it must count to -------------------------------------------

def sample_file(name: str) -> Path:
    return shared_path("sample-data", "tweets", name)


def _pages(*names: str):
    for name in names:
        for line in sample_file(name).read_bytes().splitlines():
            if line.strip():
                yield orjson.loads(line)


def raw_tweets(*names: str) -> list[dict]:
    """Distinct tweets (by id) of the sample files, as the API returned them."""
    seen: dict[str, dict] = {}
    for page in _pages(*names):
        for tweet in page.get("data") or ():
            seen.setdefault(tweet["id"], tweet)
    return list(seen.values())


def included_tweets(*names: str) -> dict[str, dict]:
    """The referenced tweets the sample pages carry in `includes.tweets`, by id."""
    return {t["id"]: t for page in _pages(*names)
            for t in (page.get("includes") or {}).get("tweets") or ()}


@functools.cache
def sample_includes() -> dict[str, dict]:
    """`includes.tweets` of every sample file, read once, when a test first needs it (not at
    import: without ../shared the tests that need it skip; the module still collects)."""
    return included_tweets(*SAMPLES)


def expected_counts(tweets: list[dict], retweets: str = "original") -> Counter:
    """Counted by hand: each tweet once, each of its entities.hashtags, case-folded; a
    retweet with its original's (from `includes`) under the `original` policy."""
    counts: Counter = Counter()
    for t in tweets:
        refs = [r["id"] for r in t.get("referenced_tweets") or () if r["type"] == "retweeted"]
        if refs and retweets == "skip":
            continue
        if refs and retweets == "original":
            t = sample_includes()[refs[0]]
        counts.update(h["tag"].casefold() for h in (t.get("entities") or {}).get("hashtags") or ())
    return counts


def board_counts(board: Leaderboard, window: str = "all") -> Counter:
    counts: Counter = Counter()
    offset = 0
    while True:
        entries = board.top(window, 100, offset)
        for e in entries:
            counts[e.hashtag.casefold()] += e.score
        if len(entries) < 100:
            return counts
        offset += 100


def newest_first(tweets: list[dict]) -> list[dict]:
    return sorted(tweets, key=lambda t: int(t["id"]), reverse=True)


# --- a local imitation of GET /2/tweets/search/recent --------------------------------

class FakeXApi:
    """State of the imitation; `handler` serves it."""

    def __init__(self):
        self.reset()

    def reset(self, tweets=(), page_size: int = 100, included=None, by_query=None):
        self.tweets = newest_first(list(tweets))
        # what each search query finds (default: every tweet, whatever the query)
        self.by_query = {q: newest_first(list(ts)) for q, ts in (by_query or {}).items()}
        self.included = included  # id -> referenced tweet; None: the sample files' includes
        self.visible_upto: int | None = None  # only tweets with id <= this exist yet
        self.page_size = page_size  # the server's own cap on max_results (more pages)
        self.fail: dict[int, int] = {}  # request number (1-based) -> HTTP status
        self.requests: list[dict[str, str]] = []

    def reveal(self, count: int) -> None:
        """Only the `count` oldest tweets exist (None: all)."""
        ids = sorted(int(t["id"]) for t in self.tweets)
        self.visible_upto = None if count >= len(ids) else (ids[count - 1] if count else -1)

    def answer(self, query: dict[str, str]) -> tuple[int, dict, dict]:
        self.requests.append(query)
        status = self.fail.get(len(self.requests))
        if status == 429:
            reset = str(int(time.time()) + 900)
            return 429, {"x-rate-limit-reset": reset}, {"title": "Too Many Requests",
                                                         "detail": "Too Many Requests",
                                                         "type": "about:blank", "status": 429}
        if status:
            return status, {}, {"title": "Service Unavailable", "status": status}
        if not query.get("query"):
            return 400, {}, {"errors": [{"message": "query is required"}]}
        max_results = int(query.get("max_results", 10))
        if not 10 <= max_results <= 100:
            return 400, {}, {"errors": [{"message": "max_results must be 10..100"}]}
        since = int(query.get("since_id", -1))
        until = int(query["until_id"]) if "until_id" in query else None
        token = query.get("next_token")
        if token:
            until = int(token.removeprefix("nt"))
        start = (datetime.fromisoformat(query["start_time"].replace("Z", "+00:00"))
                 if "start_time" in query else None)
        fields = set(query.get("tweet.fields", "").split(","))
        fields.add("edit_history_tweet_ids")  # a default field of v2
        matching = [t for t in self.by_query.get(query["query"], self.tweets)
                    if since < int(t["id"])
                    and (until is None or int(t["id"]) < until)
                    and (self.visible_upto is None or int(t["id"]) <= self.visible_upto)
                    and (start is None or datetime.fromisoformat(
                        t["created_at"].replace("Z", "+00:00")) >= start)]
        page = matching[:min(max_results, self.page_size)]
        if not page:
            return 200, {}, {"meta": {"result_count": 0}}
        def shown(t):  # only the fields asked for, as the API does
            return {"id": t["id"], "text": t["text"],
                    **{f: t[f] for f in ("created_at", "entities", "referenced_tweets",
                                         "edit_history_tweet_ids") if f in fields and f in t}}

        data = [shown(t) for t in page]
        meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"],
                "result_count": len(page)}
        if len(matching) > len(page):
            meta["next_token"] = f"nt{page[-1]['id']}"
        body = {"data": data, "meta": meta}
        if "referenced_tweets.id" in query.get("expansions", "").split(","):
            refs = dict.fromkeys(r["id"] for t in page for r in t.get("referenced_tweets") or ())
            included = sample_includes() if refs and self.included is None else self.included
            carried = [shown(included[i]) for i in refs if i in included]
            if carried:
                body["includes"] = {"tweets": carried}
        return 200, {}, body


def make_handler(api: FakeXApi):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            if url.path != "/2/tweets/search/recent":
                return self._send(404, {}, {"title": "Not Found"})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {}, {"title": "Unauthorized"})
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            self._send(*api.answer(query))

        def _send(self, status, headers, body):
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="module")
def x_server():
    api = FakeXApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture
def x_api(x_server):
    x_server.reset()
    return x_server


class ToLocalServer(HTTPAdapter):
    """Sends what tweepy addresses to https://api.twitter.com to the local server."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def send(self, request, **kwargs):
        assert request.url.startswith(X_API + "/"), request.url
        request.url = self.base_url + request.url[len(X_API):]
        return super().send(request, **kwargs)


SAMPLE_NOW = datetime(2021, 9, 22, 16, 40, tzinfo=UTC).timestamp()  # when they were fetched


def redirect(source: TwitterSource, api: FakeXApi) -> TwitterSource:
    source.client.session.mount(X_API + "/", ToLocalServer(api.base_url))
    return source


def twitter_source(api: FakeXApi, clock=lambda: SAMPLE_NOW) -> TwitterSource:
    return redirect(TwitterSource(TOKEN, "#kpop OR #brexit", clock=clock), api)


@pytest.fixture
def board(pulse_env):
    from chalicelib.clients import get_redis

    return Leaderboard(get_redis(), "ingest-test")


def run_until_complete(board, source, max_pages: int, limit: int = 200):
    results = []
    for _ in range(limit):
        results.append(run_ingest(board, source, max_pages=max_pages))
        if results[-1].complete:
            return results
    raise AssertionError(f"not complete after {limit} runs: {results[-1]}")


# --- TwitterSource against the imitation -------------------------------------------------

def test_all_pages_are_read_and_counted_exactly(board, x_api):
    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    x_api.reset(tweets, page_size=30)
    result = run_ingest(board, twitter_source(x_api), max_pages=100)

    assert (result.pages, result.tweets_seen, result.tweets_counted) == (7, 200, 200)
    assert result.complete and not result.rate_limited and result.stopped == "complete"
    newest = max(int(t["id"]) for t in tweets)
    assert board.progress() == result.checkpoint == {"since_id": str(newest)}
    assert board_counts(board) == expected_counts(tweets)
    assert board.refresh_rising() == 0  # the run left rising's stored order current
    first = x_api.requests[0]
    assert set(first["tweet.fields"].split(",")) == {"created_at", "entities",
                                                     "referenced_tweets",
                                                     "edit_history_tweet_ids"}
    assert first["expansions"] == "referenced_tweets.id"
    assert first["max_results"] == "100" and first["query"] == "#kpop OR #brexit"
    assert "since_id" not in first and "until_id" not in first
    # paging followed next_token to the end, one request per page
    assert [bool(q.get("next_token")) for q in x_api.requests] == [False] + [True] * 6

    again = run_ingest(board, twitter_source(x_api), max_pages=100)
    assert (again.pages, again.tweets_seen, again.tweets_counted) == (1, 0, 0)
    assert again.complete and again.checkpoint == {"since_id": str(newest)}
    assert x_api.requests[-1]["since_id"] == str(newest)


def test_new_tweets_are_read_from_the_checkpoint(board, x_api):
    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    x_api.reset(tweets, page_size=40)
    x_api.reveal(120)
    first = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert first.complete and first.tweets_counted == 120
    x_api.reveal(len(tweets))
    second = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert second.complete and (second.tweets_seen, second.tweets_counted) == (80, 80)
    assert x_api.requests[-second.pages]["since_id"] == first.checkpoint["since_id"]
    assert board_counts(board) == expected_counts(tweets)


def test_rate_limit_stops_cleanly_without_sleeping_and_the_next_run_finishes(
        board, x_api, monkeypatch):
    import tweepy.client

    def no_sleep(seconds):
        raise AssertionError(f"slept {seconds} s on a rate limit")

    monkeypatch.setattr(tweepy.client.time, "sleep", no_sleep)
    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    ordered = newest_first(tweets)
    x_api.reset(tweets, page_size=50)
    x_api.fail = {3: 429}

    started = time.monotonic()
    stopped = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert time.monotonic() - started < 2
    assert stopped.rate_limited and not stopped.complete and stopped.stopped == "rate_limited"
    assert stopped.rate_limit_reset and stopped.rate_limit_reset > time.time()
    assert (stopped.pages, stopped.tweets_counted) == (2, 100)
    assert board.progress() == {"pending_newest": ordered[0]["id"],
                                "pending_until": ordered[99]["id"]}
    assert board_counts(board) == expected_counts(ordered[:100])

    resumed = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert resumed.complete and (resumed.pages, resumed.tweets_counted) == (2, 100)
    assert x_api.requests[3]["until_id"] == ordered[99]["id"]
    assert "since_id" not in x_api.requests[3] and "next_token" not in x_api.requests[3]
    assert board.progress() == {"since_id": ordered[0]["id"]}
    assert board_counts(board) == expected_counts(tweets)


def test_a_server_error_fails_the_run_and_loses_nothing(board, x_api):
    import tweepy

    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    x_api.reset(tweets, page_size=50)
    x_api.fail = {2: 503}
    with pytest.raises(tweepy.TwitterServerError):
        run_ingest(board, twitter_source(x_api), max_pages=10)
    assert board_counts(board) == expected_counts(newest_first(tweets)[:50])
    run_until_complete(board, twitter_source(x_api), max_pages=10)
    assert board_counts(board) == expected_counts(tweets)


def test_page_cap_leaves_the_range_pending(board, x_api):
    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    ordered = newest_first(tweets)
    x_api.reset(tweets, page_size=20)
    first = run_ingest(board, twitter_source(x_api), max_pages=3)
    assert (first.pages, first.tweets_counted, first.complete) == (3, 60, False)
    assert first.stopped == "page_cap" and len(x_api.requests) == 3  # no page read ahead
    assert board.progress() == {"pending_newest": ordered[0]["id"],
                                "pending_until": ordered[59]["id"]}
    rest = run_until_complete(board, twitter_source(x_api), max_pages=3)
    assert [r.pages for r in rest] == [3, 3, 1]  # 200 tweets = 10 pages
    assert sum(r.tweets_counted for r in [first, *rest]) == 200
    assert board_counts(board) == expected_counts(tweets)
    assert board.progress() == {"since_id": ordered[0]["id"]}


def test_empty_result_does_not_crash_and_keeps_the_checkpoint(board, x_api):
    x_api.reset([])
    nothing = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert (nothing.pages, nothing.tweets_seen, nothing.tweets_counted) == (1, 0, 0)
    assert nothing.complete and nothing.checkpoint == {} and board.progress() == {}

    tweets = raw_tweets("kpop.jsonl")
    x_api.reset(tweets)
    run_ingest(board, twitter_source(x_api), max_pages=10)
    checkpoint = board.progress()
    again = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert again.complete and again.tweets_seen == 0 and board.progress() == checkpoint
    assert board_counts(board) == expected_counts(tweets)


def test_a_pending_range_that_comes_back_empty_is_closed(board, x_api):
    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    ordered = newest_first(tweets)
    x_api.reset(tweets, page_size=50)
    run_ingest(board, twitter_source(x_api), max_pages=1)
    x_api.reset(ordered[:50], page_size=50)  # the older tweets were deleted meanwhile
    closed = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert closed.complete and closed.tweets_seen == 0
    assert board.progress() == {"since_id": ordered[0]["id"]}


def test_checkpoints_older_than_the_search_window(board, x_api):
    tweets = raw_tweets("kpop.jsonl")
    ordered = newest_first(tweets)
    x_api.reset(tweets, page_size=50)
    later = SAMPLE_NOW + 8 * 86400
    # A pending range entirely older than 7 days cannot be read any more: closed, no request.
    board.record([], progress={"pending_newest": ordered[0]["id"],
                               "pending_until": ordered[10]["id"]})
    closed = run_ingest(board, twitter_source(x_api, clock=lambda: later), max_pages=10)
    assert closed.complete and x_api.requests == []
    assert board.progress() == {"since_id": ordered[0]["id"]}
    # A since_id older than 7 days would be a 400: asked as start_time instead.
    run_ingest(board, twitter_source(x_api, clock=lambda: later), max_pages=10)
    (asked,) = x_api.requests
    assert "since_id" not in asked and asked["start_time"].startswith("2021-09-23T")
    assert snowflake_time(int(ordered[0]["id"])) == pytest.approx(
        datetime.fromisoformat(ordered[0]["created_at"].replace("Z", "+00:00")).timestamp(),
        abs=1)


def test_twitter_source_from_settings_reads_the_token_from_secrets_manager(pulse_env, x_api):
    from chalicelib.clients import get_aws_client

    arn = get_aws_client("secretsmanager").create_secret(
        Name="pulse/dev/x-bearer-token", SecretString=TOKEN)["ARN"]
    s = Settings.from_env({**pulse_env_vars(pulse_env), "PULSE_STAGE": "dev",
                           "X_BEARER_TOKEN_SECRET_ARN": arn, "LEADERBOARD_QUERY": "#kpop"})
    assert s.leaderboard_source == "twitter"
    source = source_from_settings(s, clock=lambda: SAMPLE_NOW)
    assert isinstance(source, TwitterSource) and source.client.wait_on_rate_limit is False
    x_api.reset(raw_tweets("kpop.jsonl"))
    pages = list(redirect(source, x_api).pages())
    assert len(pages) == 1 and len(pages[0]["data"]) == 100  # 401 without the right token
    assert x_api.requests[0]["query"] == "#kpop"


def pulse_env_vars(settings: Settings) -> dict[str, str]:
    return {"REDIS_URL": settings.redis_url, "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]}


def test_token_from_the_environment_only_on_the_local_stage():
    local = {"LEADERBOARD_SOURCE": "twitter"}
    assert isinstance(source_from_settings(Settings.from_env({**local, "X_BEARER_TOKEN": TOKEN})),
                      TwitterSource)
    with pytest.raises(SourceConfigError, match="no X API bearer token"):
        source_from_settings(Settings.from_env(local))
    prod = {"PULSE_STAGE": "prod"}
    with pytest.raises(SourceConfigError, match="local stage only"):
        source_from_settings(Settings.from_env({**prod, **local, "X_BEARER_TOKEN": TOKEN}))
    assert isinstance(source_from_settings(Settings.from_env({})), SyntheticSource)
    with pytest.raises(SourceConfigError, match="LEADERBOARD_ARCHIVE"):
        source_from_settings(Settings.from_env({"LEADERBOARD_SOURCE": "archive"}))
    with pytest.raises(SettingsError, match="LEADERBOARD_SOURCE must be one of twitter, "
                                            "archive, synthetic"):
        Settings.from_env({"LEADERBOARD_SOURCE": "mastodon"})


# --- boards ---------------------------------------------------------------------------------

def boards_settings(pulse_env, boards: dict[str, str]) -> Settings:
    return Settings.from_env({**pulse_env_vars(pulse_env), "LEADERBOARD_SOURCE": "twitter",
                              "LEADERBOARD_BOARDS": json.dumps(boards)})


@pytest.fixture
def two_boards(pulse_env, x_api):
    """Boards kpop and brexit, each searching for its tag in the imitation API:
    (kpop tweets, brexit tweets, settings, make_source)."""
    kpop, brexit = raw_tweets("kpop.jsonl"), raw_tweets("brexit.jsonl")
    x_api.reset(kpop + brexit, by_query={"#kpop": kpop, "#brexit": brexit})
    settings = boards_settings(pulse_env, {"kpop": "#kpop", "brexit": "#brexit"})

    def make_source(name, query):
        return redirect(TwitterSource(TOKEN, query, clock=lambda: SAMPLE_NOW), x_api)

    return kpop, brexit, settings, make_source


def test_two_boards_ingest_side_by_side_with_separate_counts(board, x_api, two_boards):
    kpop, brexit, settings, make_source = two_boards
    results = run_scheduled_ingest(settings, redis=board.redis, make_source=make_source)
    assert list(results) == ["kpop", "brexit"] and all(r.complete for r in results.values())
    assert [q["query"] for q in x_api.requests] == ["#kpop", "#brexit"]
    kpop_board, brexit_board = (Leaderboard(board.redis, n) for n in ("kpop", "brexit"))
    assert board_counts(kpop_board) == expected_counts(kpop)
    assert board_counts(brexit_board) == expected_counts(brexit)
    assert kpop_board.progress()["since_id"] == max((t["id"] for t in kpop), key=int)

    # the first board served gets rate limited: the other is served all the same, and the
    # limited one is not asked again before the reset time the API gave
    x_api.reset(kpop + brexit, by_query={"#kpop": kpop, "#brexit": brexit})
    for b in (kpop_board, brexit_board):
        b.redis.delete(b.key_progress)  # read both ranges again (markers: no double count)
    x_api.fail = {1: 429}
    limited = run_scheduled_ingest(settings, redis=board.redis, make_source=make_source)
    first, second = list(limited)
    assert limited[first].stopped == "rate_limited" and limited[second].complete
    reset = limited[first].rate_limit_reset
    assert float(Leaderboard(board.redis, first).schedule()["rate_limited_until"]) == reset
    asked = len(x_api.requests)
    waiting = run_scheduled_ingest(settings, redis=board.redis, make_source=make_source)
    assert waiting[first].stopped == "waiting" and "not asked" in waiting[first].summary()
    assert all(q["query"] != f"#{first}" for q in x_api.requests[asked:])
    asked = len(x_api.requests)
    later = run_scheduled_ingest(settings, redis=board.redis, make_source=make_source,
                                 clock=lambda: reset + 1)
    assert later[first].complete and x_api.requests[asked]["query"] == f"#{first}"
    assert board_counts(kpop_board) == expected_counts(kpop)
    assert board_counts(brexit_board) == expected_counts(brexit)


def test_a_board_the_deadline_cut_off_goes_first_next_time(pulse_env, board, x_api,
                                                          two_boards):
    _, _, settings, make_source = two_boards

    def one_request_per_run():  # the time budget allows one page a run
        return len(x_api.requests) > asked

    asked = 0
    first = run_scheduled_ingest(settings, redis=board.redis, make_source=make_source,
                                 should_stop=one_request_per_run)
    assert list(first) == ["kpop"]  # brexit was not reached
    asked = len(x_api.requests)
    second = run_scheduled_ingest(settings, redis=board.redis, make_source=make_source,
                                  should_stop=one_request_per_run)
    assert list(second) == ["brexit"] and x_api.requests[asked]["query"] == "#brexit"
    with pytest.raises(SourceConfigError, match="no board 'nope'"):
        run_scheduled_ingest(settings, redis=board.redis, boards=["nope"])
    with pytest.raises(ValueError, match="LEADERBOARD_BOARDS"):
        run_scheduled_ingest(boards_settings(pulse_env, {}), redis=board.redis)


# --- killed at random points, resumed: exactly the single-pass counts -----------------------

class Killed(BaseException):
    """The process died here (BaseException: nothing in the code under test catches it)."""


class KillSwitch:
    """Counts events (Redis sends and replies, pages from the source); kills at the armed one."""

    def __init__(self):
        self.armed: int | None = None
        self.events = 0
        self.kills: list[str] = []

    def arm(self, countdown: int | None) -> None:
        self.armed, self.events = countdown, 0

    def tick(self, where: str) -> None:
        self.events += 1
        if self.armed is not None and self.events > self.armed:
            self.armed = None
            self.kills.append(where)
            raise Killed(where)


def faulty(connection_class, switch: KillSwitch):
    class FaultyConnection(connection_class):
        def send_packed_command(self, *args, **kwargs):
            switch.tick("before a Redis command is sent")
            return super().send_packed_command(*args, **kwargs)

        def read_response(self, *args, **kwargs):
            response = super().read_response(*args, **kwargs)
            switch.tick("after Redis executed a command, before its reply is used")
            return response

    return FaultyConnection


class KillingSource:
    """The source, killed between pages when the switch says so."""

    name = "killing"

    def __init__(self, inner, switch: KillSwitch):
        self.inner, self.switch = inner, switch

    def pages(self, **kwargs):
        for page in self.inner.pages(**kwargs):
            self.switch.tick("between pages")
            yield page


def kill_and_resume(make_client, x_api, kills, page_size, max_pages, reveal_steps):
    """Runs with a fresh client each (a new process), killed at `kills`, more tweets
    appearing at `reveal_steps`; then runs until complete.  Returns the final board."""
    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    x_api.reset(tweets, page_size=page_size)
    x_api.reveal(reveal_steps[0] if reveal_steps else len(tweets))
    switch = KillSwitch()
    pending_kills = list(kills)
    observer = make_client(KillSwitch())
    for run in range(500):
        if run < len(reveal_steps):
            x_api.reveal(reveal_steps[run])
        elif run == len(reveal_steps):
            x_api.reveal(len(tweets))
        # a run that starts a new range once every tweet exists reads all that is left
        fresh_range = "pending_newest" not in Leaderboard(observer, "killed").progress()
        switch.arm(pending_kills[0] if pending_kills else None)
        client = None
        try:
            client = make_client(switch)
            board = Leaderboard(client, "killed")
            source = KillingSource(twitter_source(x_api), switch)
            result = run_ingest(board, source, max_pages=max_pages)
        except Killed:
            pending_kills.pop(0)
            continue
        finally:
            if client is not None:
                client.close()
        if pending_kills:  # the run ended before the armed event: aim inside it next time
            pending_kills[0] %= max(1, switch.events)
        elif result.complete and fresh_range and run >= len(reveal_steps):
            assert len(switch.kills) == len(kills)
            return Leaderboard(observer, "killed"), tweets
    raise AssertionError("never completed")


KILL_RUNS = dict(
    kills=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    page_size=st.sampled_from([10, 33, 100]),
    max_pages=st.integers(1, 6),
    reveal_steps=st.lists(st.integers(0, 200), max_size=3).map(sorted),
)


def test_killed_at_random_points_then_resumed_counts_exactly_once(pulse_env, x_server):
    kills_made = 0

    # The property runs inside the test so that the kill count it asserts
    # belongs to this run alone, whatever else ran before.
    @settings(max_examples=60, deadline=None)
    @given(**KILL_RUNS)
    def killed_then_resumed(kills, page_size, max_pages, reveal_steps):
        nonlocal kills_made
        redis.Redis.from_url(pulse_env.redis_url).flushall()

        def make_client(switch):
            return redis.Redis.from_url(pulse_env.redis_url, decode_responses=True,
                                        connection_class=faulty(redis.Connection, switch))

        board, tweets = kill_and_resume(make_client, x_server, kills, page_size, max_pages,
                                        reveal_steps)
        kills_made += len(kills)
        assert board_counts(board) == expected_counts(tweets)
        assert board.progress() == {"since_id": str(max(int(t["id"]) for t in tweets))}

    killed_then_resumed()
    assert kills_made >= 50


# 25 runs (~1 s each: a cluster client per run), 1-4 kills each; the standalone
# property above makes the 60-run, >= 50-kill case
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**KILL_RUNS)
def test_killed_and_resumed_on_the_redis_cluster(
        redis_cluster, x_server, kills, page_size, max_pages, reveal_steps):
    from redis.cluster import RedisCluster

    port = redis_cluster[0].port

    def make_client(switch):
        # from_url: only then does RedisCluster hand connection_class to its node pools
        return RedisCluster.from_url(f"redis://127.0.0.1:{port}", decode_responses=True,
                                     connection_class=faulty(redis.Connection, switch))

    admin = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
    admin.flushall(target_nodes=RedisCluster.PRIMARIES)
    admin.close()
    board, tweets = kill_and_resume(make_client, x_server, kills, page_size, max_pages,
                                    reveal_steps)
    assert board_counts(board) == expected_counts(tweets)
    assert board.progress() == {"since_id": str(max(int(t["id"]) for t in tweets))}


# --- archives ---------------------------------------------------------------------------------

def test_sample_archives_count_exactly_and_a_second_import_changes_nothing(board, tmp_path):
    source = ArchiveSource([sample_file(n) for n in SAMPLES])
    seen_bytes = []
    first = import_archive(board, source, batch_size=64, on_bytes=seen_bytes.append)
    tweets = raw_tweets(*SAMPLES)
    assert len(tweets) == 200  # 2sets.jsonl repeats the other two files
    assert (first.pages, first.tweets_read, first.tweets_counted) == (4, 400, 200)
    assert first.duplicates == 200 and sum(seen_bytes) == source.total_bytes()
    counts = board_counts(board)
    assert counts == expected_counts(tweets)
    assert counts["kpop"] == 100 and counts["brexit"] == 119  # with the originals' tags
    top = board.top("all", 3)
    assert [e.hashtag.casefold() for e in top] == ["brexit", "kpop", "blackpink"]
    assert board.refresh_rising() == 0  # the import left rising's stored order current

    second = import_archive(board, source)
    assert (second.tweets_read, second.tweets_counted) == (0, 0)
    assert second.skipped_files == [str(p) for p in source.paths]
    assert "3 file(s) imported before, skipped" in second.summary()
    assert board_counts(board) == counts and board.progress() == {}
    # much later: every dedupe marker has expired; the files are still known
    for key in board.keys():
        if ":seen:" in key:
            board.redis.delete(key)
    assert import_archive(board, source).tweets_counted == 0
    assert board_counts(board) == counts
    # the same content under another name is the same archive
    import shutil

    copy = shutil.copy(sample_file("kpop.jsonl"), tmp_path / "renamed.jsonl")
    assert import_archive(board, ArchiveSource([copy])).skipped_files == [str(copy)]


def test_sample_archives_on_the_redis_cluster(redis_cluster):
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=redis_cluster[0].port, decode_responses=True)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    board = Leaderboard(client, "archive-cluster")
    source = ArchiveSource([sample_file(n) for n in SAMPLES])
    assert import_archive(board, source, batch_size=150).tweets_counted == 200
    assert import_archive(board, source).tweets_counted == 0
    assert board_counts(board) == expected_counts(raw_tweets(*SAMPLES))
    client.close()


# what each retweet policy counts in the sample files (hashtags, distinct case-folded tags)
POLICY_TOTALS = {("original", "kpop.jsonl"): (665, 162), ("original", "brexit.jsonl"): (306, 72),
                 ("own", "kpop.jsonl"): (496, 123), ("own", "brexit.jsonl"): (157, 52)}


@pytest.mark.parametrize("where", ["standalone", "cluster"])
@pytest.mark.parametrize("retweets", ["original", "own"])
def test_retweet_policies_count_the_documented_totals(request, pulse_env, retweets, where):
    from redis.cluster import RedisCluster

    from chalicelib.clients import get_redis

    if where == "cluster":
        client = RedisCluster(host="127.0.0.1", port=request.getfixturevalue(
            "redis_cluster")[0].port, decode_responses=True)
        client.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        client = get_redis()
    for name in ("kpop.jsonl", "brexit.jsonl"):
        board = Leaderboard(client, f"rt-{retweets}-{name}")
        source = ArchiveSource([sample_file(name)])
        first = import_archive(board, source, retweets=retweets)
        counts = board_counts(board)
        assert (sum(counts.values()), len(counts)) == POLICY_TOTALS[retweets, name]
        assert counts == expected_counts(raw_tweets(name), retweets)
        assert first.originals_missing == 0
        again = import_archive(board, source, retweets=retweets)  # re-import: no change
        assert again.tweets_counted == 0 and board_counts(board) == counts
    if where == "cluster":
        client.close()


def test_retweets_through_the_api_each_policy_and_a_missing_original(board, x_api):
    tweets = raw_tweets("kpop.jsonl", "brexit.jsonl")
    retweets = sum(any(r["type"] == "retweeted" for r in t.get("referenced_tweets") or ())
                   for t in tweets)
    for policy in ("own", "skip"):
        x_api.reset(tweets)
        lb = Leaderboard(board.redis, f"api-{policy}")
        result = run_ingest(lb, twitter_source(x_api), max_pages=10, retweets=policy)
        assert result.tweets_counted == 200 and result.originals_missing == 0
        assert board_counts(lb) == expected_counts(tweets, policy)
    # the expansion brought nothing: the retweets' own (cut) tags count, and the run says so
    x_api.reset(tweets, included={})
    result = run_ingest(board, twitter_source(x_api), max_pages=10)
    assert result.tweets_counted == 200 and result.originals_missing == retweets == 145
    assert f"{retweets} retweets without their original" in result.summary()
    assert board_counts(board) == expected_counts(tweets, "own")
    with pytest.raises(ValueError, match="original, own, skip"):
        run_ingest(board, twitter_source(x_api), max_pages=1, retweets="all")


def test_archive_replay_through_run_ingest(board):
    source = ArchiveSource([sample_file("2sets.jsonl"), sample_file("kpop.jsonl")])
    results = run_until_complete(board, source, max_pages=1)
    assert [r.tweets_counted for r in results] == [100, 100]
    assert board_counts(board) == expected_counts(raw_tweets("2sets.jsonl"))
    assert run_ingest(board, source, max_pages=5).tweets_seen == 0


def test_archive_lines_that_are_not_pages_are_errors_naming_file_and_line(tmp_path):
    page = sample_file("kpop.jsonl").read_bytes().strip()
    good = tmp_path / "good.jsonl"
    good.write_bytes(page + b"\n\n")  # a trailing blank line is fine
    assert [p.line for p in ArchiveSource([good]).read_pages()] == [1]

    cases = {
        b"{not json\n": "bad.jsonl:2: not valid JSON",
        b"[1, 2]\n": "bad.jsonl:2: not an X API v2 response page",
        b'{"id": "1", "text": "#a"}\n': "twarc2 flatten",
        b'{"data": {"id": "1"}}\n': "bad.jsonl:2: `data` is not a list",
        b'{"data": [{"id": "x1", "text": "#a"}]}\n': "bad.jsonl:2: a tweet cannot be read",
    }
    for second_line, message in cases.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(page + b"\n" + second_line + page + b"\n")
        with pytest.raises(ArchiveError, match=message.replace("(", r"\(")):
            for archived in ArchiveSource([bad]).read_pages():
                archived.tweets()


def test_tweets_without_created_at_count_at_their_snowflake_time(board, tmp_path):
    from chalicelib.leaderboard.sources import TWITTER_EPOCH_MS

    now = time.time()
    fresh = [{"id": str(((int((now - 1800) * 1000) - TWITTER_EPOCH_MS) << 22) | i),
              "text": f"#fresh #Tag{i % 3}"} for i in range(30)]  # no created_at, no entities
    assert all(abs(t.created_at - (now - 1800)) < 0.01
               for t in tweets_from_page({"data": fresh}))
    # a whole recorded page without the field (as tweepy's own recordings are)
    page = orjson.loads(sample_file("brexit.jsonl").read_bytes().splitlines()[0])
    for t in page["data"]:
        del t["created_at"]
    archive = tmp_path / "no-created-at.jsonl"
    archive.write_bytes(orjson.dumps(page) + b"\n" + orjson.dumps({"data": fresh}) + b"\n")
    result = import_archive(board, ArchiveSource([archive]))
    assert result.tweets_counted == 130
    assert board_counts(board) == expected_counts(raw_tweets("brexit.jsonl")) + Counter(
        {"fresh": 30, "tag0": 10, "tag1": 10, "tag2": 10})
    assert board_counts(board, "1h") == Counter({"fresh": 30, "tag0": 10, "tag1": 10,
                                                 "tag2": 10})


# --- synthetic --------------------------------------------------------------------------------

def test_synthetic_source_is_deterministic_zipf_and_resumable(board):
    now = 1_700_000_000.0
    source = SyntheticSource(7, tags=50, zipf_s=1.1, tweets_per_run=1000,
                             interval_seconds=300, clock=lambda: now)
    pages = list(source.pages())
    again = list(SyntheticSource(7, tags=50, tweets_per_run=1000, interval_seconds=300,
                                 clock=lambda: now).pages())
    assert pages == again and len(pages) == 10
    tweets = [t for p in pages for t in tweets_from_page(p)]
    ids = [t.id for t in tweets]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 1000
    assert all(now - 300 <= t.created_at <= now for t in tweets)
    assert all(abs(snowflake_time(t.id) - t.created_at) < 0.002 for t in tweets)
    popularity = Counter(tag.lower() for t in tweets for tag in t.hashtags)
    ranked = [tag for tag, _ in popularity.most_common()]
    assert ranked[0] == "tag01" and popularity["tag01"] > 2 * popularity["tag05"]

    # resumed across "processes" under a page cap: the single-pass counts
    results = run_until_complete(board, SyntheticSource(7, tags=50, tweets_per_run=1000,
                                                        interval_seconds=300,
                                                        clock=lambda: now), max_pages=3)
    assert [r.pages for r in results] == [3, 3, 3, 1]
    assert board_counts(board) == popularity
    later = SyntheticSource(7, tags=50, tweets_per_run=1000, interval_seconds=300,
                            clock=lambda: now + 60)
    assert run_ingest(board, later, max_pages=10).tweets_counted == 200  # a minute's worth


def test_every_run_rolls_the_windows_even_with_nothing_to_read(pulse_env):
    from chalicelib.clients import get_redis

    class Empty:
        name = "empty"

        def pages(self, **_):
            yield {"meta": {"result_count": 0}}

    now = [time.time()]
    board = Leaderboard(get_redis(), "rolled", clock=lambda: now[0])
    board.record([Tweet(1, now[0] - 2 * 86400, ("old",)), Tweet(2, now[0] - 60, ("new",))])
    now[0] += 6 * 86400  # 'old' has left the 7-day window; reads do not roll it away
    assert {e.hashtag for e in board.top("7d")} == {"old", "new"}
    run_ingest(board, Empty(), max_pages=1)  # the writer rolls, whatever the source had
    assert {e.hashtag for e in board.top("7d")} == {"new"}


def test_a_bad_retweet_policy_is_a_config_error(pulse_env):
    with pytest.raises(SettingsError, match="LEADERBOARD_RETWEETS must be one of original, "
                                            "own, skip"):
        Settings.from_env({**pulse_env_vars(pulse_env), "LEADERBOARD_RETWEETS": "all"})
