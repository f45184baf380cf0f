"""Secrets Manager values, cached for a while rather than for the life of a container.

A warm Lambda container can live for hours; caching a secret for its whole life
means a rotated value (new X token, new MemoryDB password) is never seen.  Each
value is kept for `max_age` seconds (SECRET_TTL_SECONDS) and can be dropped early by
a caller that just saw it rejected (`forget`), which is what the Redis credential
provider does on an authentication error.

The cache is handed the call that reads a secret (chalicelib.clients gives it the
Secrets Manager client's), so it depends on nothing else in the app.  Written here
rather than taken from aws-secretsmanager-caching or Powertools' parameters: a TTL
map under a lock is a few lines, and either library would add a package (and import
time) to every cold start for that.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SecretCache:
    """secret id -> value, each read again through `fetch` when older than `max_age`."""

    def __init__(self, fetch: Callable[[str], str], max_age: float):
        self._fetch = fetch
        self.max_age = max_age
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, str]] = {}  # secret id -> (fetched at, value)

    def get(self, secret_id: str, *, max_age: float | None = None,
            clock: Callable[[], float] = time.monotonic) -> str:
        """The secret's value, fetched again when older than `max_age` seconds."""
        max_age = self.max_age if max_age is None else max_age
        with self._lock:
            cached = self._cache.get(secret_id)
            if cached and clock() - cached[0] < max_age:
                return cached[1]
        value = self._fetch(secret_id)  # outside the lock: a slow call must not block others
        with self._lock:
            self._cache[secret_id] = (clock(), value)
        return value

    def forget(self, secret_id: str) -> None:
        """Drop one cached value: the next get reads it from Secrets Manager."""
        with self._lock:
            self._cache.pop(secret_id, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
