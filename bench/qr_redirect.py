"""GET /r/{code} (a dynamic QR code's short link) on a memcached hit, with scan counting
and without, next to a GET /upstream HIT; then a scan burst counted exactly.  One run.

Starts its own redis-server, two memcached nodes, a moto server and the demo upstream,
provisions the local stage's resources, makes one dynamic code and warms its memcached
copy and the upstream item.  Then:

- in process (chalice.test.Client: the Lambda handler path, no HTTP server), in
  interleaved rounds so the machine's noise falls on all alike:
    redirect + count   GET /r/{code} as an iPhone: memcached get, rules, 302, and the
                       count (one Redis pipeline: HINCRBY x2, PFADD, EXPIRE x2)
    redirect only      the same with QR_SCAN_COUNTING=false
    /upstream HIT      GET /upstream/demo/3 from memcached
- over HTTP from `chalice local` as `make run` starts it (one kept-alive connection per
  path): the same three, the counting and non-counting redirects from two servers;
- the burst: 8 threads, each on its own kept-alive connection to the counting server,
  scan the code N times in all; the day's count must then be exactly N.

    python -m bench.qr_redirect [--iters 2000] [--burst 5000]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import use_stack_env
from bench.cache import interleaved
from local import processes
from local.demo_upstream import DemoUpstream

ROOT = Path(__file__).resolve().parent.parent
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


def counting(on: bool) -> None:
    from chalicelib.settings import get_settings

    os.environ["QR_SCAN_COUNTING"] = "true" if on else "false"
    get_settings.cache_clear()
    get_settings()


def in_process(code: str, iters: int) -> dict[str, tuple[float, float]]:
    from chalice.test import Client

    import app as pulse_app

    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        def scan():
            resp = client.http.get(f"/r/{code}", headers={"User-Agent": IPHONE})
            assert resp.status_code == 302, resp.body

        def upstream():
            resp = client.http.get("/upstream/demo/3")
            assert resp.headers["X-Cache"] == "HIT", resp.headers

        def scan_counting():
            if os.environ.get("QR_SCAN_COUNTING") != "true":
                counting(True)
            scan()

        def scan_only():
            if os.environ.get("QR_SCAN_COUNTING") != "false":
                counting(False)
            scan()

        client.http.get("/upstream/demo/3")  # the MISS that fills memcached
        # the switch re-reads the settings once per block of a round, in the block's
        # first call: 1 call in iters/rounds, below p50 and (at 200 a block) at p99.5
        return interleaved({"redirect + count": scan_counting, "redirect only": scan_only,
                            "/upstream HIT": upstream}, iters)


def serve(workdir: Path, **env) -> tuple[processes.Server, int]:
    port = processes.free_port()
    server = processes.Server(
        f"chalice-{port}", port, [sys.executable, "-m", "local.chalice_local", "local",
                                  "--stage", "local", "--no-autoreload", "--port", str(port)],
        ROOT, env={**os.environ, **env}, rundir=workdir).start(timeout=60)
    return server, port


def getter(port: int, path: str, expect: int, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def call():
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == expect, resp.status

    return call


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=2000, help="calls per path")
    ap.add_argument("--burst", type=int, default=5000, help="scans in the burst")
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-redirect-"))
    redis_server = processes.redis_server(processes.free_port(), workdir / "redis").start()
    nodes = [processes.memcached_server(processes.free_port(), workdir, name=f"mc-{i}").start()
             for i in range(2)]
    moto = processes.moto_server(processes.free_port(), workdir).start(timeout=60)
    upstream = DemoUpstream(delay=0.05).start()
    servers = []
    try:
        use_stack_env(redis_port=redis_server.port, memcached_ports=[n.port for n in nodes],
                      moto_port=moto.port)
        base = upstream.base_url
        os.environ["UPSTREAMS"] = json.dumps({"demo": {"url": f"{base}/employees",
                                                       "item_url": base + "/employee/{item}",
                                                       "ttl": 3600, "timeout": 2}})
        from chalicelib.clients import reset_clients
        from chalicelib.qr import api as qr_api
        from chalicelib.settings import Settings
        from local.provision import provision

        reset_clients()
        provision(Settings.from_env())
        body, status = qr_api.create(json.dumps({"url": "https://shop.example/spring",
                                                 "dynamic": True}).encode())
        assert status == 201
        code = body["code"]

        fast = in_process(code, args.iters)

        counting_server, counting_port = serve(workdir, QR_SCAN_COUNTING="true")
        plain_server, plain_port = serve(workdir, QR_SCAN_COUNTING="false")
        servers += [counting_server, plain_server]
        over_http = interleaved({
            "redirect + count": getter(counting_port, f"/r/{code}", 302, {"User-Agent": IPHONE}),
            "redirect only": getter(plain_port, f"/r/{code}", 302, {"User-Agent": IPHONE}),
            "/upstream HIT": getter(counting_port, "/upstream/demo/3", 200)}, args.iters,
            rounds=5)

        def counted_so_far() -> int:  # the route sends the server's queued scans first
            conn = http.client.HTTPConnection("127.0.0.1", counting_port, timeout=10)
            conn.request("GET", f"/qr/{code}/scans?days=1")
            return json.loads(conn.getresponse().read())["days"][0]["humans"]

        before = counted_so_far()
        per_thread = args.burst // args.threads
        failures: list[BaseException] = []

        def burst():
            try:
                call = getter(counting_port, f"/r/{code}", 302, {"User-Agent": IPHONE})
                for _ in range(per_thread):
                    call()
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=burst) for _ in range(args.threads)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        counted = counted_so_far() - before
    finally:
        for server in servers:
            server.stop()
        upstream.stop()
        moto.stop()
        for node in nodes:
            node.stop()
        redis_server.stop()

    print(f"one dynamic code on a memcached hit; {args.iters} calls a path; ms")
    print(f"{'path':22} {'in-process p50':>15} {'p99':>8} {'HTTP p50':>10} {'p99':>8}")
    for name in fast:
        print(f"{name:22} {fast[name][0]:15.3f} {fast[name][1]:8.3f} "
              f"{over_http[name][0]:10.3f} {over_http[name][1]:8.3f}")
    for label, table in (("in-process", fast), ("HTTP", over_http)):
        count, only, hit = (table[n][0] for n in ("redirect + count", "redirect only",
                                                  "/upstream HIT"))
        print(f"{label}: count/only {count / only:.2f}x, count/upstream HIT {count / hit:.2f}x "
              "(p50)")
    sent = per_thread * args.threads
    print(f"burst: {sent} scans from {args.threads} threads in {took:.1f} s "
          f"({sent / took:.0f}/s), {len(failures)} failed requests, counted {counted}"
          f"{' (exact)' if counted == sent else ' (NOT exact)'}")


if __name__ == "__main__":
    main()
