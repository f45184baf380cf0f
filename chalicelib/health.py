"""Dependency checks for GET /health (ok/degraded and which dependency, for anyone) and
GET /health/details (each check's detail, for the team), answered within a deadline.

Each check runs on a thread of a small shared pool; a dependency that hangs
is reported as timed out instead of holding the request.  The pool's threads
are not daemonic: a hung check keeps its thread only until its client gives up
(Redis: PULSE_READ_TIMEOUT; AWS: 2 attempts of PULSE_AWS_READ_TIMEOUT, ~1 s, so a
hung AWS is reported as the error it raised, within the deadline), then the
thread is reused.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from chalicelib import clients
from chalicelib.settings import get_settings

DEADLINE_SECONDS = 1.5
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


@dataclass
class HealthReport:
    ok: bool
    dependencies: dict

    def to_body(self) -> dict:
        """The details (GET /health/details, the team's): each check's detail (table name,
        host:ports, exception text) and time."""
        failing = sorted(name for name, d in self.dependencies.items() if d["status"] != "ok")
        return {"status": "ok" if self.ok else "degraded", "failing": failing,
                "dependencies": self.dependencies}

    def to_public_body(self) -> dict:
        """What anyone may know (GET /health): ok or degraded, and which dependency fails;
        no names, addresses or error text of our infrastructure."""
        body = self.to_body()
        body["dependencies"] = {name: {"status": d["status"]}
                                for name, d in self.dependencies.items()}
        return body


def check_redis() -> str:
    clients.get_redis().ping()
    return "PONG"


def check_memcached() -> str:
    nodes = clients.get_memcached().clients
    if not nodes:  # auto discovery has not found any (yet): every request bypasses the cache
        raise ConnectionError("no memcached node known (auto discovery found none)")
    down = []
    for name, node in nodes.items():
        try:
            node.version()
        except Exception as exc:  # each node is reported on its own
            down.append(f"{name}: {type(exc).__name__}")
    if down:
        raise ConnectionError("; ".join(down))
    return f"{len(nodes)} node(s)"


def check_aws() -> str:
    table = get_settings().qr_table
    clients.get_aws_client("dynamodb").describe_table(TableName=table)
    return f"dynamodb table {table}"


DEFAULT_CHECKS: Mapping[str, Callable[[], str]] = {
    "redis": check_redis,
    "memcached": check_memcached,
    "aws": check_aws,
}


def _timed(check: Callable[[], str]) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        status = "ok"
    except Exception as exc:
        status, detail = "error", f"{type(exc).__name__}: {exc}"[:300]
    return {"status": status, "detail": detail,
            "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_all(checks: Mapping[str, Callable[[], str]] = DEFAULT_CHECKS,
              deadline: float = DEADLINE_SECONDS) -> HealthReport:
    futures = {name: _executor.submit(_timed, check) for name, check in checks.items()}
    wait(futures.values(), timeout=deadline)
    deps = {}
    for name, future in futures.items():
        if future.done():
            deps[name] = future.result()
        else:
            deps[name] = {"status": "timeout", "detail": f"no answer within {deadline}s",
                          "ms": deadline * 1000}
    return HealthReport(ok=all(d["status"] == "ok" for d in deps.values()), dependencies=deps)
