"""Memory of a board: bytes per tweet of the dedupe markers, bytes per tag of the counts.

On a redis-server it starts on a free port, records `--hours` hours of synthetic tweets
(`SyntheticSource`: Zipf popularity over `--tags` tags, 1-3 tags a tweet, one spelling in
ten upper-cased) at 1k and at 20k tweets an hour, through `Leaderboard.record` in batches
of 1000 as the ingest sends them, then sums MEMORY USAGE over the board's keys: the
marker sets (`seen:*`) per tweet, everything else (windows, time buckets, spellings) per
distinct tag.  Side by side, in the same run: the same tweets with the markers in one set
per hour (what the store did before: `MARKER_SET_MAX` lifted, so sets grow past
set-max-intset-entries and become hash tables).

    python -m bench.leaderboard_memory [--rates 1000,20000] [--hours 6] [--tags 20000]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

import redis

from bench import bench_redis
from chalicelib.leaderboard import store
from chalicelib.leaderboard.model import tweets_from_page
from chalicelib.leaderboard.sources import SyntheticSource
from chalicelib.leaderboard.store import Leaderboard

NOW = 1_764_460_800.0  # 2025-11-30T00:00Z: a fixed clock, so runs compare


def tweets_for(rate: int, hours: int, n_tags: int):
    source = SyntheticSource(3, tags=n_tags, tweets_per_run=rate, interval_seconds=3600,
                             retention_seconds=hours * 3600, clock=lambda: NOW)
    source.first_range_ticks = source.retention_ticks  # the whole retention, one range
    return [t for page in source.pages() for t in tweets_from_page(page)]


def measure(r: redis.Redis, name: str, tweets, marker_set_max: int) -> dict:
    saved = store.MARKER_SET_MAX
    store.MARKER_SET_MAX = marker_set_max
    try:
        board = Leaderboard(r, name, clock=lambda: NOW)
        for i in range(0, len(tweets), 1000):
            board.record(tweets[i:i + 1000])
    finally:
        store.MARKER_SET_MAX = saved
    markers = other = 0
    encodings: Counter = Counter()
    for key in board.keys():
        size = r.memory_usage(key, samples=0)
        if key[len(board.prefix):].startswith("seen:"):
            markers += size
            if r.type(key) == "set":
                encodings[r.object("encoding", key)] += 1
        else:
            other += size
    tags = board.size("all")
    occurrences = sum(len(t.hashtags) for t in tweets)
    return {"markers": markers, "other": other, "tags": tags, "occurrences": occurrences,
            "encodings": dict(encodings)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="1000,20000")
    ap.add_argument("--hours", type=int, default=6)
    ap.add_argument("--tags", type=int, default=20_000)
    args = ap.parse_args(argv)

    rows = []
    with bench_redis() as r:
        for rate in (int(x) for x in args.rates.split(",")):
            tweets = tweets_for(rate, args.hours, args.tags)
            print(f"{rate:,} tweets/h: {len(tweets):,} tweets", file=sys.stderr)
            for layout, limit in (("bounded sets (now)", store.MARKER_SET_MAX),
                                  ("one set an hour (before)", 10**9)):
                r.flushall()
                rows.append((rate, layout, len(tweets), measure(r, f"m{rate}", tweets, limit)))

    print(f"\n{args.hours} h of synthetic tweets, {args.tags:,} tags (Zipf), batches of 1000, "
          "MEMORY USAGE summed per key\n")
    print("| tweets/h | markers | marker B/tweet | set encodings | distinct tags "
          "| counts B/tag | counts B/occurrence |")
    print("|---:|---|---:|---|---:|---:|---:|")
    for rate, layout, n, m in rows:
        enc = ", ".join(f"{v} {k}" for k, v in sorted(m["encodings"].items()))
        print(f"| {rate:,} | {layout} | {m['markers'] / n:.1f} | {enc} | {m['tags']:,} | "
              f"{m['other'] / m['tags']:.0f} | {m['other'] / m['occurrences']:.1f} |")


if __name__ == "__main__":
    main()
