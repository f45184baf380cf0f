"""Memory of a board, bytes per tweet by key family, and the tag chart's read time: the
store now against the store of an earlier commit, side by side in one run.

On a redis-server it starts on a free port, records the same tweets through each store in
batches of 1000 (as the ingest sends them), then sums MEMORY USAGE over the board's keys
by family (windows `z:*`, time buckets `b:*`, per-hour sets `hz:*`, markers `seen:*`,
spellings and variants, the rest) and times `standing(tag, "24h")` (a tag's neighbours
and its hourly chart, one read script) for the most common tag and one of rank 3,000 (or
the last), median of 200 calls from the client.  Workloads: the ingest benchmark's
archive shape (1-6 tags a tweet, ~20k Zipf tags) at 20k tweets an hour for 5 hours (100k
tweets), and `SyntheticSource` (1-3 tags a tweet) at 1k and 20k tweets an hour for `--hours` hours.
`--against` loads chalicelib/leaderboard/store.py as it was at that commit (git show).

    python -m bench.leaderboard_memory [--against 8591818] [--hours 6] [--tags 20000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import bench_redis
from bench.leaderboard_ingest import build_archive
from bench.leaderboard_record import store_at
from chalicelib.leaderboard import store
from chalicelib.leaderboard.model import tweets_from_page
from chalicelib.leaderboard.sources import ArchiveSource, SyntheticSource

NOW = 1_764_460_800.0  # 2025-11-30T00:00Z: a fixed clock, so runs compare
FAMILIES = {"z": "windows", "b": "buckets", "hz": "hourly sets", "seen": "markers",
            "spellings": "spellings", "variants": "spellings"}
COLUMNS = ("windows", "buckets", "hourly sets", "markers", "spellings", "other")


def synthetic(rate: int, hours: int, n_tags: int) -> list:
    source = SyntheticSource(3, tags=n_tags, tweets_per_run=rate, interval_seconds=3600,
                             retention_seconds=hours * 3600, clock=lambda: NOW)
    source.first_range_ticks = source.retention_ticks  # the whole retention, one range
    return [t for page in source.pages() for t in tweets_from_page(page)]


def archive(n_tweets: int, hours: float, n_tags: int) -> list:
    path = Path(tempfile.mkdtemp(prefix="pulse-bench-")) / "archive.jsonl"
    build_archive(path, n_tweets, n_tags, days=hours / 24, now=NOW)
    return [t for page in ArchiveSource([path]).read_pages() for t in page.tweets("original")]


def chart_read_ms(board, tag: str, calls: int = 200) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        board.standing(tag, "24h")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure(r, module, tweets) -> dict:
    r.flushall()
    board = module.Leaderboard(r, "m", clock=lambda: NOW)
    for i in range(0, len(tweets), 1000):
        board.record(tweets[i:i + 1000])
    by_family: Counter = Counter()
    for key in board.keys():
        family = key[len(board.prefix):].split(":")[0]
        by_family[FAMILIES.get(family, "other")] += r.memory_usage(key, samples=0)
    size = board.size("all")
    head, tail = board.top("all", 1)[0].hashtag, board.top("all", 1, min(3000, size - 1))[0].hashtag
    return {"bytes": by_family, "tweets": len(tweets), "tags": size,
            "chart_ms": (chart_read_ms(board, head), chart_read_ms(board, tail))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", default="8591818")
    ap.add_argument("--hours", type=int, default=6)
    ap.add_argument("--tags", type=int, default=20_000)
    args = ap.parse_args(argv)
    stores = {f"before ({args.against})": store_at(args.against), "now": store}
    loads = {"archive shape, 20k/h, 5 h": archive(100_000, 5, args.tags)}
    for rate in (1_000, 20_000):
        loads[f"synthetic, {rate // 1000}k/h, {args.hours} h"] = synthetic(
            rate, args.hours, args.tags)
    rows = []
    with bench_redis() as r:
        for load, tweets in loads.items():
            print(f"{load}: {len(tweets):,} tweets", file=sys.stderr)
            for label, module in stores.items():
                rows.append((load, label, measure(r, module, tweets)))

    print(f"\nMEMORY USAGE summed by key family, bytes a tweet; {args.tags:,} Zipf tags; "
          "chart read: standing(tag, '24h') from the client, median of 200 (ms)\n")
    print(f"| workload | store | tweets | {' | '.join(COLUMNS)} | total "
          "| chart read: top tag / rank 3,000 |")  # or the last tag
    print("|---|---|---:|" + "---:|" * (len(COLUMNS) + 1) + "---:|")
    for load, label, m in rows:
        per = [m["bytes"][c] / m["tweets"] for c in COLUMNS]
        head, tail = m["chart_ms"]
        print(f"| {load} | {label} | {m['tweets']:,} | "
              + " | ".join(f"{v:.1f}" for v in per)
              + f" | **{sum(per):.1f}** | {head:.2f} / {tail:.2f} |")


if __name__ == "__main__":
    main()
