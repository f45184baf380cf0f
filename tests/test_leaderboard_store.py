"""chalicelib.leaderboard.store on real Redis: a standalone server and a 3-master cluster.

Exact counts for the recorded X API pages in ../shared, exactly-once under replays and
injected crashes (hypothesis), rolling windows against a model with a fake clock, the
rank API, and every key of a board in one cluster slot.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.cluster import RedisCluster
from redis.crc import key_slot

from chalicelib.leaderboard.keys import tag_key
from chalicelib.leaderboard.model import Tweet, tweet_from_api
from chalicelib.leaderboard.store import ROLL_STEP, WINDOWS, Entry, Leaderboard
from tests.conftest import shared_path

T0 = 1_699_999_800.0  # a fake "now", on a bucket boundary
BS = 300
WINDOW_SECONDS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
TWITTER_EPOCH_MS = 1288834974657
_names = itertools.count()


def snowflake(ts: float, seq: int = 0) -> int:
    return ((int(ts * 1000) - TWITTER_EPOCH_MS) << 22) | seq


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- clients ------------------------------------------------------------------------

_clients: dict[tuple[str, bool], redis.Redis] = {}


def _client(request, kind: str, decode: bool = True):
    key = (kind, decode)
    if key not in _clients:
        if kind == "standalone":
            server = request.getfixturevalue("redis_server")
            _clients[key] = redis.Redis.from_url(f"redis://127.0.0.1:{server.port}/0",
                                                 decode_responses=decode)
        else:
            nodes = request.getfixturevalue("redis_cluster")
            _clients[key] = RedisCluster(host="127.0.0.1", port=nodes[0].port,
                                         decode_responses=decode)
    return _clients[key]


@pytest.fixture(scope="module", autouse=True)
def _close_clients():
    yield
    for client in _clients.values():
        client.close()
    _clients.clear()


@pytest.fixture(params=["standalone", "cluster"])
def r(request):
    """A client of each kind (decode_responses=True, as chalicelib.clients makes them)."""
    client = _client(request, request.param)
    client.flushall()
    return client


@pytest.fixture(params=["standalone", "cluster"])
def r_bytes(request):
    """The same servers with decode_responses=False."""
    client = _client(request, request.param, decode=False)
    client.flushall()
    return client


def board(r, clock=None, name=None, **kwargs) -> Leaderboard:
    return Leaderboard(r, name or f"t{next(_names)}", clock=clock or Clock(), **kwargs)


# --- helpers ------------------------------------------------------------------------

def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def zset(lb: Leaderboard, window: str = "all") -> dict[str, int]:
    """A window's raw sorted set (read after the board rolled it: call lb.roll first)."""
    return {_text(k): int(v) for k, v in
            lb.redis.zrange(lb.key_window[window], 0, -1, withscores=True)}


def counts(lb: Leaderboard, window: str = "all") -> dict[str, int]:
    lb.roll()  # the writer's roll, to the board's clock (reads never roll)
    return zset(lb, window)


def snapshot(lb: Leaderboard) -> dict:
    """Everything a board holds, comparable across boards (key names without the board)."""
    out = {}
    for key in lb.keys():
        name = key[len(lb.prefix):]
        kind = _text(lb.redis.type(key))
        if kind == "zset":
            value = {_text(k): v for k, v in lb.redis.zrange(key, 0, -1, withscores=True)}
        elif kind == "hash":
            value = {_text(k): _text(v) for k, v in lb.redis.hgetall(key).items()}
            if name == "variants":
                value = {k: sorted(v.split("\t")) for k, v in value.items()}
        elif kind == "set":
            value = sorted(_text(m) for m in lb.redis.smembers(key))
        elif name.endswith(":depth"):  # how many times a marker group split
            value = _text(lb.redis.get(key))
        else:  # a bucket's log: compare its totals
            total = Counter()
            for line in _text(lb.redis.get(key)).splitlines():
                flat = json.loads(line)
                total.update(dict(zip(flat[::2], flat[1::2], strict=True)))
            value = dict(total)
        out[name] = value
    return out


def expected_spelling(spellings: Counter, tag: str) -> str:
    """Most common spelling of a lower-cased tag; ties: smallest in byte order."""
    options = [(c, s) for s, c in spellings.items() if s.casefold() == tag]
    best = max(c for c, _ in options)
    return min((s for c, s in options if c == best), key=lambda s: s.encode())


# --- the recorded X API pages ---------------------------------------------------------

def sample_files() -> list[Path]:
    return sorted(shared_path("sample-data", "tweets").glob("*.jsonl"))


def load_sample(path: Path) -> tuple[list[Tweet], Counter, Counter]:
    """Tweets, and our own count of entities.hashtags: lower-cased, and as spelled."""
    tweets, lower, spelled = [], Counter(), Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        for raw in json.loads(line).get("data") or ():
            assert "entities" in raw, "every recorded tweet has entities"
            tags = [h["tag"] for h in raw["entities"].get("hashtags") or ()]
            lower.update(t.casefold() for t in tags)
            spelled.update(tags)
            tweets.append(tweet_from_api(raw))
    assert tweets, f"{path} holds no tweets"
    return tweets, lower, spelled


@pytest.fixture(params=["kpop.jsonl", "brexit.jsonl", "2sets.jsonl"])
def sample(request):
    path = shared_path("sample-data", "tweets", request.param)
    return load_sample(path)


def test_sample_archives_exact_counts(r, sample):
    tweets, lower, spelled = sample
    newest = max(t.created_at for t in tweets)
    clock = Clock(newest + 60)  # the pages span minutes: every tweet is in every window
    lb = board(r, clock)
    assert sum(lb.record(tweets[i:i + 37]) for i in range(0, len(tweets), 37)) == len(tweets)
    for window in WINDOWS:
        assert counts(lb, window) == dict(lower), window
        assert lb.size(window) == len(lower)
    top = lb.top("all", n=len(lower))
    assert [e.score for e in top] == sorted(lower.values(), reverse=True)
    # ties share a rank (1, 2, 2, 4) and are listed alphabetically (by key, in byte order)
    scores = [e.score for e in top]
    assert [e.rank for e in top] == [1 + sum(x > e.score for x in scores) for e in top]
    assert [e.hashtag.casefold() for e in top] == sorted(
        lower, key=lambda k: (-lower[k], k.encode()))
    for entry in top:
        assert entry.hashtag == expected_spelling(spelled, entry.hashtag.casefold())
    # the archives are from 2021: with the real clock they count all time only
    old = board(r, Clock())
    old.record(tweets)
    assert counts(old, "all") == dict(lower)
    assert all(old.size(w) == 0 for w in ("1h", "24h", "7d"))


def test_same_archive_twice_changes_nothing(r):
    tweets, lower, _ = load_sample(shared_path("sample-data", "tweets", "2sets.jsonl"))
    clock = Clock(max(t.created_at for t in tweets) + 60)
    lb = board(r, clock)
    assert lb.record(tweets[:150], progress={"since_id": "1"}) == 150
    assert lb.record(tweets[150:], progress={"since_id": "2"}) == len(tweets) - 150
    before = snapshot(lb)
    # again, whole, in other batches, and by another process (a fresh instance)
    assert lb.record(tweets, progress={"since_id": "2"}) == 0
    again = board(r, clock, name=lb.name)
    assert sum(again.record(tweets[i:i + 7], progress={"since_id": "2"})
               for i in range(0, len(tweets), 7)) == 0
    assert snapshot(lb) == before
    assert counts(lb) == dict(lower)


def test_duplicates_within_one_batch_count_once(r):
    lb = board(r)
    tweet = Tweet(snowflake(T0 - 10), T0 - 10, ("Dup",))
    assert lb.record([tweet, tweet, tweet]) == 1
    assert counts(lb) == {"dup": 1}


def test_a_tag_listed_twice_in_a_tweet_counts_twice(r):
    lb = board(r)
    lb.record([Tweet(1, T0 - 10, ("go", "Go", "go"))])
    assert lb.rank_for("go") == Entry(1, "go", 3)


def test_case_insensitive_with_the_most_common_spelling(r):
    lb = board(r)
    ids = itertools.count(1)

    def rec(*tags):
        lb.record([Tweet(next(ids), T0 - 60, (tag,)) for tag in tags])

    rec("KPOP", "KPOP", "KPop", "kpop", "kpop", "kpop")
    assert lb.rank_for("kPoP") == Entry(1, "kpop", 6)
    assert lb.rank_for("#KPOP", "1h") == Entry(1, "kpop", 6)
    rec("KPOP", "KPOP")  # KPOP 4 > kpop 3
    assert lb.top() == [Entry(1, "KPOP", 8)]
    rec("kpop")  # a tie, 4 and 4: the smallest in byte order
    assert lb.top()[0].hashtag == "KPOP"
    rec("Zürich", "ZÜRICH", "zürich", "ZÜRICH")
    assert lb.rank_for("zürich") == Entry(2, "ZÜRICH", 4)
    assert lb.around_me("ZURICH") == []  # other letters, another tag


def test_rank_api(r):
    lb = board(r)
    tags = [f"t{i}" for i in range(10)]  # t0 10 times ... t9 once
    tweets = [Tweet(i * 100 + k, T0 - 60, (tag,)) for i, tag in enumerate(tags)
              for k in range(10 - i)]
    lb.record(tweets)
    assert lb.size() == 10
    assert lb.top(n=3) == [Entry(1, "t0", 10), Entry(2, "t1", 9), Entry(3, "t2", 8)]
    assert lb.top(n=3, offset=2) == [Entry(3, "t2", 8), Entry(4, "t3", 7), Entry(5, "t4", 6)]
    assert lb.top(n=5, offset=8) == [Entry(9, "t8", 2), Entry(10, "t9", 1)]
    assert lb.top(n=5, offset=10) == [] and lb.top(n=0) == []
    assert lb.rank_for("T4") == Entry(5, "t4", 6)
    assert lb.rank_for("nope") is None and lb.rank_for("nope", "24h") is None
    assert lb.around_me("t0") == [Entry(1, "t0", 10), Entry(2, "t1", 9), Entry(3, "t2", 8)]
    assert [e.rank for e in lb.around_me("t5")] == [4, 5, 6, 7, 8]
    assert [e.rank for e in lb.around_me("t9", n=1)] == [9, 10]
    assert lb.around_me("t5", n=0) == [Entry(6, "t5", 5)]
    assert lb.around_me("nope") == []
    assert lb.top("7d", n=1) == [Entry(1, "t0", 10)]
    for bad in (lambda: lb.top("2h"), lambda: lb.size("x"), lambda: lb.top(n=-1),
                lambda: lb.top(offset=-1), lambda: lb.around_me("t0", n=-1)):
        with pytest.raises(ValueError):
            bad()
    empty = board(r)
    assert empty.top() == [] and empty.size("24h") == 0 and empty.updated_at() is None


def test_progress_moves_with_the_counts(r):
    clock = Clock()
    lb = board(r, clock)
    assert lb.progress() == {}
    assert lb.record([Tweet(1, T0 - 5, ("a",))],
                     progress={"since_id": "1", "pending_until": "9"}) == 1
    assert lb.progress() == {"since_id": "1", "pending_until": "9"}
    assert lb.updated_at() == T0
    clock.now += 10
    assert lb.record([], progress={"pending_until": None, "since_id": "9"}) == 0
    assert lb.progress() == {"since_id": "9"}
    assert lb.updated_at() == T0 + 10


def test_a_failing_script_writes_nothing(r):
    lb = board(r)
    lb.record([Tweet(1, T0 - 5, ("a",))])
    before = snapshot(lb)
    r.delete(lb.key_spellings)
    r.set(lb.key_spellings, "not a hash")  # a key of the wrong type
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        lb.record([Tweet(2, T0 - 5, ("B",))], progress={"since_id": "2"})
    r.delete(lb.key_spellings)
    assert snapshot(lb) == before  # no marker, no count, no progress
    assert lb.record([Tweet(2, T0 - 5, ("B",))]) == 1


def test_scripts_come_back_after_a_script_flush(r):
    lb = board(r)
    lb.record([Tweet(1, T0 - 5, ("a",))])
    r.script_flush()  # a failover to a node that never saw them, say
    assert lb.record([Tweet(2, T0 - 5, ("a",))]) == 1
    assert lb.top("1h") == [Entry(1, "a", 2)]


@pytest.mark.parametrize("encoder", ["orjson", "json"])
def test_any_text_goes_through(r, monkeypatch, encoder):
    from chalicelib.leaderboard import store

    if encoder == "json":  # the Lambda package has no orjson
        monkeypatch.setattr(store, "_dumps", store._json_dumps)
    lb = board(r)
    tags = ("東京", "ไทย", "Café", "CAFÉ", "café", "a\ud800b", "quote\"and\\slash/", "")
    assert lb.record([Tweet(1, T0 - 5, tags), Tweet(2, T0 - 5, ("café",))]) == 2
    got = {e.hashtag: e.score for e in lb.top(n=20)}
    assert got == {"café": 4, "東京": 1, "ไทย": 1, "a?b": 1, 'quote"and\\slash/': 1}


def test_works_without_decoded_responses(r_bytes):
    clock = Clock()
    lb = board(r_bytes, clock)
    lb.record([Tweet(1, T0 - 60, ("Héllo", "x")), Tweet(2, T0 - 7200, ("héllo",)),
               Tweet(3, T0 - 60, ("Héllo",))], progress={"since_id": "3"})
    assert lb.top() == [Entry(1, "Héllo", 3), Entry(2, "x", 1)]
    assert lb.top("1h") == [Entry(1, "Héllo", 2), Entry(2, "x", 1)]
    assert lb.rank_for("HÉLLO", "24h") == Entry(1, "Héllo", 3)
    assert lb.around_me("x", "1h") == [Entry(1, "Héllo", 2), Entry(2, "x", 1)]
    assert lb.progress() == {"since_id": "3"} and lb.updated_at() == T0
    assert lb.size("7d") == 2


# --- windows --------------------------------------------------------------------------

def test_windows_with_a_fake_clock(r):
    clock = Clock()
    lb = board(r, clock)
    ages = {"m30": 1800, "h5": 5 * 3600, "d3": 3 * 86400, "d10": 10 * 86400}
    lb.record([Tweet(i, T0 - age, (tag,)) for i, (tag, age) in enumerate(ages.items())])

    def members():
        return {w: set(counts(lb, w)) for w in WINDOWS}

    assert members() == {"all": set(ages), "1h": {"m30"}, "24h": {"m30", "h5"},
                         "7d": {"m30", "h5", "d3"}}
    clock.now = T0 + 29 * 60  # m30 is 59 minutes old
    assert members()["1h"] == {"m30"}
    clock.now = T0 + 1800 + BS  # an hour and a bucket: gone from 1h
    assert members() == {"all": set(ages), "1h": set(), "24h": {"m30", "h5"},
                         "7d": {"m30", "h5", "d3"}}
    clock.now = T0 + 19 * 3600 + BS  # h5 is 24 h and a bucket old
    assert members()["24h"] == {"m30"}
    clock.now = T0 + 4 * 86400 + BS  # d3 is 7 days and a bucket old
    assert members()["7d"] == {"m30", "h5"}
    lb.record([Tweet(10, clock.now - 60, ("fresh",))])  # recording rolls too
    assert members() == {"all": set(ages) | {"fresh"}, "1h": {"fresh"}, "24h": {"fresh"},
                         "7d": {"m30", "h5", "fresh"}}
    clock.now += 30 * 86400  # a long idle time: every window empties at once
    assert members() == {"all": set(ages) | {"fresh"}, "1h": set(), "24h": set(), "7d": set()}
    assert counts(lb) == {tag: 1 for tag in [*ages, "fresh"]}


def test_a_long_gap_rolls_in_bounded_steps(r):
    clock = Clock()
    lb = board(r, clock)
    # one tweet per hour for 7 days: the 7d window holds 168 buckets
    lb.record([Tweet(h, T0 - h * 3600 - 1, (f"h{h}",)) for h in range(168)])
    calls = []
    script = lb._record_script

    def counting(*args, **kwargs):
        calls.append(1)
        return script(*args, **kwargs)

    lb._record_script = counting
    clock.now = T0 + 3 * 86400  # 864 buckets leave the 7d window: several bounded steps
    assert set(counts(lb, "7d")) == {f"h{h}" for h in range(168 - 72)}
    assert len(calls) >= (3 * 86400 // BS) // ROLL_STEP
    assert counts(lb, "24h") == {} and counts(lb, "1h") == {}
    # the buckets that left the 7d window are deleted
    gone = [lb.bucket_key(int(T0 - h * 3600 - 1) // BS * BS) for h in range(96, 168)]
    assert not any(r.exists(key) for key in gone)


def test_another_process_rolled_first(r):
    """Two instances (two Lambdas): the one with an outdated view plans again."""
    clock_a, clock_b = Clock(), Clock()
    a, b = board(r, clock_a), None
    b = board(r, clock_b, name=a.name)
    a.record([Tweet(1, T0 - 60, ("x",))])
    b.roll()  # b caches the heads of T0
    assert b.top("1h") == [Entry(1, "x", 1)]
    clock_a.now = clock_b.now = T0 + 2 * 3600
    a.roll()  # a rolls the board forward
    assert a.top("1h") == []
    b.record([Tweet(2, clock_b.now - 60, ("y",))])  # b's plan is stale: replanned
    assert counts(b, "1h") == {"y": 1} and counts(b, "24h") == {"x": 1, "y": 1}
    clock_b.now = T0 + 60  # a clock behind the board's never moves it back
    assert b.record([Tweet(3, T0 - 30, ("z",))]) == 1
    assert counts(b, "1h") == {"y": 1}  # z's bucket had left the 1h window already
    assert counts(b, "24h") == {"x": 1, "y": 1, "z": 1}


def _window_model(history, now_max_bucket):
    """What each window must hold: counted tweets whose bucket (clamped to the bucket
    of the clock they were recorded at) is >= the newest bucket seen - W."""
    model = {w: Counter() for w in WINDOWS}
    for bucket, tags in history:
        model["all"].update(tags)
        for w, secs in WINDOW_SECONDS.items():
            if bucket >= now_max_bucket - secs:
                model[w].update(tags)
    return {w: {k: v for k, v in c.items() if v} for w, c in model.items()}


@st.composite
def timelines(draw):
    steps = draw(st.lists(st.tuples(
        st.sampled_from(["record", "read"]),
        st.one_of(st.just(0), st.integers(1, 900), st.integers(900, 3 * 86400),
                  st.integers(3 * 86400, 20 * 86400)),  # how far the clock moves
        st.lists(st.tuples(st.integers(0, 12 * 86400),  # tweet ages
                           st.lists(st.sampled_from(["a", "B", "c", "Dd"]), max_size=3)),
                 max_size=6)),
        min_size=1, max_size=8))
    return steps


@settings(max_examples=30, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=timelines())
def test_windows_match_a_model(r, steps):
    clock = Clock()
    lb = board(r, clock)
    history, ids, top_bucket = [], itertools.count(1), None
    for kind, advance, tweets in steps:
        clock.now += advance
        cur = int(clock.now // BS) * BS
        top_bucket = cur if top_bucket is None else max(top_bucket, cur)
        if kind == "record":
            batch = [Tweet(next(ids), clock.now - age, tuple(tags)) for age, tags in tweets]
            assert lb.record(batch) == len(batch)
            for t in batch:
                history.append((min(int(t.created_at // BS) * BS, top_bucket),
                                [s.casefold() for s in t.hashtags]))
        model = _window_model(history, top_bucket)
        for window in WINDOWS:
            assert counts(lb, window) == model[window], (window, kind, advance)


# --- exactly once under crashes ----------------------------------------------------

class Crashes:
    """Make the client fail at chosen commands, as a killed process or a lost
    connection would: 'before' the command reaches Redis, or 'after' it ran and its
    reply was lost."""

    def __init__(self, client, plan: dict[int, str]):
        self.client, self.plan, self.calls, self.fired = client, dict(plan), 0, 0
        self.inner = client.execute_command

    def __enter__(self):
        def execute(*args, **kwargs):
            self.calls += 1
            mode = self.plan.pop(self.calls, None)
            if mode == "before":
                self.fired += 1
                raise redis.ConnectionError(f"injected crash before {args[0]}")
            result = self.inner(*args, **kwargs)
            if mode == "after":
                self.fired += 1
                raise redis.ConnectionError(f"injected crash after {args[0]}")
            return result

        self.client.execute_command = execute
        return self

    def __exit__(self, *exc):
        del self.client.execute_command


@st.composite
def crash_runs(draw):
    n_tweets = draw(st.integers(1, 40))
    tweets = []
    for i in range(n_tweets):
        age = draw(st.sampled_from([30, 1800, 4000, 5 * 3600, 2 * 86400, 6 * 86400,
                                    9 * 86400]))
        tags = tuple(draw(st.lists(st.sampled_from(["kpop", "KPop", "KPOP", "bts", "BTS",
                                                    "Zürich", "zürich", "x"]), max_size=4)))
        tweets.append((i, age, tags))
    # batches: consecutive slices; a few tweets are sent again in a later batch
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n_tweets - 1)), max_size=5)))
    batches = [tweets[a:b] for a, b in zip([0, *cuts], [*cuts, n_tweets], strict=True)
               if tweets[a:b]]
    resend = draw(st.lists(st.integers(0, n_tweets - 1), max_size=3))
    if len(batches) > 1:
        batches[-1] = batches[-1] + [tweets[i] for i in resend]
    first = draw(st.integers(1, len(batches) + 1))  # always reached: one crash at least
    more = draw(st.lists(st.integers(1, 4 * len(batches) + 8), max_size=3))
    plan = {i: draw(st.sampled_from(["before", "after"])) for i in {first, *more}}
    resume = draw(st.sampled_from(["from_start", "from_checkpoint"]))
    step = draw(st.sampled_from([600, 1800, 2 * 86400]))  # clock between batches
    return batches, plan, resume, step


def _run(lb_factory, batches, clock, resume, step):
    """Record every batch at its own time, the checkpoint in the same call; each
    attempt is a new process (a fresh Leaderboard) resuming as `resume` says."""
    lb = lb_factory()
    start = int(lb.progress().get("next_batch", 0)) if resume == "from_checkpoint" else 0
    for i in range(start, len(batches)):
        clock.now = T0 + i * step
        tweets = [Tweet(snowflake(T0 - age, seq), T0 - age, tags)
                  for seq, age, tags in batches[i]]
        lb.record(tweets, progress={"next_batch": str(i + 1),
                                    "since_id": str(max(t.id for t in tweets)),
                                    "pending": None if i % 2 else str(i)})


@settings(max_examples=100, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=crash_runs())
def test_crashes_at_random_points_then_resume_count_exactly_once(r, run):
    batches, plan, resume, step = run
    clock = Clock()
    single = f"single{next(_names)}"
    _run(lambda: Leaderboard(r, single, clock=clock), batches, clock, resume, step)

    crashed = f"crashed{next(_names)}"
    with Crashes(r, plan) as crashes:
        for _attempt in range(len(plan) + 1):
            try:
                _run(lambda: Leaderboard(r, crashed, clock=clock), batches, clock, resume,
                     step)
                break
            except redis.ConnectionError as exc:
                assert "injected" in str(exc)
        else:
            pytest.fail("the run never finished")
    assert crashes.fired >= 1
    a, b = Leaderboard(r, single, clock=clock), Leaderboard(r, crashed, clock=clock)
    assert snapshot(b) == snapshot(a)
    for window in WINDOWS:
        assert b.top(window, 100) == a.top(window, 100)
    assert b.progress()["next_batch"] == str(len(batches))


# --- cluster ------------------------------------------------------------------------

def test_every_key_of_a_board_is_in_one_slot(r):
    clock = Clock()
    lb = board(r, clock, name="slots")
    lb.record([Tweet(snowflake(T0 - age), T0 - age, ("KPop", "kpop", "x"))
               for age in (60, 4000, 90000, 4 * 86400, 40 * 86400)],
              progress={"since_id": "1"})
    clock.now += 3 * 3600
    lb.top("1h")
    keys = lb.keys()
    kinds = {k[len(lb.prefix):].split(":")[0] for k in keys}
    assert kinds >= {"z", "b", "seen", "spellings", "variants", "meta", "progress"}
    slots = {key_slot(k.encode()) for k in keys}
    assert slots == {key_slot(b"slots")}
    if isinstance(r, RedisCluster):
        assert {r.cluster_keyslot(k) for k in keys} == slots
        assert len({r.get_node_from_key(k).name for k in keys}) == 1


# --- reads: one consistent, read-only call --------------------------------------------

def test_reads_never_write_even_after_a_long_idle_time(r):
    clock = Clock()
    lb = board(r, clock)
    lb.record([Tweet(snowflake(T0 - age), T0 - age, (tag,))
               for tag, age in (("m5", 300), ("h3", 3 * 3600), ("d2", 2 * 86400))])
    before = snapshot(lb)
    clock.now = T0 + 6 * 86400  # six idle days: 1h and 24h have left entirely, 7d partly
    reader = board(r, clock, name=lb.name)  # a fresh container
    for window in WINDOWS:
        reader.page(window, 10)
        reader.size(window)
        reader.standing("m5", window)
    assert snapshot(lb) == before  # no roll, no meta, nothing written
    # a window every bucket of which has left reads as empty until the writer rolls
    assert reader.page("1h").entries == [] and reader.size("24h") == 0
    assert reader.standing("m5", "24h") is None
    # a window that has partly left keeps the last roll's counts (the ingest rolls
    # every few minutes); the writer's roll brings it up to the clock
    assert {e.hashtag for e in reader.top("7d")} == {"m5", "h3", "d2"}
    lb.roll()
    assert {e.hashtag for e in reader.top("7d")} == {"m5", "h3"}


def test_a_read_is_one_command(r):
    lb = board(r)
    lb.record([Tweet(i + 1, T0 - 60, (f"t{i % 7}",) * (1 + i % 7)) for i in range(50)])
    lb.page("1h")  # loads the script
    with Crashes(r, {}) as seen:
        page = lb.page("1h", 3)
        found = lb.standing("T3", "24h", n=2)
    assert seen.calls == 2  # one EVALSHA each: answers come from one consistent view
    assert page.total == 7 and page.updated_at == T0
    assert [e.hashtag for e in page.entries] == ["t6", "t5", "t4"]
    assert found.entry == Entry(4, "t3", 28) and found.updated_at == T0
    assert [e.rank for e in found.above] == [2, 3] and [e.rank for e in found.below] == [5, 6]


# --- lean dedupe markers ---------------------------------------------------------------

def marker_keys(lb: Leaderboard) -> list[str]:
    return [k for k in lb.keys() if k[len(lb.prefix):].startswith("seen:")]


@pytest.mark.parametrize("per_hour", [1000, 20000])
def test_markers_stay_small_intsets_at_any_rate(r, per_hour):
    clock = Clock()
    lb = board(r, clock)
    hour = int(T0 // 3600) * 3600 - 3600  # the last whole hour, in batches as ingest does
    tweets = [Tweet(snowflake(hour + i * 3600 / per_hour, i % 4096), hour + i * 3600 / per_hour,
                    ("tag",)) for i in range(per_hour)]
    assert sum(lb.record(tweets[i:i + 1000]) for i in range(0, per_hour, 1000)) == per_hour
    sets = [k for k in marker_keys(lb) if _text(r.type(k)) == "set"]
    assert all(_text(r.object("encoding", k)) == "intset" for k in sets)
    assert sum(r.scard(k) for k in sets) == per_hour
    assert max(r.scard(k) for k in sets) <= 512
    marker_bytes = sum(r.memory_usage(k) for k in marker_keys(lb))
    assert marker_bytes / per_hour <= 16, marker_bytes / per_hour
    # exactly once, whatever the batches: nothing counts again
    assert lb.record(tweets[::-1]) == 0
    assert sum(lb.record(tweets[i:i + 333]) for i in range(0, per_hour, 333)) == 0
    assert lb.rank_for("tag") == Entry(1, "tag", per_hour)


# --- ranks people can trust -------------------------------------------------------------

def test_ties_share_a_rank_are_listed_alphabetically_and_every_read_agrees(r):
    lb = board(r)
    ids = itertools.count(1)
    counts_by_tag = {"BTS": 20, "Rosé": 14, "Jisoo": 14, "CHOEAEDOL": 14, "lisa": 9,
                     **{f"one{i:03d}": 1 for i in range(150)}}
    lb.record([Tweet(next(ids), T0 - 60, (tag,) * c) for tag, c in counts_by_tag.items()])
    top = lb.top("1h", n=10)
    assert [(e.rank, e.hashtag, e.score) for e in top[:5]] == [
        (1, "BTS", 20), (2, "CHOEAEDOL", 14), (2, "Jisoo", 14), (2, "Rosé", 14), (5, "lisa", 9)]
    assert [(e.rank, e.hashtag) for e in top[5:]] == [(6, f"one{i:03d}") for i in range(5)]
    for window in ("all", "1h"):
        everything = lb.top(window, n=200)
        assert {e.hashtag: e.rank for e in everything}["one149"] == 6  # not "rank 57"
        for e in everything:  # rank_for and around_me say what top says
            assert lb.rank_for(e.hashtag.upper(), window) == e
            i = everything.index(e)
            assert lb.around_me(e.hashtag, window, n=2) == everything[max(0, i - 2):i + 3]
        for offset in range(0, 8):  # a page boundary inside a group of ties
            assert lb.top(window, n=3, offset=offset) == everything[offset:offset + 3]


def test_keys_and_lookups_are_case_folded(r):
    lb = board(r)
    lb.record([Tweet(i, T0 - 60, ("Großbritannien",)) for i in range(1, 5)])
    assert lb.rank_for("GROSSBRITANNIEN") == Entry(1, "Großbritannien", 4)
    assert lb.rank_for("#grossbritannien", "1h") == Entry(1, "Großbritannien", 4)


def test_an_edited_tweet_counts_once_by_its_first_id(r):
    from chalicelib.leaderboard.model import tweets_from_page

    lb = board(r)
    first = {"id": "1001", "created_at": "2023-11-14T21:30:00.000Z", "text": "#draft",
             "edit_history_tweet_ids": ["1001"]}
    edited = {"id": "1005", "created_at": "2023-11-14T21:31:00.000Z", "text": "#final #draft",
              "edit_history_tweet_ids": ["1001", "1005"]}
    assert lb.record(tweets_from_page({"data": [first]})) == 1
    assert lb.record(tweets_from_page({"data": [edited]})) == 0  # the same tweet, edited
    assert lb.record(tweets_from_page({"data": [edited, first]})) == 0
    assert counts(lb) == {"draft": 1}


# --- rising -------------------------------------------------------------------------------

def constructed_history(lb: Leaderboard) -> None:
    """24 hours at a steady hourly rate per tag, then the last hour: 'boom' 500 -> 2,000,
    'big' 500 -> 520 (steady), 'jump' 10 -> 200, 'new' 0 -> 2."""
    rates = {"boom": (500, 2000), "big": (500, 520), "jump": (10, 200), "new": (0, 2)}
    ids = itertools.count(1)
    tweets = []
    for h in range(24):  # h = 0: the last hour
        at = T0 - 3600 * h - 1800
        for tag, (before, last) in rates.items():
            if (last if h == 0 else before):
                tweets.append(Tweet(snowflake(at, next(ids)), at, (tag,) * (last if h == 0
                                                                          else before)))
    lb.record(tweets)


def test_rising_ranks_a_jump_above_a_bigger_steady_tag(r):
    lb = board(r)
    constructed_history(lb)
    assert [e.hashtag for e in lb.top("1h")] == ["boom", "big", "jump", "new"]
    page = lb.rising("1h", n=10)
    assert [(i.rank, i.hashtag, i.count) for i in page.items] == [
        (1, "boom", 2000), (2, "jump", 200), (3, "big", 520), (4, "new", 2)]
    by_tag = {i.hashtag: i for i in page.items}
    assert by_tag["jump"].expected == pytest.approx(10) and by_tag["big"].expected == 500
    assert by_tag["new"].score < by_tag["big"].score < by_tag["jump"].score  # 0 -> 2 is noise
    assert page.candidates == 4 and page.updated_at == T0
    # bounded: only the window's highest tags are scored
    assert [i.hashtag for i in lb.rising("1h", candidates=2).items] == ["boom", "big"]
    assert [i.hashtag for i in lb.rising("1h", n=2, offset=1).items] == ["jump", "big"]
    assert lb.rising("24h").items[0].hashtag == "boom"  # all 24 h against the 7 days
    with pytest.raises(ValueError, match="1h or 24h"):
        lb.rising("all")


def rising_view(page) -> list[tuple]:
    return [(i.rank, i.hashtag, i.count, round(i.expected, 9), round(i.score, 9))
            for i in page.items]


def test_rising_from_the_writers_order_equals_scoring_at_read_time(r):
    clock = Clock()
    lb = board(r, clock)
    constructed_history(lb)
    ids = itertools.count(10**6)
    # ties and spellings: two tags of one score, and a tag spelled in capitals
    lb.record([Tweet(snowflake(T0 - 60, next(ids)), T0 - 60, (tag,) * 7)
               for tag in ("zeta", "alpha", "Mixed", "MIXED")])
    pages = [(w, n, off) for w in ("1h", "24h") for n, off in ((10, 0), (2, 1), (3, 5), (0, 0))]
    live = {p: rising_view(lb.rising(*p)) for p in pages}  # no stored order yet
    assert lb.refresh_rising() == 2
    assert lb.refresh_rising() == 0  # current: nothing scored again
    reader = board(r, clock, name=lb.name)
    with Crashes(r, {}) as seen:
        stored = {p: rising_view(reader.rising(*p)) for p in pages}
    assert seen.calls == len(pages)  # still one read-only call each
    assert stored == live
    # mixed (14, shown in its smallest spelling of the most common), then the tie in
    # alphabetical order
    assert [i.hashtag for i in reader.rising("1h").items][:5] == [
        "boom", "jump", "MIXED", "alpha", "zeta"]
    # the windows change: the stored order is out of date, reads score for themselves
    lb.record([Tweet(snowflake(T0 - 30, next(ids)), T0 - 30, ("late",) * 3000)])
    assert reader.rising("1h").items[0].hashtag == "late"
    lb.refresh_rising()
    assert reader.rising("1h").items[0].hashtag == "late"
    # a roll changes them too: after the writer rolls an hour on, the 1h window is empty
    clock.now = T0 + 3600 + 300
    lb.roll()
    assert reader.rising("1h").items == [] and reader.rising("1h").candidates == 0
    lb.refresh_rising()
    assert reader.rising("1h").candidates == 0
    # other candidate counts than the writer's are scored at read time
    assert [i.hashtag for i in reader.rising("24h", candidates=2).items] == ["boom", "big"]


def test_rising_ties_share_a_rank_as_top_ties_do(r):
    lb = board(r)
    constructed_history(lb)
    ids = itertools.count(10**6)
    lb.record([Tweet(snowflake(T0 - 60, next(ids)), T0 - 60, (tag,) * 7)
               for tag in ("zeta", "alpha", "mu")])  # three new tags of one score
    ranks = [(i.rank, i.hashtag, round(i.score, 2)) for i in lb.rising("1h").items]
    tied = [(rank, tag) for rank, tag, _ in ranks if tag in ("alpha", "mu", "zeta")]
    assert [tag for _, tag in tied] == ["alpha", "mu", "zeta"]  # alphabetical, as in top
    assert len({rank for rank, _ in tied}) == 1  # one shared rank
    first = tied[0][0]
    after = [rank for rank, tag, _ in ranks if rank > first]
    assert not after or min(after) == first + 3  # competition ranking: 1, 2, 2, 2, 5
    # a page that starts inside the tie gives the tie's rank, not its position
    for offset in range(first - 1, first + 2):
        page = lb.rising("1h", n=1, offset=offset).items
        assert page[0].rank == first, offset


def test_a_tags_counts_per_hour_over_the_last_day(r):
    lb = board(r)
    constructed_history(lb)
    found = lb.standing("JUMP", "1h")
    hours = [h for h, _ in found.hourly]
    assert len(hours) == 24 and hours[-1] == int(T0 // 3600) * 3600
    assert all(b - a == 3600 for a, b in itertools.pairwise(hours))
    # the tweets sit half an hour before each "h hours ago": the last one in the hour before
    assert [c for _, c in found.hourly] == [10] * 22 + [200, 0]


def test_python_and_the_script_hash_marker_ids_alike(r):
    """The batch's hashes come from Python, a split rehashes in Lua: they must agree, or a
    moved marker would not be found and its tweet would count twice."""
    import random

    from chalicelib.leaderboard import scripts, store

    rng = random.Random(11)
    ids = [str(rng.randrange(1, 2**63)) for _ in range(3000)] + [str(i) for i in range(1, 600)]
    script = r.register_script(scripts.source("shards") + """
local out = {}
for i, id in ipairs(ARGV) do out[i] = id_hash(id) end
return out""")
    key = "pulse:lb:{hash}:probe"  # a key of a slot, so a cluster routes the script
    assert [int(h) for h in script(keys=[key], args=ids)] == [
        store.marker_hash(int(i)) for i in ids]



def test_the_hourly_chart_is_a_recount_of_the_recorded_tweets(r):
    """Two days of tweets in random batches, some sent twice, hundreds of tags a bucket (so
    the buckets' keys split): each tag's chart is the count of its occurrences in the
    tweets of each of the last 24 hours."""
    import random

    rng = random.Random(5)
    lb = board(r)
    tags = [f"t{i}" for i in range(400)] + ["Big", "BIG", "big"]
    ages = [rng.randrange(1, 2 * 86400) for _ in range(3000)]  # two days, and a busy
    ages += [rng.randrange(5 * 3600, 8 * 3600) for _ in range(3000)]  # three hours
    tweets = [Tweet(snowflake(T0 - age, i), T0 - age,
                    tuple(rng.choice(tags) for _ in range(rng.randint(0, 4))))
              for i, age in enumerate(ages)]
    tweets += [Tweet(snowflake(T0 - 10, 9000 + i), T0 + 500, ("t1", "Big"))  # clock skew:
               for i in range(30)]                                          # current bucket
    recount: dict[str, Counter] = {}
    for t in tweets:
        hour = int(min(t.created_at, T0) // 3600 * 3600)
        for tag in t.hashtags:
            recount.setdefault(tag.casefold(), Counter())[hour] += 1
    rng.shuffle(tweets)
    for start in range(0, len(tweets), 700):
        lb.record(tweets[start:start + 700] + tweets[:5])  # the first five again: counted once
    assert any(":b:" in k and k.endswith(":depth") for k in lb.keys())  # buckets split
    for tag in ("big", "BIG", "#t1", "t7", "t399"):
        chart = lb.standing(tag, "all").hourly
        assert [h for h, _ in chart] == lb.hours()
        assert chart == [(h, recount[tag_key(tag)][h]) for h in lb.hours()]


def test_a_board_with_log_buckets_reads_rolls_and_records_them(r):
    """A bucket may be a string of JSON lines [tag, count, ...] (an older layout of the
    same counts): the chart reads it, the windows subtract it, a new count joins it."""
    clock = Clock()
    lb = board(r, clock)
    lb.record([Tweet(1, T0 - 7200, ("seed",))])  # a board with heads
    start = int(T0 - BS)  # in the current hour
    r.set(lb.bucket_key(start), '["a",2,"b",1]\n["a",1]\n')
    r.zadd(lb.key_window["1h"], {"a": 3, "b": 1})
    r.zadd(lb.key_window["24h"], {"a": 3, "b": 1})
    assert lb.standing("a", "1h").hourly[-1] == (int(T0 // 3600 * 3600), 3)
    lb.record([Tweet(2, start + 1, ("A", "c"))])  # into the log bucket
    assert r.type(lb.bucket_key(start)) == "hash"
    assert lb.standing("a", "1h").hourly[-1][1] == 4
    clock.now = T0 + 3600  # the bucket leaves the 1h window
    assert counts(lb, "1h") == {} and counts(lb, "24h") == {"a": 4, "b": 1, "c": 1, "seed": 1}
