"""The abuse drill: flood a running `chalice local` of the app from several client
addresses (loopback 127.0.0.2, .3, ...: the client socket is bound to each, and the app
counts by the peer address) with requests of distinct pages, domains, upstream items
and QR options, then look at what it left behind.

Checked: every answer is 2xx, 404 (a page never clicked, an item the upstream lacks, a tag
never counted) or 429 with Retry-After, RateLimit-Policy and RateLimit; never a 5xx; the
upstream's calls
stay under its calls_per_second; Redis grows by no more than the bounds (README, "Limits
and bounds"); a SCAN finds no key without a TTL.  tests/test_abuse_drill.py runs it
small; this runs it bigger and prints the table for BENCHMARKS.md:

    python -m bench.abuse_drill [--requests 50000] [--sources 8]

It starts its own stack (redis-server, two memcached nodes, moto, the demo upstream,
`chalice local` with the drill's limits) and the local event runner in-process, which
applies the accepted clicks and QR creations to Redis after the flood.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Quotas per client address and minute: low, so the flood meets them.
DRILL_RATE_LIMITS = {"public-read": {"quota": 120, "window": 60},
                     "public-write": {"quota": 60, "window": 60},
                     "team": {"quota": 20, "window": 60},
                     "pages": {"quota": 60, "window": 60}}
DRILL_MAX_PAGES = 100
DRILL_DOMAINS_MAX = 50
DRILL_CALLS_PER_SECOND = 10
PAGES_KEY = "pulse:hs:pages"
DOMAINS_KEY = "pulse:qr:{stats}:domains"


def drill_env(base: dict[str, str], upstream_base_url: str) -> dict[str, str]:
    """The app's environment for the drill: the stack's, with the drill's limits."""
    upstream = {"demo": {"url": f"{upstream_base_url}/employees",
                         "item_url": upstream_base_url + "/employee/{item}", "ttl": 60,
                         "timeout": 1, "calls_per_second": DRILL_CALLS_PER_SECOND}}
    return {**base, "RATE_LIMITS": json.dumps(DRILL_RATE_LIMITS), "UPSTREAMS": json.dumps(upstream),
            "HOTSPOTS_MAX_PAGES": str(DRILL_MAX_PAGES), "QR_DOMAINS_MAX": str(DRILL_DOMAINS_MAX),
            "PULSE_AWS_READ_TIMEOUT": "2", "PULSE_AWS_BUDGET": "6"}


def request_for(n: int) -> tuple[str, str, str, bytes | None]:
    """The n-th request of the flood: (kind, method, path, body), each distinct."""
    kind = ("leaderboard", "hotspots", "clicks", "upstream", "qr", "qr-stats", "page",
            "clicks")[n % 8]
    if kind == "leaderboard":
        return kind, "GET", f"/leaderboard/tag{n}?n=5", None
    if kind == "hotspots":
        return kind, "GET", f"/hotspots?page=p{n}", None
    if kind == "clicks":
        body = {"page": f"p{n}", "session": f"s{n}",
                "clicks": [{"x": (n % 97) / 97, "y": (n % 89) / 89, "t": 1}]}
        return kind, "POST", "/clicks", json.dumps(body).encode()
    if kind == "upstream":
        return kind, "GET", f"/upstream/demo/{n}", None
    if kind == "qr":
        body = {"url": f"https://d{n}.example/campaign?u={n}", "size": 1 + n % 12,
                "border": n % 5, "error_correction": "LMQH"[n % 4],
                "format": ("png", "svg")[n % 2]}
        return kind, "POST", "/qr", json.dumps(body).encode()
    if kind == "qr-stats":
        return kind, "GET", f"/qr?top={1 + n % 50}", None
    return kind, "GET", ("/ui/leaderboard", "/ui/clicks", "/ui/qr", "/ui/cache", "/")[n % 5], None


@dataclass
class FloodResult:
    seconds: float = 0.0
    statuses: collections.Counter = field(default_factory=collections.Counter)  # (kind, code)
    problems: list[str] = field(default_factory=list)
    distinct_pages_clicked: int = 0
    distinct_domains_created: int = 0

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


ALLOWED = {200, 201, 202, 304, 404, 429}


def flood(host: str, port: int, sources: list[str], total: int, threads_per_source: int = 2,
          deadline_seconds: float = 120.0) -> FloodResult:
    """`total` requests spread over `sources` (loopback addresses), kept-alive connections
    bound to each; stops early at `deadline_seconds`."""
    numbers: queue.SimpleQueue = queue.SimpleQueue()
    for n in range(total):
        numbers.put(n)
    result = FloodResult()
    lock = threading.Lock()
    pages, domains = set(), set()
    started = time.monotonic()

    def worker(source: str):
        conn = None
        while time.monotonic() - started < deadline_seconds:
            try:
                n = numbers.get_nowait()
            except queue.Empty:
                break
            kind, method, path, body = request_for(n)
            headers = {"Content-Type": "application/json", "Accept": "*/*",
                       "X-Forwarded-For": f"10.9.{n % 250}.{n % 199}"}  # must change nothing
            for attempt in range(2):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, port, timeout=30,
                                                          source_address=(source, 0))
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    if conn is not None:
                        conn.close()
                    conn = None
                    if attempt:
                        with lock:
                            result.problems.append(f"{method} {path}: {exc!r}")
                        resp = None
            if resp is None:
                continue
            code = resp.status
            problem = None
            if code not in ALLOWED or (code == 404 and kind not in ("hotspots", "upstream",
                                                                "leaderboard")):
                problem = f"{method} {path} -> {code}"
            elif code == 429 and not all(resp.getheader(h) for h in (
                    "Retry-After", "RateLimit-Policy", "RateLimit")):
                problem = f"{method} {path} -> 429 without its headers"
            with lock:
                result.statuses[(kind, code)] += 1
                if problem:
                    result.problems.append(problem)
                if kind == "clicks" and code == 202:
                    pages.add(n)
                if kind == "qr" and code in (200, 201):
                    domains.add(n)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in sources
               for _ in range(threads_per_source)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - started
    result.distinct_pages_clicked = len(pages)
    result.distinct_domains_created = len(domains)
    return result


def sources(count: int) -> list[str]:
    return [f"127.0.0.{i}" for i in range(2, 2 + count)]


@dataclass
class RedisReport:
    used_memory: int  # INFO memory: the keys and Redis' own (clients, scripts, tables)
    key_bytes: int  # MEMORY USAGE summed over the keys
    keys: int
    families: dict[str, int]
    without_ttl: list[str]


def redis_report(r) -> RedisReport:
    """Memory, key count by family (the key up to its hash tag), and keys without a TTL."""
    families: collections.Counter = collections.Counter()
    without_ttl = []
    key_bytes = 0
    for key in r.scan_iter(count=1000):
        families[key.split("{")[0].rstrip(":")] += 1
        key_bytes += r.memory_usage(key, samples=0) or 0
        if r.ttl(key) == -1:
            without_ttl.append(key)
    return RedisReport(int(r.info("memory")["used_memory"]), key_bytes,
                       sum(families.values()), dict(families), without_ttl)


# What the README states each structure costs at most (bytes), for the drill's bound.
PAGE_BYTES_ONE_CLICK = 1024  # a page of one click: window, meta, result (~613 B measured)
LIMITER_KEY_BYTES = 128  # one counter per client address and class
QR_CREATION_BYTES = 512  # a creation's dedupe marker and its share of the recent list
QR_DOMAIN_BYTES = 128  # one member of the capped per-domain set
# Redis' own, not the keys': client buffers of the flood's connections, the scripts,
# hash tables growing in steps.
SLACK_BYTES = 2 * 1024 * 1024


def memory_bound(source_count: int, qr_creations: int) -> int:
    """The most the drill's keys may take (MEMORY USAGE): pages capped at DRILL_MAX_PAGES
    (one click each here), limiter keys, QR markers and the capped domain set.  Redis'
    used_memory may grow by SLACK_BYTES more."""
    return (DRILL_MAX_PAGES * PAGE_BYTES_ONE_CLICK + source_count * 4 * LIMITER_KEY_BYTES
            + qr_creations * QR_CREATION_BYTES + DRILL_DOMAINS_MAX * QR_DOMAIN_BYTES)


def apply_events(app, settings, rounds: int = 40) -> tuple[int, int]:
    """Run the local event runner until the click stream, the QR table's stream and the QR
    queue are drained: (click records, QR messages) delivered."""
    from local.events import EventRunner

    runner = EventRunner(app, settings=settings).setup()
    records = messages = 0
    idle = 0
    for _ in range(rounds):
        events = runner.deliver_events() + runner.deliver_table_records()
        got_records, got_messages = runner.deliver_records(), runner.deliver_messages()
        records, messages = records + got_records, messages + got_messages
        idle = idle + 1 if not (events or got_records or got_messages) else 0
        if idle >= 3:
            break
    return records, messages


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="per source address")
    args = ap.parse_args(argv)

    import shutil
    import sys
    import tempfile

    import redis as redis_lib

    from bench import use_stack_env
    from local import processes
    from local.demo_upstream import DemoUpstream

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-abuse-"))
    servers = [processes.redis_server(processes.free_port(), workdir / "redis").start(),
               *[processes.memcached_server(processes.free_port(), workdir,
                                            name=f"mc-{i}").start() for i in range(2)],
               processes.moto_server(processes.free_port(), workdir).start(timeout=60)]
    redis_srv, mc_a, mc_b, moto = servers
    upstream = DemoUpstream(delay=0.02).start()
    try:
        use_stack_env(redis_port=redis_srv.port, memcached_ports=[mc_a.port, mc_b.port],
                      moto_port=moto.port)
        env = drill_env({k: v for k, v in os.environ.items() if not k.startswith("AWS_PROF")},
                        upstream.base_url)
        os.environ.update(env)
        from chalicelib.clients import reset_clients
        from chalicelib.settings import Settings
        from local.provision import provision

        reset_clients()
        settings = Settings.from_env()
        provision(settings)
        port = processes.free_port()
        app_server = processes.Server(
            "chalice-local", port,
            [sys.executable, "-m", "local.chalice_local", "local", "--stage", "local",
             "--no-autoreload", "--host", "127.0.0.1", "--port", str(port)],
            ROOT, env=env, rundir=workdir)
        app_server.start(timeout=60)
        servers.append(app_server)
        r = redis_lib.Redis(port=redis_srv.port, decode_responses=True)
        before = redis_report(r)
        result = flood("127.0.0.1", port, sources(args.sources), args.requests, args.threads,
                       deadline_seconds=600)
        import app as pulse_app

        records, messages = apply_events(pulse_app.app, settings)
        after = redis_report(r)
        pages_kept, domains_kept = r.zcard(PAGES_KEY), r.zcard(DOMAINS_KEY)
        load = os.getloadavg()[0]
    finally:
        upstream.stop()
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    qr_made = sum(c for (kind, code), c in result.statuses.items()
                  if kind == "qr" and code in (200, 201))
    bound = memory_bound(args.sources, qr_made)
    rate = result.total / result.seconds
    print(f"{result.total:,} requests in {result.seconds:.1f} s ({rate:.0f}/s) from "
          f"{args.sources} addresses x {args.threads} connections; load {load:.1f}\n")
    print("| route | " + " | ".join(str(c) for c in sorted(ALLOWED | {500, 502, 503, 504}))
          + " |")
    print("|---|" + "---:|" * len(ALLOWED | {500, 502, 503, 504}))
    for kind in sorted({k for k, _ in result.statuses}):
        print(f"| {kind} | " + " | ".join(str(result.statuses.get((kind, c), 0))
                                          for c in sorted(ALLOWED | {500, 502, 503, 504})) + " |")
    print(f"\nproblems: {len(result.problems)} {result.problems[:5]}")
    print(f"upstream calls: {upstream.total_calls()} (cap {DRILL_CALLS_PER_SECOND}/s x "
          f"{result.seconds:.0f} s = {DRILL_CALLS_PER_SECOND * result.seconds:.0f})")
    print(f"click pages accepted: {result.distinct_pages_clicked} distinct; records applied "
          f"{records}; pages kept {pages_kept} (cap {DRILL_MAX_PAGES})")
    print(f"QR codes made: {qr_made} ({result.distinct_domains_created} domains); "
          f"messages applied {messages}; domains kept {domains_kept} (cap {DRILL_DOMAINS_MAX})")
    print(f"redis keys: {before.key_bytes:,} -> {after.key_bytes:,} B (bound {bound:,}); "
          f"used_memory {before.used_memory:,} -> {after.used_memory:,} B "
          f"(+{after.used_memory - before.used_memory:,}; bound {bound + SLACK_BYTES:,}); "
          f"keys {before.keys} -> {after.keys}: {after.families}")
    print(f"keys without a TTL: {after.without_ttl}")


if __name__ == "__main__":
    main()
