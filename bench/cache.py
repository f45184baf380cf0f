"""Read-through cache latency: HIT, MISS and BYPASS of GET /upstream/demo/<item>, next to
a raw pymemcache `get` and the route's own overhead, in one run.

Starts two memcached nodes on free ports and the demo upstream (local/demo_upstream.py,
300 ms per answer) in a thread, then calls the app in process through chalice's test
client (the Lambda handler path, without an HTTP server in front), one call after another:

- raw get:    `get_memcached().get(key)` of the very entry a HIT reads (HashClient);
- overhead:   the HIT route with memcached replaced by a dict holding the same entry:
              everything the route does (routing, checks, key, decode, answer) but the
              network round trip;
- overhead + raw get: both, one after the other, timed as one: the floor for any
              route that reads one memcached entry (a get that follows other work pays
              more than one in a tight loop: memcached's thread and the caches are cold);
- 404 route:  GET /upstream/nope (an unknown name), for scale: routing and a JSON error;
- HIT:        GET /upstream/demo/3 with the entry cached;
- MISS:       the same, with the entry deleted before each call (the upstream's 300 ms);
- BYPASS:     the same with both memcached nodes stopped (straight to the upstream).

Then, as a person sees it under `make run`: HIT over HTTP from `chalice local` on one kept-
alive connection, started as `make run` starts it (local/chalice_local.py, Nagle off) and as
plain `chalice local` (Nagle on: the body waits for the client's delayed ACK).

The fast paths run in interleaved rounds (raw, overhead, 404, HIT, raw, ...), so that
the machine's noise falls on all of them alike.

    python -m bench.cache [--iters 2000] [--slow-iters 20] [--delay 0.3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench import use_stack_env
from chalicelib.clients import get_memcached, reset_clients
from local import processes
from local.demo_upstream import DemoUpstream

ROOT = Path(__file__).resolve().parent.parent


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """p50, p99 in milliseconds."""
    if len(samples_ns) < 2:
        return samples_ns[0] / 1e6, samples_ns[0] / 1e6
    q = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return q[49] / 1e6, q[98] / 1e6


def sample(fn, iters: int, before=None) -> list[int]:
    """Nanoseconds of each fn() call; `before` runs untimed before each call."""
    samples = []
    for _ in range(iters):
        if before is not None:
            before()
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return samples


def interleaved(paths: dict, iters: int, rounds: int = 10) -> dict[str, tuple[float, float]]:
    samples: dict[str, list[int]] = {name: [] for name in paths}
    for fn in paths.values():
        sample(fn, 200)  # warm-up
    for _ in range(rounds):
        for name, fn in paths.items():
            samples[name] += sample(fn, iters // rounds)
    return {name: percentiles(s) for name, s in samples.items()}


def http_hits(workdir: Path, iters: int) -> dict[str, tuple[float, float]]:
    """HIT p50/p99 over HTTP from chalice local, with and without Nagle's delay."""
    import http.client
    import sys

    servers, calls = [], {}
    launchers = {"HTTP HIT, make run's chalice local": [sys.executable, "-m",
                                                        "local.chalice_local"],
                 "HTTP HIT, plain chalice local": [str(Path(sys.executable).parent / "chalice")]}
    try:
        for name, launcher in launchers.items():
            port = processes.free_port()
            servers.append(processes.Server(
                f"chalice-{port}", port, [*launcher, "local", "--stage", "local",
                                          "--no-autoreload", "--port", str(port)],
                ROOT, env=dict(os.environ), rundir=workdir).start(timeout=60))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

            def call(conn=conn):
                conn.request("GET", "/upstream/demo/3")
                resp = conn.getresponse()
                resp.read()
                assert resp.getheader("X-Cache") == "HIT"

            calls[name] = call
        return interleaved(calls, iters, rounds=5)
    finally:
        for server in servers:
            server.stop()


class DictMemcached:
    """Stands in for memcached in the overhead measure: a dict, no network."""

    def __init__(self, entries: dict):
        self.entries = entries

    def get(self, key):
        return self.entries.get(key)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=2000, help="calls for the fast paths")
    ap.add_argument("--slow-iters", type=int, default=20, help="calls for MISS and BYPASS")
    ap.add_argument("--delay", type=float, default=0.3, help="the upstream's seconds")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-cache-"))
    nodes = [processes.memcached_server(processes.free_port(), workdir, name=f"mc-{i}").start()
             for i in range(2)]
    upstream = DemoUpstream(delay=args.delay).start()
    base = upstream.base_url
    use_stack_env(memcached_ports=[n.port for n in nodes])
    os.environ["UPSTREAMS"] = json.dumps({"demo": {"url": f"{base}/employees",
                                                   "item_url": base + "/employee/{item}",
                                                   "ttl": 3600, "timeout": 2}})
    reset_clients()
    from chalice.test import Client

    import app as pulse_app
    from chalicelib.cache.readthrough import ReadThroughCache
    from chalicelib.upstream import api as cache_api
    from chalicelib.upstream import wiring as upstream_wiring

    demo = cache_api.upstream_named("demo")
    key = cache_api.cache_key(demo, "3")
    try:
        with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
            def call(path, expect):
                resp = client.http.get(path)
                assert resp.headers.get("X-Cache") == expect, (path, resp.status_code,
                                                               resp.headers)

            call("/upstream/demo/3", "MISS")
            mc = get_memcached()
            in_dict = ReadThroughCache(DictMemcached({key: mc.get(key)}))
            real_cache = upstream_wiring.get_cache

            def overhead():
                upstream_wiring.get_cache = lambda: in_dict
                try:
                    call("/upstream/demo/3", "HIT")
                finally:
                    upstream_wiring.get_cache = real_cache

            rows = interleaved({
                "raw get": lambda: mc.get(key),
                "overhead": overhead,
                "overhead + raw get": lambda: (overhead(), mc.get(key)),
                "404 route": lambda: call("/upstream/nope", None),
                "HIT": lambda: call("/upstream/demo/3", "HIT"),
            }, args.iters)
            rows.update(http_hits(workdir, max(100, args.iters // 10)))
            rows["MISS"] = percentiles(sample(lambda: call("/upstream/demo/3", "MISS"),
                                              args.slow_iters,
                                              before=lambda: mc.delete(key, noreply=False)))
            for node in nodes:
                node.stop()
            call("/upstream/demo/3", "BYPASS")  # finds the nodes down
            rows["BYPASS"] = percentiles(sample(lambda: call("/upstream/demo/3", "BYPASS"),
                                                args.slow_iters))
    finally:
        upstream.stop()
        for node in nodes:
            node.stop()
        reset_clients()

    print(f"{args.iters} fast / {args.slow_iters} slow calls, upstream delay {args.delay}s")
    print("| path | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    for name, (p50, p99) in rows.items():
        print(f"| {name} | {p50:.3f} | {p99:.3f} |")
    hit, miss = rows["HIT"][0], rows["MISS"][0]
    floor = rows["raw get"][0] + rows["overhead"][0]
    print(f"\nMISS p50 / HIT p50 = {miss / hit:.0f}x (goal >= 100x)")
    print(f"HIT p50 / (raw get p50 + overhead p50) = {hit / floor:.2f} (goal <= 1.5)")
    print(f"HIT p50 / (overhead + raw get) p50 = {hit / rows['overhead + raw get'][0]:.2f}")
    print(f"HIT p99 / (overhead + raw get) p99 = "
          f"{rows['HIT'][1] / rows['overhead + raw get'][1]:.2f}")


if __name__ == "__main__":
    main()
