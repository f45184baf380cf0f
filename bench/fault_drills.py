"""Fault drills under load: every dependency fails while traffic flows.

Starts the local stack as `make run` does (local.processes: redis-server with its
append-only file, two memcached nodes, moto's server, the demo upstream, the event
runner and `python -m local.chalice_local`), each on a free port so it never meets a
running `make run`, then drives --clients threads of keep-alive HTTP over a mix of
routes (leaderboard top and rising, QR creations and hits, POST /clicks,
GET /hotspots, cached /upstream reads) through these phases:

    baseline           no fault
    redis-hung         redis-server SIGSTOPped, then SIGCONT
    memcached-killed   one memcached node stopped, then started again on its port
    aws-hung           moto's server SIGSTOPped, then SIGCONT
    upstream-hung      the demo upstream SIGSTOPped, then SIGCONT
    redis-refused      redis-server stopped (connections refused), then started again

Each fault lasts --fault seconds, followed by --after seconds of recovery.  Every answer
is classified: `normal` (the route's success, or a 304), `degraded` (the documented
answer under a fault: a 503/502/504 JSON in the one error shape of chalicelib/errors.py,
or an /upstream answer with X-Cache STALE or BYPASS) or `bad` (anything else: a 500, a
timeout, a wrong shape).  Per phase and route: requests, status counts, p50/p99/max
latency, the share over 2 s, and the time to recover (from the resume to the end of
the first normal answer of a request sent after it).

Then "nothing accepted is lost": every click answered 202 (and the `accepted` part of
a 503) must be counted in its page's hotspots window, first as the event runner
delivered the stream, then after a direct call to the consumer over every record of
the stream (idempotent: a record applied already changes nothing); and every QR
answered 201 must be served by GET /qr/{id} afterwards.

    python -m bench.fault_drills [--clients 12] [--fault 5] [--after 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local import processes

ROOT = Path(__file__).resolve().parent.parent
SLOW = 2.0  # the project's rule: a degraded answer within 2 s
PAGES = 8
CLICKS_PER_POST = 5
ERROR_CODES = {502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


# -- the stack ---------------------------------------------------------------
class Stack:
    """The `make run` processes on free ports, in a folder of their own."""

    def __init__(self, workdir: Path, upstream_ttl: float = 3.0,
                 extra_env: dict[str, str] | None = None):
        from local import stack

        self.workdir = workdir
        self.run_dir = workdir / "run"
        self.redis = processes.persistent_redis_server(processes.free_port(), workdir / "redis")
        # Redis's own record of its stalls (fork, AOF write/fsync, slow commands) over 50 ms
        self.redis.argv += ["--latency-monitor-threshold", "50"]
        self.memcached = [processes.memcached_server(processes.free_port(), self.run_dir,
                                                     name=f"memcached-{i}") for i in range(2)]
        self.moto = processes.moto_server(processes.free_port(), self.run_dir)
        self.upstream_port = processes.free_port()
        self.http_port = processes.free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("PULSE_")}
        env.update(stack.stack_env(redis_port=self.redis.port,
                                   memcached_ports=[m.port for m in self.memcached],
                                   moto_port=self.moto.port))
        base = f"http://127.0.0.1:{self.upstream_port}/api/v1"
        env["UPSTREAMS"] = json.dumps({"demo": {
            "url": f"{base}/employees", "item_url": base + "/employee/{item}",
            "ttl": upstream_ttl, "timeout": 1.0, "negative_ttl": 10}})
        # Every accepted click must stay countable: windows larger than the run.
        env["HOTSPOTS_WINDOW_CLICKS"] = "200000"
        env["HOTSPOTS_WINDOW_SECONDS"] = "3600"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra_env or {})
        self.env = env
        py = sys.executable
        self.upstream = processes.Server(
            "demo-upstream", self.upstream_port,
            [py, "-m", "local.demo_upstream", "--port", str(self.upstream_port)], ROOT, env=env)
        self.events = processes.Server("events", None,
                                       [py, "-m", "local.events", "--app-dir", str(ROOT)],
                                       ROOT, env=env)
        self.chalice = processes.Server(
            "chalice", self.http_port,
            [py, "-m", "local.chalice_local", "local", "--stage", "local", "--host",
             "127.0.0.1", "--port", str(self.http_port), "--no-autoreload"], ROOT, env=env)
        self.started: list[processes.Server] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def use_env_here(self) -> None:
        """This process's chalicelib clients on the stack (accounting, provisioning)."""
        from chalicelib.clients import reset_clients

        os.environ.update(self.env)
        reset_clients()

    def start(self) -> Stack:
        for server in (self.redis, *self.memcached, self.moto, self.upstream):
            server.rundir = self.run_dir
            self.started.append(server.start(timeout=60))
        self.use_env_here()
        from chalicelib.settings import Settings
        from local.provision import provision

        provision(Settings.from_env())
        for server in (self.events, self.chalice):
            server.rundir = self.run_dir
            self.started.append(server.start(timeout=60))
        return self

    def stop(self) -> None:
        for server in reversed(self.started):
            try:
                server.resume()
            except (ProcessLookupError, TypeError, AttributeError):
                pass
            server.stop()


# -- the client side ---------------------------------------------------------
@dataclass
class Sample:
    phase: str
    stage: str  # "fault" or "after"
    route: str
    status: int  # 0: no answer (timeout, connection error)
    kind: str  # normal | degraded | bad
    started: float
    seconds: float
    note: str = ""


def error_shape_ok(status: int, body: bytes, content_type: str) -> bool:
    """The one error shape: JSON {"error", "message", ...} with the status's code."""
    if not content_type.startswith("application/json"):
        return False
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return (isinstance(doc, dict) and doc.get("error") == ERROR_CODES.get(status)
            and isinstance(doc.get("message"), str))


def classify(route: str, status: int, headers: dict, body: bytes) -> tuple[str, str]:
    ctype = headers.get("content-type", "")
    if status in ERROR_CODES:
        if not error_shape_ok(status, body, ctype):
            return "bad", body[:80].decode(errors="replace")
        doc = json.loads(body)
        return "degraded", f"{doc.get('dependency', doc['error'])}: {doc['message'][:60]}"
    if route == "upstream" and status == 200:
        cache = headers.get("x-cache", "")
        return ("degraded" if cache in ("STALE", "BYPASS") else "normal"), cache
    expected = {"lb_top": (200, 304), "lb_rising": (200, 304), "qr_create": (201,),
                "qr_hit": (200,), "clicks": (202,), "hotspots": (200,)}[route]
    return ("normal" if status in expected else "bad"), ""


class Traffic:
    """Client threads over keep-alive connections, each sending the weighted mix."""

    MIX = [("lb_top", 3), ("lb_rising", 2), ("qr_create", 1), ("qr_hit", 2), ("clicks", 3),
           ("hotspots", 2), ("upstream", 3)]

    def __init__(self, base_url: str, clients: int, hit_specs: list[dict], seed: int = 7,
                 mix: list[tuple[str, int]] | None = None, timeout: float = 10.0):
        self.host, port = base_url.removeprefix("http://").split(":")
        self.port = int(port)
        self.clients = clients
        self.hit_specs = hit_specs
        self.timeout = timeout
        mix = mix or self.MIX
        self.routes = [r for r, w in mix for _ in range(w)]
        self.rng_seed = seed
        self.samples: list[Sample] = []
        self.created: list[str] = []  # ids answered 201
        self.clicks_accepted: Counter = Counter()  # page -> clicks answered accepted
        self.clicks_unknown: Counter = Counter()  # page -> clicks of requests without answer
        self.phase, self.stage = "setup", "fault"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def set_phase(self, phase: str, stage: str) -> None:
        self.phase, self.stage = phase, stage

    def request(self, route: str, rng: random.Random,
                page: str | None = None) -> tuple[str, str, bytes | None, dict]:
        if route == "lb_top":
            return "GET", f"/leaderboard?window=all&n={rng.choice((10, 20))}", None, {}
        if route == "lb_rising":
            return "GET", f"/leaderboard?order=rising&window={rng.choice(('1h', '24h'))}", \
                None, {}
        if route == "qr_create":
            spec = {"url": f"https://drill.example/{uuid.uuid4().hex}", "format": "svg"}
            return "POST", "/qr", json.dumps(spec).encode(), {}
        if route == "qr_hit":
            return "POST", "/qr", json.dumps(rng.choice(self.hit_specs)).encode(), {}
        if route == "clicks":
            page = page or f"drill-{rng.randrange(PAGES)}"
            now = int(time.time() * 1000)
            body = {"page": page, "session": f"s{rng.randrange(1000)}", "clicks": [
                {"x": rng.random(), "y": rng.random(), "t": now} for _ in range(CLICKS_PER_POST)]}
            return "POST", "/clicks", json.dumps(body).encode(), {"page": page}
        if route == "hotspots":
            return "GET", f"/hotspots?page=drill-{rng.randrange(PAGES)}", None, {}
        item = rng.choice(["", *[f"/{i}" for i in range(1, 25)]])
        return "GET", f"/upstream/demo{item}", None, {}

    def one(self, conn: http.client.HTTPConnection, route: str, rng: random.Random,
            record: bool = True, page: str | None = None
            ) -> tuple[http.client.HTTPConnection, int, bytes]:
        method, path, body, meta = self.request(route, rng, page)
        phase, stage = self.phase, self.stage
        headers = {"Content-Type": "application/json"} if body is not None else {}
        started = time.monotonic()
        status, data, note = 0, b"", ""
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            note = type(exc).__name__
            conn.close()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            resp_headers = {}
        seconds = time.monotonic() - started
        kind, extra = ("bad", note) if status == 0 else classify(route, status, resp_headers,
                                                                  data)
        with self._lock:
            if route == "qr_create" and status == 201:
                self.created.append(json.loads(data)["id"])
            if route == "clicks":
                if status == 202:
                    self.clicks_accepted[meta["page"]] += json.loads(data)["accepted"]
                elif status == 503 and kind == "degraded":
                    self.clicks_accepted[meta["page"]] += json.loads(data).get("accepted", 0)
                elif status == 0:
                    self.clicks_unknown[meta["page"]] += CLICKS_PER_POST
            if record:
                self.samples.append(Sample(phase, stage, route, status, kind, started, seconds,
                                           extra or note))
        return conn, status, data

    def _run(self, i: int) -> None:
        rng = random.Random(self.rng_seed * 1000 + i)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        while not self._stop.is_set():
            conn, _, _ = self.one(conn, rng.choice(self.routes), rng)
        conn.close()

    def start(self) -> Traffic:
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)


# -- phases ------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    fault: Callable[[], None] | None
    resume: Callable[[], None] | None
    resumed_at: float | None = None
    fault_at: float | None = None


class RedisProbe:
    """PING to Redis every 50 ms from a thread of the bench (own connection, 3 s timeout):
    the slowest answer per phase and stage tells a stalled Redis (or machine) from the app."""

    def __init__(self, port: int, traffic: Traffic):
        self.port, self.traffic = port, traffic
        self.worst: dict[str, float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=3, socket_connect_timeout=3)
        while not self._stop.wait(0.05):
            key = f"{self.traffic.phase}/{self.traffic.stage}"
            started = time.monotonic()
            try:
                client.ping()
            except redis.RedisError:
                continue  # the drill's own fault
            ms = (time.monotonic() - started) * 1000
            self.worst[key] = max(self.worst[key], round(ms, 1))
        client.close()

    def start(self) -> RedisProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def run_phases(traffic: Traffic, phases: list[Phase], fault_s: float, after_s: float,
               observe: Callable[[str], None] = lambda phase: None) -> None:
    for phase in phases:
        traffic.set_phase(phase.name, "fault")
        phase.fault_at = time.monotonic()
        if phase.fault:
            phase.fault()
        time.sleep(fault_s)
        if phase.resume:
            phase.resume()
        phase.resumed_at = time.monotonic()
        traffic.set_phase(phase.name, "after")
        time.sleep(after_s)
        observe(phase.name)


def drill_phases(stack: Stack) -> list[Phase]:
    def restart(server: processes.Server) -> Callable[[], None]:
        return lambda: server.start(timeout=30)

    return [
        Phase("baseline", None, None),
        Phase("redis-hung", stack.redis.pause, stack.redis.resume),
        Phase("memcached-killed", stack.memcached[0].stop, restart(stack.memcached[0])),
        Phase("aws-hung", stack.moto.pause, stack.moto.resume),
        Phase("upstream-hung", stack.upstream.pause, stack.upstream.resume),
        Phase("redis-refused", stack.redis.stop, restart(stack.redis)),
    ]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def summarise(samples: list[Sample], phases: list[Phase]) -> list[dict]:
    """One row per (phase, stage, route)."""
    groups: dict[tuple, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.phase, s.stage, s.route)].append(s)
    by_name = {p.name: p for p in phases}
    rows = []
    for phase in phases:
        for stage in ("fault", "after"):
            for route, _ in Traffic.MIX:
                group = groups.get((phase.name, stage, route), [])
                if not group:
                    continue
                lat = [s.seconds for s in group]
                row = {"phase": phase.name, "stage": stage, "route": route, "n": len(group),
                       "status": dict(sorted(Counter(s.status for s in group).items())),
                       "kinds": dict(Counter(s.kind for s in group)),
                       "notes": dict(Counter(s.note for s in group if s.note)),
                       "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
                       "max_ms": max(lat) * 1000,
                       "over_2s": sum(x > SLOW for x in lat) / len(lat)}
                if stage == "after" and by_name[phase.name].resume is not None:
                    resumed = by_name[phase.name].resumed_at
                    done = [s.started + s.seconds - resumed for s in group
                            if s.kind == "normal" and s.started >= resumed]
                    row["recover_s"] = min(done) if done else None
                rows.append(row)
    return rows


# -- nothing accepted is lost ------------------------------------------------
def window_counts(base_url: str, pages: list[str]) -> dict[str, int]:
    out = {}
    for page in pages:
        conn = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
        conn.request("GET", f"/hotspots?page={page}")
        resp = conn.getresponse()
        body = resp.read()
        out[page] = json.loads(body)["window"]["clicks"] if resp.status == 200 else 0
        conn.close()
    return out


def wait_counts(base_url: str, expected: Counter, timeout: float) -> dict[str, int]:
    """The pages' window counts once they reach `expected`, or as they are after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        counts = window_counts(base_url, sorted(expected))
        if all(counts[p] >= n for p, n in expected.items()) or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def wait_hotspots(base_url: str, pages: list[str], timeout: float = 30.0) -> None:
    """Until every page has a window (the event runner delivered its first clicks)."""
    deadline = time.monotonic() + timeout
    while min(window_counts(base_url, pages).values()) == 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no hotspots window within {timeout}s for some of {pages}")
        time.sleep(0.25)


def replay_stream() -> dict:
    """A direct call to the consumer over every record of the click stream, in the
    event shape Lambda sends (the consumer skips what it applied already)."""
    from chalicelib.clients import get_aws_client
    from chalicelib.hotspots.wiring import get_consumer
    from chalicelib.settings import get_settings

    stream = get_settings().click_stream_name
    kinesis = get_aws_client("kinesis", background=True)
    total: Counter = Counter()
    desc = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
    for shard in desc["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=1000)
            records = page["Records"]
            if records:
                result = get_consumer().consume([{
                    "kinesis": {"partitionKey": r["PartitionKey"],
                                "sequenceNumber": r["SequenceNumber"],
                                "data": base64.b64encode(r["Data"]).decode(),
                                "approximateArrivalTimestamp":
                                    r["ApproximateArrivalTimestamp"].timestamp(),
                                "kinesisSchemaVersion": "1.0"},
                    "eventSource": "aws:kinesis",
                    "eventID": f"{shard['ShardId']}:{r['SequenceNumber']}",
                    "eventSourceARN": desc["StreamARN"]} for r in records])
                total.update({k: v for k, v in result.to_dict().items()
                              if isinstance(v, int)})
            if not records and page.get("MillisBehindLatest", 0) == 0:
                break
            it = page.get("NextShardIterator")
    return dict(total)


def qr_served(base_url: str, ids: list[str]) -> Counter:
    statuses: Counter = Counter()
    conn = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
    for qr_id in ids:
        conn.request("GET", f"/qr/{qr_id}", headers={"Accept": "*/*"})
        resp = conn.getresponse()
        resp.read()
        statuses[resp.status] += 1
    conn.close()
    return statuses


def redis_slowlog(port: int, top: int = 5) -> dict:
    """Redis's slowest commands (over 10 ms) and its latency monitor's stalls (over 50 ms)
    since the last call: what blocked every other client.  Both are reset."""
    import redis

    client = redis.Redis(port=port, decode_responses=True, socket_timeout=5)
    entries = client.slowlog_get(128)
    client.slowlog_reset()
    slow = sorted(((e["duration"] / 1000, str(e["command"])[:80]) for e in entries),
                  reverse=True)
    stalls = client.execute_command("LATENCY", "LATEST")
    client.execute_command("LATENCY", "RESET")
    client.close()
    return {"slowlog": [(round(ms, 1), cmd) for ms, cmd in slow[:top]],
            # event, unix time of the latest, its ms, the highest ms
            "latency": [(e[0], e[1], e[2], e[3]) for e in stalls]}


# The kernel's count of what makes a loopback connection wait a TCP retransmission timeout
# (1 s at first): a full accept queue drops the handshake (ListenOverflows), the SYN or the
# first data is sent again (TCPSynRetrans, TCPTimeouts).  Machine-wide, so a phase's delta
# says what every process on the machine met meanwhile, not only the stack's.
TCP_COUNTERS = ("ListenOverflows", "TCPSynRetrans", "TCPTimeouts")


def tcp_counters() -> dict[str, int]:
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:  # not Linux
        return {}
    ext = [line.split() for line in lines if line.startswith("TcpExt:")]
    if len(ext) < 2:
        return {}
    values = dict(zip(ext[0][1:], map(int, ext[1][1:]), strict=False))
    return {name: values.get(name, 0) for name in TCP_COUNTERS}


def failure_queue_messages() -> int:
    """Batches the event runner gave up on (its on-failure queue)."""
    from chalicelib.clients import get_aws_client
    from chalicelib.settings import get_settings

    sqs = get_aws_client("sqs", background=True)
    name = get_settings().kinesis_failure_queue
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except Exception:  # never created: nothing was skipped
        return 0
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


# -- setup and report --------------------------------------------------------
def warm_up(stack: Stack, traffic: Traffic, timeout: float = 90.0) -> None:
    """Wait for the leaderboard's first ingest; make the QR codes hits will ask for, the
    first clicks of every page, and fill the upstream cache."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
    deadline = time.monotonic() + timeout
    while True:
        conn.request("GET", "/leaderboard?window=all&n=10")
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        if resp.status == 200 and doc.get("items"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the leaderboard stayed empty: {resp.status} {doc}")
        time.sleep(0.5)
    for spec in traffic.hit_specs:
        conn.request("POST", "/qr", body=json.dumps(spec).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (200, 201), resp.status
    rng = random.Random(1)
    for page in range(PAGES):
        conn, _, _ = traffic.one(conn, "clicks", rng, record=False, page=f"drill-{page}")
    wait_hotspots(stack.url, [f"drill-{i}" for i in range(PAGES)])
    for _ in range(30):
        conn, _, _ = traffic.one(conn, "upstream", rng, record=False)
    conn.close()


def fmt_status(status: dict) -> str:
    return " ".join(f"{k or 'none'}:{v}" for k, v in status.items())


def markdown(rows: list[dict], accounting: dict, args) -> str:
    """One line per phase and route: the fault's answers, their p99 against the same
    route's baseline p99, the share over 2 s, the recovery and the answers after it."""
    key = {(r["phase"], r["stage"], r["route"]): r for r in rows}
    lines = [f"{args.clients} client threads; per phase {args.fault:g} s of fault, then "
             f"{args.after:g} s after the resume.  Latencies in ms; `x base` the p99 over the "
             "route's baseline p99; `>2s` the share of answers over 2 s; `recover` seconds "
             "from the resume to the first normal answer of a request sent after it.", "",
             "| phase | route | n | statuses | normal/degraded/bad | p50 | p99 | max | x base "
             "| >2s | recover | after: statuses |",
             "|---|---|--:|---|---|--:|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        if r["stage"] != "fault":
            continue
        base = key.get(("baseline", "fault", r["route"]))
        after = key.get((r["phase"], "after", r["route"]), {})
        kinds = r["kinds"]
        rec = after.get("recover_s")
        ratio = r["p99_ms"] / base["p99_ms"] if base and base["p99_ms"] else float("nan")
        lines.append(
            f"| {r['phase']} | {r['route']} | {r['n']} | {fmt_status(r['status'])} "
            f"| {kinds.get('normal', 0)}/{kinds.get('degraded', 0)}/{kinds.get('bad', 0)} "
            f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} | {ratio:.1f} "
            f"| {r['over_2s']:.0%} | {'' if rec is None else f'{rec:.2f}'} "
            f"| {fmt_status(after.get('status', {}))} |")
    lines += ["", "Accounting: " + json.dumps(accounting)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--fault", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="write the rows and accounting here")
    parser.add_argument("--only", help="comma-separated phases (baseline always runs)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pulse-drills-") as tmp:
        stack = Stack(Path(tmp))
        try:
            started = time.monotonic()
            stack.start()
            print(f"stack up in {time.monotonic() - started:.1f}s at {stack.url}",
                  file=sys.stderr)
            hit_specs = [{"url": f"https://drill.example/hit/{i}", "format": "png"}
                         for i in range(10)]
            traffic = Traffic(stack.url, args.clients, hit_specs)
            warm_up(stack, traffic)
            phases = drill_phases(stack)
            if args.only:
                keep = set(args.only.split(",")) | {"baseline"}
                phases = [p for p in phases if p.name in keep]
            stalls: dict[str, dict] = {}
            tcp: dict[str, dict] = {}
            tcp_seen = [tcp_counters()]

            def observe(name: str) -> None:
                stalls[name] = redis_slowlog(stack.redis.port)
                now = tcp_counters()
                tcp[name] = {k: now[k] - tcp_seen[0].get(k, 0) for k in now}
                tcp_seen[0] = now

            probe = RedisProbe(stack.redis.port, traffic).start()
            traffic.start()
            try:
                run_phases(traffic, phases, args.fault, args.after, observe=observe)
            finally:
                traffic.stop()
                probe.stop()
            rows = summarise(traffic.samples, phases)

            expected = +traffic.clicks_accepted
            runner_counts = wait_counts(stack.url, expected, timeout=30)
            skipped = failure_queue_messages()
            replay = replay_stream()
            counts = window_counts(stack.url, sorted(expected))
            qr = qr_served(stack.url, traffic.created)
            accounting = {
                "clicks_accepted": sum(expected.values()),
                "clicks_without_answer": sum(traffic.clicks_unknown.values()),
                "counted_by_runner": sum(min(runner_counts[p], n) for p, n in expected.items()),
                "runner_batches_skipped": skipped,
                "replay": replay,
                "counted_after_replay": sum(min(counts[p], n) for p, n in expected.items()),
                "over_counted": sum(max(0, counts[p] - n - traffic.clicks_unknown[p])
                                    for p, n in expected.items()),
                "qr_created": len(traffic.created),
                "qr_served_after": dict(qr),
                "redis_stalls": {k: v for k, v in stalls.items() if any(v.values())},
                "redis_ping_worst_ms": dict(probe.worst),
                "tcp_retransmission_causes": tcp,
            }
        finally:
            stack.stop()
    print(markdown(rows, accounting, args))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "accounting": accounting}, indent=1))
    bad = sum(r["kinds"].get("bad", 0) for r in rows)
    lost = accounting["clicks_accepted"] - accounting["counted_after_replay"]
    return 1 if bad or lost or set(qr) - {200} else 0


if __name__ == "__main__":
    sys.exit(main())
