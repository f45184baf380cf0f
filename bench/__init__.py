"""Benchmarks (python -m bench.<name>); figures go to BENCHMARKS.md."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def bench_redis() -> Iterator:
    """A redis-server of its own on a free port, in a temporary folder removed after:
    yields a client (decode_responses=True)."""
    import redis

    from local import processes

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    server = processes.redis_server(processes.free_port(), workdir).start()
    client = redis.Redis(port=server.port, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
