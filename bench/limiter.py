"""What the rate limiter adds to a request, with and without it, side by side in one run,
in-process through chalice.test.Client over the real app against a redis-server and two
memcached nodes the bench starts (the views read Redis; the limiter counts in the same
Redis, one EVALSHA a request).  Two routes: `GET /leaderboard`, a read-only view that runs
while its request is counted, and `GET /hotspots`, counted before its view runs.

Requests alternate between the two limiters (public-read limited far above what the
bench sends, or not limited at all) so both see the same machine load; each table gives
p50/p99/max in ms per variant and the difference, then the limiter's own call
(`Limiter.hit`) alone.

It then renders the costliest QR codes the cost caps allow (chalicelib/qr/spec.py:
the longest URL per error-correction level at the largest size, PNG and SVG), timing
each and reading the process's peak RSS, against the issue's 200 ms and 50 MB.

    python -m bench.limiter [--n 5000] [--qr-runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench import use_stack_env
from local import processes

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="requests per variant")
    ap.add_argument("--qr-runs", type=int, default=5, help="renders per QR case")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-limiter-"))
    redis = processes.redis_server(processes.free_port(), workdir / "redis").start()
    nodes = [processes.memcached_server(processes.free_port(), workdir, name=f"mc-{i}").start()
             for i in range(2)]
    try:
        use_stack_env(redis_port=redis.port, memcached_ports=[n.port for n in nodes])
        os.environ["RATE_LIMITS"] = json.dumps({"public-read": {"quota": 10**9, "window": 60}})
        # The per-request JSON log line, the same in both variants, would be most of a
        # route's time and all of its jitter.
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        from chalice.test import Client

        import app as pulse_app
        from chalicelib import ratelimit
        from chalicelib.clients import reset_clients
        from chalicelib.settings import get_settings

        reset_clients()
        with_limiter = ratelimit.get_limiter()
        without = ratelimit.Limiter(get_settings())
        without.policies = {}  # no class limited: the middleware only looks the class up
        routes = {"/leaderboard": "runs while counted",
                  "/hotspots?page=bench": "counted before its view"}
        times = {(path, v): [] for path in routes for v in ("with", "without")}
        skipped = 0
        with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
            for path in routes:
                for limiter in (with_limiter, without) * 50:
                    ratelimit._current[:] = [limiter]
                    client.http.get(path)  # warm both
            for i in range(2 * args.n * len(routes)):
                path = list(routes)[(i // 2) % len(routes)]
                variant, limiter = (("with", with_limiter), ("without", without))[i % 2]
                ratelimit._current[:] = [limiter]
                started = time.perf_counter()
                response = client.http.get(path)
                times[path, variant].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.body
                if variant == "with" and "RateLimit" not in response.headers:
                    skipped += 1  # Redis answered later than RATE_LIMIT_TIMEOUT
        hits = []
        for i in range(args.n):
            started = time.perf_counter()
            with_limiter.hit("public-read", f"10.0.{i % 250}.{i % 7}")
            hits.append((time.perf_counter() - started) * 1000)
        load = os.getloadavg()[0]
    finally:
        for node in nodes:
            node.stop()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"n={args.n} per variant, load average {load:.1f}, requests the limiter let "
          f"pass without counting (Redis slower than its timeout, then skipped a while): "
          f"{skipped}")
    for path, how in routes.items():
        print(f"\n| GET {path} ({how}) | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|")
        for variant in ("without", "with"):
            t = times[path, variant]
            print(f"| {variant} limiter | {statistics.median(t):.3f} | {pct(t, 0.99):.3f} | "
                  f"{max(t):.3f} |")
        w, wo = times[path, "with"], times[path, "without"]
        print(f"| added | {statistics.median(w) - statistics.median(wo):.3f} | "
              f"{pct(w, 0.99) - pct(wo, 0.99):.3f} | |")
    print("\n| the call alone | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|")
    print(f"| `Limiter.hit` alone | {statistics.median(hits):.3f} | {pct(hits, 0.99):.3f} | "
          f"{max(hits):.3f} |")
    qr_caps(args.qr_runs)


def qr_caps(runs: int) -> None:
    """The costliest renders the caps allow: median and largest ms, peak RSS."""
    import resource

    from chalicelib.qr import render
    from chalicelib.qr.spec import MAX_PIXELS, MAX_VERSION, QrSpec

    longest = {"L": 520, "M": 412, "Q": 292, "H": 220}  # characters at MAX_VERSION
    render.render(QrSpec(url="https://example.com/"))  # imports
    print(f"\nQR renders at the caps (version {MAX_VERSION}, {MAX_PIXELS:,} px), "
          f"{runs} runs each, load {os.getloadavg()[0]:.1f}\n")
    print("| level | URL chars | format | size x border | px a side | median ms | max ms |")
    print("|---|---:|---|---|---:|---:|---:|")
    for level, chars in longest.items():
        url = "https://example.com/" + "a" * (chars - 20)
        for fmt, size, border, fg in (("png", 38, 0, "#1a237e"), ("png", 34, 4, "#000000"),
                                      ("svg", 38, 0, "#1a237e")):
            spec = QrSpec(url=url, format=fmt, size=size, border=border, fg=fg,
                          error_correction=level)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                render.render(spec)
                times.append((time.perf_counter() - started) * 1000)
            print(f"| {level} | {chars} | {fmt} | {size} x {border} | {(77 + 2 * border) * size}"
                  f" | {statistics.median(times):.0f} | {max(times):.0f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (the app, its clients and the renders): {peak:.0f} MB")


if __name__ == "__main__":
    main()
