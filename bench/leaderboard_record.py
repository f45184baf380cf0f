"""`Leaderboard.record` now against the store of an earlier commit, side by side in one run.

Loads chalicelib/leaderboard/store.py as it was at `--against` (git show) next to the
current one, and records the same tweets through each, in turn, `--repeat` times on a
redis-server of its own: the ingest benchmark's archive shape (100k tweets over 10 days,
~400 an hour) and a busy campaign (20k tweets an hour for 3 hours, where the dedupe
marker sets split).  Reports tweets/s from the client and the scripts' time in
redis-server per tweet (INFO commandstats), medians.

    python -m bench.leaderboard_record [--against 03fd105] [--repeat 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench import bench_redis
from bench.leaderboard_ingest import build_archive
from chalicelib.leaderboard import store
from chalicelib.leaderboard.model import tweets_from_page
from chalicelib.leaderboard.sources import SyntheticSource

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_764_460_800.0


def store_at(rev: str):
    """The store module as it was at `rev`."""
    source = subprocess.run(["git", "show", f"{rev}:chalicelib/leaderboard/store.py"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="pulse-bench-")) / f"store_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"store_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def workloads() -> dict[str, list]:
    folder = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    build_archive(folder / "archive.jsonl", 100_000)
    archive = [t for line in (folder / "archive.jsonl").read_bytes().splitlines()
               for t in tweets_from_page(orjson.loads(line))]
    busy = SyntheticSource(3, tags=20_000, tweets_per_run=20_000, interval_seconds=3600,
                           retention_seconds=3 * 3600, clock=lambda: NOW)
    busy.first_range_ticks = busy.retention_ticks
    return {"archive: 100k tweets over 10 days": archive,
            "busy: 20k tweets/h for 3 h": [t for p in busy.pages() for t in tweets_from_page(p)]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", default="03fd105")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    stores = {f"before ({args.against})": store_at(args.against), "now": store}
    loads = workloads()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with bench_redis() as r:
        for _ in range(args.repeat):
            for load, tweets in loads.items():
                for label, module in stores.items():
                    r.flushall()
                    r.config_resetstat()
                    board = module.Leaderboard(r, "bench", clock=lambda: NOW)
                    t0 = time.perf_counter()
                    for i in range(0, len(tweets), 1000):
                        board.record(tweets[i:i + 1000])
                    wall = time.perf_counter() - t0
                    usec = r.info("commandstats")["cmdstat_evalsha"]["usec"]
                    results.setdefault((load, label), []).append(
                        (len(tweets) / wall, usec / len(tweets)))
    print(f"\n`record` in batches of 1000, median of {args.repeat} runs taken in turn\n")
    print("| workload | store | tweets/s | µs a tweet in redis-server |")
    print("|---|---|---:|---:|")
    for (load, label), runs in results.items():
        print(f"| {load} | {label} | {statistics.median(x for x, _ in runs):,.0f} | "
              f"{statistics.median(y for _, y in runs):.1f} |")


if __name__ == "__main__":
    main()
