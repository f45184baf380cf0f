"""Secrets Manager values, cached for a while rather than for the life of a container.

A warm Lambda container can live for hours; caching a secret for its whole life
means a rotated value (new X token, new MemoryDB password) is never seen.  Each
value is kept for `SECRET_TTL_SECONDS` (settings) and can be dropped early by a
caller that just saw it rejected (`forget_secret`), which is what the Redis
credential provider does on an authentication error.

Written here rather than taken from aws-secretsmanager-caching or Powertools'
parameters: a TTL map under a lock is a few lines, and either library would add
a package (and import time) to every cold start for that.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

_lock = threading.Lock()
_cache: dict[str, tuple[float, str]] = {}  # secret id -> (fetched at, value)


def _fetch(secret_id: str) -> str:
    from chalicelib.clients import get_aws_client

    return get_aws_client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


def get_secret(secret_id: str, *, max_age: float | None = None,
               clock: Callable[[], float] = time.monotonic) -> str:
    """The secret's value, fetched again when older than `max_age` seconds."""
    if max_age is None:
        from chalicelib.settings import get_settings

        max_age = get_settings().secret_ttl_seconds
    with _lock:
        cached = _cache.get(secret_id)
        if cached and clock() - cached[0] < max_age:
            return cached[1]
    value = _fetch(secret_id)  # outside the lock: a slow call must not block other secrets
    with _lock:
        _cache[secret_id] = (clock(), value)
    return value


def forget_secret(secret_id: str) -> None:
    """Drop one cached value: the next get_secret reads it from Secrets Manager."""
    with _lock:
        _cache.pop(secret_id, None)


def forget_secrets() -> None:
    with _lock:
        _cache.clear()
