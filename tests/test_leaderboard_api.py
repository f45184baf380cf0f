"""GET /leaderboard and /leaderboard/{hashtag} through chalice.test.Client on real Redis."""
import json
import time

import pytest

from chalicelib.clients import get_redis, reset_clients
from chalicelib.leaderboard import api
from chalicelib.leaderboard.model import Tweet
from chalicelib.leaderboard.store import Leaderboard
from local import processes


@pytest.fixture
def board(app_client, pulse_env):
    api.get_board.cache_clear()
    yield Leaderboard(get_redis(), pulse_env.leaderboard_name)
    api.get_board.cache_clear()


def tweets(*tag_lists, start_id=1000, age=60.0):
    now = time.time()
    return [Tweet(start_id + i, now - age, tuple(tags)) for i, tags in enumerate(tag_lists)]


@pytest.fixture
def counted(board):
    # kpop 4 (mostly spelled KPop), bts 3, lisa 2, blackpink 1
    board.record(tweets(["KPop", "bts"], ["KPop", "lisa"], ["kpop", "bts", "lisa"],
                        ["KPop", "bts", "blackpink"]))
    return board


@pytest.mark.parametrize("query, field", [
    ("window=bogus", "window"), ("n=0", "n"), ("n=1000", "n"), ("n=abc", "n"),
    ("offset=-1", "offset"), ("window=", None),
    # a name given twice: which value was meant is not guessed
    ("n=5&n=50", "n"), ("window=1h&window=1h", "window"), ("board=a&board=b", "board"),
    # an integer is ASCII digits (Python's int() reads all of these)
    ("n=9%0D", "n"), ("n=%205", "n"), ("n=%2B5", "n"), ("n=1_0", "n"), ("n=%D9%A3", "n"),
])
def test_bad_query_gives_400_naming_the_parameter(app_client, board, query, field):
    resp = app_client.http.get(f"/leaderboard?{query}")
    if field is None:  # an empty value means the default
        assert resp.status_code == 200
        return
    assert resp.status_code == 400, resp.body
    assert resp.json_body["field"] == field and field in resp.json_body["message"]


@pytest.mark.parametrize("tag, why", [("a" * 200, "at most 139"), ("123", "not a hashtag"),
                                      ("no%20space", "not a hashtag")])
def test_bad_hashtag_gives_400(app_client, board, tag, why):
    resp = app_client.http.get(f"/leaderboard/{tag}")
    assert resp.status_code == 400 and why in resp.json_body["message"], resp.body


def test_top_lists_ranks_with_the_most_common_spelling(app_client, counted):
    body = app_client.http.get("/leaderboard?n=3").json_body
    assert body["window"] == "all" and body["total"] == 4
    assert body["items"] == [{"rank": 1, "hashtag": "KPop", "score": 4},
                             {"rank": 2, "hashtag": "bts", "score": 3},
                             {"rank": 3, "hashtag": "lisa", "score": 2}]
    assert body["updated_at"] is not None
    page2 = app_client.http.get("/leaderboard?n=2&offset=2").json_body["items"]
    assert [(i["rank"], i["hashtag"]) for i in page2] == [(3, "lisa"), (4, "blackpink")]


def test_one_tag_is_case_insensitive_with_neighbours(app_client, counted):
    body = app_client.http.get("/leaderboard/BTS?window=24h").json_body
    assert (body["rank"], body["hashtag"], body["score"]) == (2, "bts", 3)
    assert [e["hashtag"] for e in body["above"]] == ["KPop"]
    assert [e["hashtag"] for e in body["below"]] == ["lisa", "blackpink"]
    assert app_client.http.get("/leaderboard/%23lisa").json_body["rank"] == 3


def test_unknown_tag_is_404(app_client, counted):
    resp = app_client.http.get("/leaderboard/nosuchtag")
    assert resp.status_code == 404 and "nosuchtag" in resp.json_body["message"]


def test_old_tweets_count_all_time_but_not_in_the_last_hour(app_client, board):
    board.record(tweets(["fresh"], start_id=1))
    board.record(tweets(["stale"], start_id=2, age=3 * 3600))
    hour = [i["hashtag"] for i in app_client.http.get("/leaderboard?window=1h").json_body["items"]]
    day = [i["hashtag"] for i in app_client.http.get("/leaderboard?window=24h").json_body["items"]]
    assert hour == ["fresh"] and sorted(day) == ["fresh", "stale"]


def test_redis_down_gives_503_json_within_two_seconds(app_client, board, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{processes.free_port()}/0")
    reset_clients()
    api.get_board.cache_clear()
    started = time.perf_counter()
    resp = app_client.http.get("/leaderboard")
    assert resp.status_code == 503 and resp.json_body["error"] == "ServiceUnavailable"
    assert time.perf_counter() - started < 2.0


def test_hung_redis_gives_503_within_two_seconds(app_client, own_redis):
    api.get_board.cache_clear()
    try:
        assert app_client.http.get("/leaderboard").status_code == 200
        own_redis.pause()
        started = time.perf_counter()
        resp = app_client.http.get("/leaderboard")
        elapsed = time.perf_counter() - started
    finally:
        own_redis.resume()
        api.get_board.cache_clear()
    assert resp.status_code == 503, resp.body
    assert elapsed < 2.0


def test_boards_are_separate_and_an_unknown_board_is_404(app_client, board, monkeypatch):
    monkeypatch.setenv("LEADERBOARD_BOARDS", json.dumps({"spring": "#a", "autumn": "#b"}))
    reset_clients()
    api.get_board.cache_clear()
    Leaderboard(get_redis(), "spring").record(tweets(["x"], ["x"]))
    Leaderboard(get_redis(), "autumn").record(tweets(["y"]))
    default = app_client.http.get("/leaderboard").json_body
    assert default["board"] == "spring" and default["boards"] == ["spring", "autumn"]
    assert [(i["hashtag"], i["score"]) for i in default["items"]] == [("x", 2)]
    autumn = app_client.http.get("/leaderboard?board=autumn").json_body
    assert [(i["hashtag"], i["score"]) for i in autumn["items"]] == [("y", 1)]
    assert app_client.http.get("/leaderboard/y?board=autumn").json_body["rank"] == 1
    assert app_client.http.get("/leaderboard/y").status_code == 404  # not on the first board
    for path in ("/leaderboard?board=nope", "/leaderboard/x?board=nope"):
        resp = app_client.http.get(path)
        assert resp.status_code == 404 and resp.json_body["boards"] == ["spring", "autumn"]
        assert "no board 'nope'" in resp.json_body["message"]
    api.get_board.cache_clear()


def test_rising_and_a_tags_hourly_counts(app_client, board):
    now = time.time()
    ids = iter(range(1, 10_000))
    history = []
    for h in range(24):  # steady 'big' 50 an hour; 'jump' 2 an hour, then 40
        at = now - 3600 * h - 1800
        history += [Tweet(next(ids), at, ("big",) * (52 if h == 0 else 50)),
                    Tweet(next(ids), at, ("jump",) * (40 if h == 0 else 2))]
    board.record(history)
    body = app_client.http.get("/leaderboard?order=rising&window=1h&n=10").json_body
    assert body["order"] == "rising" and body["window"] == "1h" and body["candidates"] == 2
    assert [(i["rank"], i["hashtag"], i["score"]) for i in body["items"]] == [
        (1, "jump", 40), (2, "big", 52)]
    assert body["items"][0]["expected"] == 2.0 and body["items"][0]["rising"] > 5
    assert app_client.http.get("/leaderboard?order=rising").json_body["window"] == "1h"
    resp = app_client.http.get("/leaderboard?order=rising&window=all")
    assert resp.status_code == 400 and resp.json_body["field"] == "window"
    resp = app_client.http.get("/leaderboard?order=sideways")
    assert resp.status_code == 400 and resp.json_body["field"] == "order"

    hourly = app_client.http.get("/leaderboard/JUMP?window=24h").json_body["hourly"]
    first_hour = int(now // 3600) * 3600 - 23 * 3600  # the chart's 24 hours, the last so far
    assert len(hourly) == 24 and sum(h["count"] for h in hourly) == sum(
        len(t.hashtags) for t in history if t.hashtags[0] == "jump" and t.created_at >= first_hour)
    assert hourly[-1]["count"] + hourly[-2]["count"] >= 40  # the last hour's tweet
    assert hourly[0]["hour"] < hourly[-1]["hour"]


def test_a_repeated_read_is_a_304_until_the_counts_change(app_client, counted):
    first = app_client.http.get("/leaderboard?n=3")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and first.headers["Cache-Control"] == "max-age=5"
    again = app_client.http.get("/leaderboard?n=3", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.body in (b"", "") and again.headers["ETag"] == etag
    other = app_client.http.get("/leaderboard?n=4", headers={"If-None-Match": etag})
    assert other.status_code == 200  # another answer, another tag
    tag = app_client.http.get("/leaderboard/kpop")
    assert app_client.http.get("/leaderboard/kpop", headers={
        "If-None-Match": f'W/{tag.headers["ETag"]}, "x"'}).status_code == 304
    counted.record(tweets(["kpop"], start_id=5000))  # an ingest: new counts, new ETag
    changed = app_client.http.get("/leaderboard?n=3", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_sources_say_where_the_counts_came_from(app_client, board):
    assert app_client.http.get("/leaderboard").json_body["sources"] == {}
    board.record(tweets(["a"], ["b"]), source="archive")
    board.record(tweets(["a"], start_id=9), source="synthetic")
    assert app_client.http.get("/leaderboard").json_body["sources"] == {"archive": 2,
                                                                        "synthetic": 1}


def test_lookups_are_case_folded(app_client, board):
    board.record(tweets(*[["Großbritannien"]] * 4))
    body = app_client.http.get("/leaderboard/GROSSBRITANNIEN").json_body
    assert (body["hashtag"], body["score"]) == ("Großbritannien", 4)
