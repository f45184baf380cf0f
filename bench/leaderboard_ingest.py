"""Ingest throughput: importing a twarc2 archive into the leaderboard, side by side.

Builds a synthetic twarc2 JSONL archive (one X API v2 search response per line, 100
tweets a page, with `includes.users`, `meta` and `__twarc` like the real thing):
100k tweets newest first over the last 10 days, 1-6 hashtags each drawn with Zipf
popularity from ~20k distinct tags, one in ten in another spelling.  Then, on a
redis-server it starts on a free port, in one run:

  (a) parse only: orjson.loads + model.tweets_from_page, per line;
  (b) the naive way: parse, then one ZINCRBY round trip per hashtag (on the first
      `--naive-tweets` tweets only: at ~10-20k round trips/s the whole archive would
      take a minute; the rate is per tweet, so the ratio holds);
  (c) our pipeline: parse + Leaderboard.record in batches of 1000 tweets, one Lua
      script each; c1 in one thread, c2 with one background thread recording while
      the main thread parses the next batch (the script runs in redis-server, off
      our GIL).  Counts are checked against a Counter afterwards.

    python -m bench.leaderboard_ingest [--tweets 100000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import bisect
import os
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis

from chalicelib.leaderboard.model import tweets_from_page
from chalicelib.leaderboard.store import Leaderboard
from local import processes

TWITTER_EPOCH_MS = 1288834974657
PAGE_SIZE = 100
BATCH = 1000
WORDS = ("the", "new", "video", "today", "live", "vote", "watch", "join", "our", "best",
         "update", "thread", "with", "from", "just", "love", "this", "now", "week", "news")


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


CONTEXT = [  # (domain id, domain name, description) x entities, as in real pages
    (("10", "Person", "Named people in the world like Nelson Mandela"),
     [("844438182523383808", "BTS", ""), ("857212166100754432", "Boris Johnson",
                                           "Prime Minister")]),
    (("54", "Musician", "A musician in the world, like Adele or Bob Dylan"),
     [("913136867872145408", "LISA", "Lisa - member of BLACKPINK")]),
    (("55", "Music Genre", "A category for a musical style, like Pop, Rock, or Rap"),
     [("888105153038958593", "K-pop", "K-Pop")]),
    (("65", "Interests and Hobbies Vertical",
      "Top level interests and hobbies groupings, like Food or Travel"),
     [("825047692124442624", "Food", "Food"), ("834828264786898945", "Drinks", "Drinks")]),
    (("139", "Fan Community", "A viral fan community like 'Lovatics' (fans of Demi Lovato)"),
     [("1086308747654266880", "BTS ARMY", "BTS fan community ARMY")]),
]


def _context(rng: random.Random) -> list[dict]:
    out = []
    for _ in range(rng.choice((0, 1, 2, 3, 4, 5, 6))):
        (did, dname, ddesc), entities = rng.choice(CONTEXT)
        eid, ename, edesc = rng.choice(entities)
        entity = {"id": eid, "name": ename, **({"description": edesc} if edesc else {})}
        out.append({"domain": {"id": did, "name": dname, "description": ddesc},
                    "entity": entity})
    return out


def _user(rng: random.Random, user_id: str, created: float) -> dict:
    return {"name": "Some One", "verified": False, "protected": False, "id": user_id,
            "description": "synthetic account for the ingest benchmark, fan of everything",
            "username": f"user{user_id[-6:]}", "url": "", "location": "Somewhere",
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{user_id}/x_normal.jpg",
            "created_at": _iso(created - 86400 * 365),
            "public_metrics": {"followers_count": rng.randrange(10**5),
                               "following_count": rng.randrange(10**3),
                               "tweet_count": rng.randrange(10**5), "listed_count": 0}}


def build_archive(path: Path, n_tweets: int = 100_000, n_tags: int = 20_000,
                  days: float = 10.0, zipf_s: float = 1.1, seed: int = 7,
                  now: float | None = None) -> Counter:
    """Write the archive; return the expected counts (lower-cased entity occurrences).

    Shaped like twarc2's `search` output (all expansions and fields): ~4 in 5 tweets
    are retweets whose original is in `includes.tweets`, with context annotations,
    mentions and urls; `includes.users` holds authors and mentioned users.
    """
    rng = random.Random(seed)
    now = time.time() if now is None else now
    tags = [f"{rng.choice(WORDS)}{i}" for i in range(1, n_tags + 1)]
    cum, total = [], 0.0
    for rank in range(1, n_tags + 1):
        total += rank ** -zipf_s
        cum.append(total)
    expected: Counter = Counter()
    step = days * 86400 / n_tweets
    with open(path, "wb") as out:
        for page_start in range(0, n_tweets, PAGE_SIZE):
            data, users, included = [], [], []
            for k in range(page_start, min(n_tweets, page_start + PAGE_SIZE)):
                created = now - k * step - rng.random() * step  # newest first
                ms = int(created * 1000)
                tweet_id = str(((ms - TWITTER_EPOCH_MS) << 22) | (k & 0xFFF))
                user_id = str(rng.randrange(10**17, 10**18))
                other_id = str(rng.randrange(10**17, 10**18))
                text = "RT @someone: " + " ".join(rng.choice(WORDS)
                                                  for _ in range(rng.randint(6, 18)))
                hashtags = []
                for _ in range(rng.randint(1, 6)):
                    tag = tags[bisect.bisect_left(cum, rng.random() * total)]
                    if rng.random() < 0.1:
                        tag = tag.upper() if rng.random() < 0.5 else tag.capitalize()
                    start = len(text) + 1
                    text += f" #{tag}"
                    hashtags.append({"start": start, "end": start + 1 + len(tag), "tag": tag})
                    expected[tag.lower()] += 1
                text += " https://t.co/pQMACSzDmd"
                entities = {
                    "hashtags": hashtags,
                    "mentions": [{"start": 3, "end": 11, "username": "someone", "id": other_id}],
                    "urls": [{"start": len(text) - 23, "end": len(text),
                              "url": "https://t.co/pQMACSzDmd",
                              "expanded_url": "https://example.com/some/long/article/path",
                              "display_url": "example.com/some/long/…", "status": 200,
                              "title": "Some article", "description": "What the article says",
                              "unwound_url": "https://example.com/some/long/article/path"}],
                }
                tweet = {"context_annotations": _context(rng), "entities": entities,
                         "author_id": user_id, "text": text, "reply_settings": "everyone",
                         "conversation_id": tweet_id, "possibly_sensitive": False,
                         "source": "Twitter for iPhone", "lang": "en", "id": tweet_id,
                         "created_at": _iso(created),
                         "public_metrics": {"retweet_count": rng.randrange(100),
                                            "reply_count": rng.randrange(10),
                                            "like_count": rng.randrange(1000),
                                            "quote_count": 0}}
                if rng.random() < 0.8:
                    original = str(int(tweet_id) - rng.randrange(1, 10**15))
                    tweet["referenced_tweets"] = [{"type": "retweeted", "id": original}]
                    if rng.random() < 0.4:  # originals repeat across a page's retweets
                        included.append({**tweet, "id": original, "author_id": other_id,
                                         "text": text[14:], "conversation_id": original})
                data.append(tweet)
                users.append(_user(rng, user_id, created))
                if rng.random() < 0.3:
                    users.append(_user(rng, other_id, created))
            page = {"data": data, "includes": {"users": users, "tweets": included},
                    "meta": {"newest_id": data[0]["id"], "oldest_id": data[-1]["id"],
                             "result_count": len(data),
                             "next_token": f"b26v89c19zqg8o3{page_start}"},
                    "__twarc": {"url": "https://api.twitter.com/2/tweets/search/recent?...",
                                "version": "2.14.0", "retrieved_at": _iso(now)}}
            out.write(orjson.dumps(page) + b"\n")
    return expected


def sample_parse_rate(repeat: int = 30) -> tuple[float, float] | None:
    """(bytes/tweet, tweets/s parsed) of the real pages in ../shared, for calibration."""
    folder = Path(__file__).resolve().parents[1].parent / "shared/sample-data/tweets"
    lines = [line for p in sorted(folder.glob("*.jsonl")) for line in p.read_bytes().split(b"\n")
             if line.strip()]
    if not lines:
        return None
    n = 0
    t0 = time.perf_counter()
    for _ in range(repeat):
        for line in lines:
            n += len(tweets_from_page(orjson.loads(line)))
    secs = time.perf_counter() - t0
    return sum(map(len, lines)) * repeat / n, n / secs


def parse_only(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for line in f:
            n += len(tweets_from_page(orjson.loads(line)))
    return n


def naive_way(path: Path, r: redis.Redis, max_tweets: int) -> int:
    """The naive way: a ZINCRBY round trip per hashtag."""
    n = 0
    with open(path, "rb") as f:
        for line in f:
            for tweet in tweets_from_page(orjson.loads(line)):
                for tag in tweet.hashtags:
                    r.zincrby("naive:leaderboard", 1, tag.lower())
                n += 1
                if n >= max_tweets:
                    return n
    return n


def pipeline_serial(path: Path, board: Leaderboard) -> tuple[int, int]:
    n = counted = 0
    batch: list = []
    with open(path, "rb") as f:
        for line in f:
            batch.extend(tweets_from_page(orjson.loads(line)))
            if len(batch) >= BATCH:
                counted += board.record(batch)
                n += len(batch)
                batch = []
    if batch:
        counted += board.record(batch)
        n += len(batch)
    return n, counted


def pipeline_threaded(path: Path, board: Leaderboard) -> tuple[int, int]:
    """Parse in this thread; record in one background thread (a queue of 2 batches)."""
    q: queue.Queue = queue.Queue(maxsize=2)
    result = {"counted": 0, "error": None}

    def worker() -> None:
        try:
            while (batch := q.get()) is not None:
                result["counted"] += board.record(batch)
        except BaseException as exc:  # surfaced in the main thread
            result["error"] = exc
            while q.get() is not None:  # drain so the producer never blocks
                pass

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    n = 0
    batch: list = []
    with open(path, "rb") as f:
        for line in f:
            batch.extend(tweets_from_page(orjson.loads(line)))
            if len(batch) >= BATCH:
                q.put(batch)
                n += len(batch)
                batch = []
    if batch:
        q.put(batch)
        n += len(batch)
    q.put(None)
    thread.join()
    if result["error"]:
        raise result["error"]
    return n, result["counted"]


def check_counts(board: Leaderboard, expected: Counter) -> None:
    size = board.size("all")
    assert size == len(expected), (size, len(expected))
    top = board.top("all", 50)
    want = expected.most_common(50)
    assert [e.score for e in top] == [c for _, c in want], "top-50 scores differ"
    raw = board.redis.zrange(board.key_window["all"], 0, -1, withscores=True)
    got = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw}
    assert got == dict(expected), "all-time counts differ from the Counter"


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tweets", type=int, default=100_000)
    ap.add_argument("--tags", type=int, default=20_000)
    ap.add_argument("--naive-tweets", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    archive = workdir / "archive.jsonl"
    t0 = time.perf_counter()
    expected = build_archive(archive, args.tweets, args.tags)
    occurrences = sum(expected.values())
    size = archive.stat().st_size
    print(f"archive: {args.tweets} tweets, {occurrences} hashtags, {len(expected)} distinct, "
          f"{size / 1e6:.1f} MB ({size / args.tweets:,.0f} bytes/tweet), "
          f"built in {time.perf_counter() - t0:.1f} s")
    real = sample_parse_rate()
    if real:
        print(f"calibration: the real pages in ../shared/sample-data/tweets have "
              f"{real[0]:,.0f} bytes/tweet and parse at {real[1]:,.0f} tweets/s")

    server = processes.redis_server(processes.free_port(), workdir / "redis").start()
    results: dict[str, list[float]] = {"a": [], "b": [], "c1": [], "c2": []}
    notes = []
    try:
        r = redis.Redis(port=server.port, decode_responses=True)
        for rep in range(args.repeat):  # interleaved, so noise hits every path alike
            results["a"].append(timed(parse_only, archive)[0])
            r.flushall()
            secs, n = timed(naive_way, archive, r, args.naive_tweets)
            results["b"].append(secs * args.tweets / n)  # as if for the whole archive
            for key, fn in (("c1", pipeline_serial), ("c2", pipeline_threaded)):
                r.flushall()
                r.config_resetstat()
                board = Leaderboard(r, "bench")
                secs, (n, counted) = timed(fn, archive, board)
                assert n == counted == args.tweets, (n, counted)
                results[key].append(secs)
                if rep == 0 and key == "c2":
                    script_us = r.info("commandstats")["cmdstat_evalsha"]["usec"] / n
                    mem = r.info("memory")["used_memory"] / 2**20
                    check_counts(board, expected)
                    again, _ = timed(fn, archive, Leaderboard(r, "bench"))
                    assert board.size("all") == len(expected)
                    notes += [f"Lua script time in redis-server: {script_us:.1f} µs/tweet "
                              f"(batches of {BATCH}); board after the import: {mem:,.0f} MiB",
                              "counts checked against a Counter of the archive's "
                              "lower-cased entities.hashtags: equal",
                              f"importing the same archive again: {n / again:,.0f} tweets/s, "
                              f"0 counted (every marker present)"]
        r.flushall()
    finally:
        server.stop()
        for p in sorted(workdir.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        workdir.rmdir()

    med = {k: statistics.median(v) for k, v in results.items()}
    rate = {k: args.tweets / v for k, v in med.items()}
    for note in notes:
        print(note)
    print(f"\nmedian of {args.repeat} interleaved runs; {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, redis-py {redis.__version__}\n")
    print("| path | tweets/s | × (b) | time ÷ (a) |")
    print("|---|---:|---:|---:|")
    labels = {"a": "(a) parse only: orjson.loads + tweets_from_page",
              "b": f"(b) the naive way: parse + one ZINCRBY round trip per hashtag "
                   f"(first {args.naive_tweets:,} tweets)",
              "c1": f"(c1) parse + `record`, batches of {BATCH}, one thread",
              "c2": f"(c2) parse + `record`, batches of {BATCH}, recording in a "
                    "background thread"}
    for key in ("a", "b", "c1", "c2"):
        print(f"| {labels[key]} | {rate[key]:,.0f} | {rate[key] / rate['b']:.1f} | "
              f"{rate['a'] / rate[key]:.2f} |")
    best = min(("c1", "c2"), key=lambda k: med[k])
    speedup, slowdown = rate[best] / rate["b"], med[best] / med["a"]
    print(f"\ngoals, with {best}: ≥ 10× (b): {'met' if speedup >= 10 else 'MISSED'} "
          f"({speedup:.1f}×); ≤ 1.5× the time of (a): "
          f"{'met' if slowdown <= 1.5 else 'MISSED'} ({slowdown:.2f}×)")
    print("per run, tweets/s: " + "; ".join(
        f"{k}: " + ", ".join(f"{args.tweets / v:,.0f}" for v in results[k]) for k in results))


if __name__ == "__main__":
    main()
