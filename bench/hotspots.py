"""Click hotspots: consumer throughput and HOTSPOTS computation vs DBSCAN.

In one run:

  1. Consumer throughput, batches of 100 and 10,000 Lambda Kinesis records (one click
     each, base64 JSON as the writer puts them, 20 pages, 4 sessions a page):
     (a) the consumer's own computation: decode, validate, group by page and shard
         (`HotspotConsumer.group`), no I/O;
     (b) the whole `consume` on a redis-server this bench starts: (a) plus one Lua
         script per page per batch.
  2. Hotspot computation on windows of 1,000 and 100,000 points laid out as the AWS
     example (uniform, 20% inside one square of side 0.1): `find_hotspots` next to
     scikit-learn's `DBSCAN(...).fit` on the same points, checked to find the same
     hotspots (same clusters of core points).  100k points
     are run twice: radius scaled with the density (0.002, min_points 17: the same
     expected neighbour counts as the 1k example), and the same radius with
     min_points scaled (0.02, 1700: the same density threshold).
  3. The heatmap (`compute.heatmap`, grids of 32 and 128 cells a side) next to
     `find_hotspots` on the same windows of 1,000, 10,000 and 100,000 points of that
     layout, the radius scaled with the density as in 2 (0.02 x sqrt(1000 / n),
     min_points 17); µs per point shows whether each grows linearly.

Every figure is the best of --repeat runs (the machine is shared: the best run is the
one least disturbed by other work), each side measured on the same inputs in turn.

    python -m bench.hotspots [--repeat 5] [--part all|heatmap]
"""
from __future__ import annotations

import argparse
import base64
import random
import sys
import tempfile
import time
from pathlib import Path

from chalicelib.hotspots import wire
from chalicelib.hotspots.compute import find_hotspots, heatmap
from chalicelib.hotspots.consumer import ConsumeResult, HotspotConsumer
from chalicelib.hotspots.store import HotspotStore
from local import processes

T0 = 1_764_460_800.0


def lambda_records(n: int, first_seq: int, rng: random.Random,
                   ids: bool = True) -> list[dict]:
    out = []
    for i in range(n):
        page, session = f"page-{rng.randrange(20)}", f"s{rng.randrange(4)}"
        data = wire.encode(page, session, rng.random(), rng.random(), 1_764_460_800_000 + i,
                           f"{rng.getrandbits(128):032x}" if ids else "")
        seq = str(49_600_000_000_000_000_000 + first_seq + i)
        out.append({"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": session,
                                "sequenceNumber": seq, "data": base64.b64encode(data).decode(),
                                "approximateArrivalTimestamp": T0 + i / 1000},
                    "eventSource": "aws:kinesis", "eventID": f"shardId-000000000000:{seq}",
                    "eventName": "aws:kinesis:record"})
    return out


def rate(n: int, seconds: list[float]) -> float:
    return n / min(seconds)


def bench_consumer(repeat: int, redis_port: int) -> list[tuple]:
    import redis

    client = redis.Redis(port=redis_port, decode_responses=True)
    rows = []
    for size, ids in ((100, False), (100, True), (10_000, False), (10_000, True)):
        rng = random.Random(size)
        batches = [lambda_records(size, k * size, rng, ids)
                   for k in range(max(repeat, 10_000 // size))]
        group_t, consume_t = [], []
        for records in batches:
            client.flushall()
            consumer = HotspotConsumer(HotspotStore(client, 1000, 600))
            t = time.perf_counter()
            consumer.group(records, ConsumeResult())
            group_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = consumer.consume(records)
            consume_t.append(time.perf_counter() - t)
            assert result.applied == size and result.malformed == 0
        rows.append((f"{size:,} {'with' if ids else 'without'} click ids", rate(size, group_t),
                     rate(size, consume_t)))
    client.close()
    return rows


def aws_layout(n: int, seed: int) -> list[tuple[float, float]]:
    """The AWS HOTSPOTS example on the unit square: uniform, 20% inside [0.3, 0.4] x [0.5, 0.6]
    (also the known-answer layout of tests/test_hotspots_compute.py)."""
    rng = random.Random(seed)
    hot = n // 5
    pts = [(0.3 + rng.random() * 0.1, 0.5 + rng.random() * 0.1) for _ in range(hot)]
    pts += [(rng.random(), rng.random()) for _ in range(n - hot)]
    rng.shuffle(pts)
    return pts


def sklearn_hotspots(points, eps, min_points):
    import numpy as np
    from sklearn.cluster import DBSCAN

    t = time.perf_counter()
    fit = DBSCAN(eps=eps, min_samples=min_points).fit(np.array(points))
    elapsed = time.perf_counter() - t
    groups: dict[int, list] = {}
    for i in fit.core_sample_indices_:
        groups.setdefault(int(fit.labels_[i]), []).append(points[i])
    boxes = sorted((len(g), min(p[0] for p in g), min(p[1] for p in g), max(p[0] for p in g),
                    max(p[1] for p in g)) for g in groups.values())
    return elapsed, boxes


def bench_compute(repeat: int) -> list[tuple]:
    rows = []
    for n, eps, min_points in ((1_000, 0.02, 17), (100_000, 0.002, 17), (100_000, 0.02, 1700)):
        ours, theirs = [], []
        for seed in range(repeat):
            points = aws_layout(n, seed)
            t = time.perf_counter()
            spots = find_hotspots(points, eps, min_points)
            ours.append(time.perf_counter() - t)
            elapsed, boxes = sklearn_hotspots(points, eps, min_points)
            theirs.append(elapsed)
            mine = sorted((h.count, *h.min, *h.max) for h in spots)
            if mine != boxes:
                raise SystemExit(f"different hotspots for n={n}: {mine} != {boxes}")
        rows.append((n, eps, min_points, len(spots), min(ours) * 1000, min(theirs) * 1000))
    return rows


def bench_heatmap(repeat: int) -> list[tuple]:
    """(n, hotspots ms, heatmap 32 ms, heatmap 128 ms), each the best of `repeat`, all
    three on the same points in turn."""
    rows = []
    for n in (1_000, 10_000, 100_000):
        eps = 0.02 * (1000 / n) ** 0.5
        spots_t, heat32_t, heat128_t = [], [], []
        for seed in range(repeat):
            points = aws_layout(n, seed)
            t = time.perf_counter()
            find_hotspots(points, eps, 17)
            spots_t.append(time.perf_counter() - t)
            for grid, times in ((32, heat32_t), (128, heat128_t)):
                t = time.perf_counter()
                cells = heatmap(points, grid)
                times.append(time.perf_counter() - t)
                assert abs(sum(map(sum, cells)) - n) < 1e-6 * n
        rows.append((n, eps, min(spots_t) * 1000, min(heat32_t) * 1000, min(heat128_t) * 1000))
    return rows


def print_heatmap(rows: list[tuple]) -> None:
    print("| points | find_hotspots ms (scan_radius) | heatmap 32² ms | × of hotspots | "
          "µs/point | heatmap 128² ms | × of hotspots | µs/point |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, eps, spots, h32, h128 in rows:
        print(f"| {n:,} | {spots:,.1f} ({eps:.4f}) | {h32:,.1f} | {h32 / spots:.3f} | "
              f"{h32 * 1000 / n:.2f} | {h128:,.1f} | {h128 / spots:.3f} | "
              f"{h128 * 1000 / n:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--part", choices=("all", "heatmap"), default="all",
                        help="heatmap: only 3, the heatmap next to find_hotspots")
    parser.add_argument("--consumer-only", action="store_true",
                        help="the consumer's throughput, not the hotspot computation")
    args = parser.parse_args(argv)
    if args.part == "heatmap":
        print_heatmap(bench_heatmap(args.repeat))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        server = processes.redis_server(processes.free_port(), Path(tmp)).start()
        try:
            consumer_rows = bench_consumer(args.repeat, server.port)
        finally:
            server.stop()
    compute_rows = [] if args.consumer_only else bench_compute(args.repeat)

    print("| batch | (a) own computation clicks/s | (b) with Redis clicks/s |")
    print("|---:|---:|---:|")
    for size, own, full in consumer_rows:
        print(f"| {size} | {own:,.0f} | {full:,.0f} |")
    print()
    print("| points | scan_radius | min_points | hotspots | ours ms | DBSCAN ms | × faster |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, eps, mp, found, ours, theirs in compute_rows:
        print(f"| {n:,} | {eps} | {mp} | {found} | {ours:,.1f} | {theirs:,.1f} | "
              f"{theirs / ours:.2f} |")
    print()
    print_heatmap(bench_heatmap(args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
