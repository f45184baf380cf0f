"""Benchmarks (python -m bench.<name>); figures go to BENCHMARKS.md."""
from __future__ import annotations

import contextlib
import os
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


def use_stack_env(**ports) -> None:
    """Point this process's app at the bench's own servers the way `make run` points it
    at the local stack (local.stack.stack_env: ports by keyword, the rest its defaults),
    with the developer's AWS profile and session kept out of every call."""
    from local import stack

    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        os.environ.pop(key, None)
    os.environ.update(stack.stack_env(**ports))
