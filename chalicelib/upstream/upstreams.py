"""The upstream APIs behind the cache: the allow-list (UPSTREAMS) and the HTTP fetch.

UPSTREAMS is JSON, one entry per name:

    {"employees": {"url": "https://dummy.restapiexample.com/api/v1/employees",
                   "item_url": "https://dummy.restapiexample.com/api/v1/employee/{item}",
                   "ttl": 300, "timeout": 1.2, "negative_ttl": 60, "stale_ttl": 3600,
                   "item_pattern": "[0-9]{1,9}", "calls_per_second": 20,
                   "breaker_failures": 5, "breaker_seconds": 30}}

`url` answers GET /upstream/<name>; `item_url` (default: url + "/{item}") answers
GET /upstream/<name>/<item>, with the validated item percent-encoded into its
`{item}`.  The host always comes from here, never from the request (no SSRF).
`timeout` is the total deadline of one upstream call (connect, headers and body),
kept well inside the Lambda timeout and the API's 2 s answer budget.

What a caller can make us send a third party is bounded per upstream: an item must
match `item_pattern` (whole; default digits, at most 9) or it is a 400 before any
cache or upstream call; at most `calls_per_second` calls a second leave this container
(cache misses past it answer a stale copy or a 503 at once); and after
`breaker_failures` failures in a row (502/504, or a 5xx answer) the upstream is not
called for `breaker_seconds` (stale copy or 503 at once), then one call tries it again
(`UpstreamGuard`).

One urllib3 PoolManager per container keeps connections (and TLS sessions) to the
upstreams open across invocations; no retries: a retry would not fit the deadline.
"""
from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlsplit

from chalicelib.errors import PulseError, UpstreamFailed, UpstreamTimeout

DEFAULT_ITEM_PATTERN = "[0-9]{1,9}"

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
MAX_TIMEOUT = 10.0  # seconds; the Lambda timeout is 30 s, API Gateway's 29 s
MAX_STALE_TTL = 7 * 86400  # memcached reads an expiry over 30 days as a Unix time
# The largest body taken from an upstream: Lambda's response payload limit is 6 MB.
MAX_BODY_BYTES = 5 * 1024 * 1024
USER_AGENT = "pulse-cache/1"


class UpstreamConfigError(PulseError):
    """UPSTREAMS is not valid: an operator's mistake, reported as a 500 naming it."""


class UpstreamShed(UpstreamFailed):
    """The upstream is not called now and no stale copy is kept: `shed` says why, "rate"
    (this second's calls are used up: the route answers 429) or "circuit" (it keeps
    failing: 503).  Either at once, with Retry-After."""

    status_code = 503
    code = "ServiceUnavailable"


@dataclass(frozen=True)
class Upstream:
    name: str
    url: str
    item_url: str
    ttl: float  # seconds an answer is fresh
    timeout: float  # total deadline of one upstream call
    negative_ttl: float  # seconds a 404 is remembered
    stale_ttl: float  # seconds a copy is kept past its TTL, for serve-stale
    item_pattern: re.Pattern = re.compile(DEFAULT_ITEM_PATTERN)  # what an item must match
    calls_per_second: int = 20  # calls a second this container makes at most
    breaker_failures: int = 5  # failures in a row that open the circuit
    breaker_seconds: float = 30.0  # how long an open circuit refuses calls

    def url_for(self, item: str | None) -> str:
        if item is None:
            return self.url
        return self.item_url.replace("{item}", quote(item, safe=""))


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    content_type: str


def _seconds(entry: dict, key: str, default: float | None, maximum: float, where: str) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not 0 < value <= maximum:
        raise UpstreamConfigError(f"UPSTREAMS {where}: '{key}' must be a number of seconds "
                                  f"in (0, {maximum:g}], got {value!r}")
    return float(value)


def _http_url(value, where: str, key: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamConfigError(f"UPSTREAMS {where}: '{key}' must be an http(s) URL, "
                                  f"got {value!r}")
    return value


def _pattern(value, where: str) -> re.Pattern:
    try:
        if not isinstance(value, str) or not value:
            raise re.error("not a string")
        return re.compile(value)
    except re.error as exc:
        raise UpstreamConfigError(f"UPSTREAMS {where}: 'item_pattern' must be a regular "
                                  f"expression, got {value!r} ({exc})") from None


def _count(entry: dict, key: str, default: int, where: str) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise UpstreamConfigError(f"UPSTREAMS {where}: '{key}' must be an integer in "
                                  f"[1, 10000], got {value!r}")
    return value


def parse_upstreams(raw: str) -> dict[str, Upstream]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UpstreamConfigError(f"UPSTREAMS is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UpstreamConfigError("UPSTREAMS must be a JSON object of name -> settings")
    upstreams = {}
    for name, entry in data.items():
        where = repr(name)
        if not NAME_RE.fullmatch(name) or not isinstance(entry, dict):
            raise UpstreamConfigError(f"UPSTREAMS {where}: names are [a-z0-9_-] (at most 40) "
                                      "and each entry an object")
        url = _http_url(entry.get("url"), where, "url")
        item_url = _http_url(entry.get("item_url", url.rstrip("/") + "/{item}"),
                             where, "item_url")
        if item_url.count("{item}") != 1 or "{item}" not in urlsplit(item_url).path:
            raise UpstreamConfigError(f"UPSTREAMS {where}: 'item_url' needs one '{{item}}' "
                                      "in its path")
        ttl = _seconds(entry, "ttl", 60, MAX_STALE_TTL, where)
        upstreams[name] = Upstream(
            name=name, url=url, item_url=item_url, ttl=ttl,
            timeout=_seconds(entry, "timeout", 1.0, MAX_TIMEOUT, where),
            negative_ttl=_seconds(entry, "negative_ttl", min(ttl, 30), MAX_STALE_TTL, where),
            stale_ttl=_seconds(entry, "stale_ttl", 3600, MAX_STALE_TTL, where),
            item_pattern=_pattern(entry.get("item_pattern", DEFAULT_ITEM_PATTERN), where),
            calls_per_second=_count(entry, "calls_per_second", 20, where),
            breaker_failures=_count(entry, "breaker_failures", 5, where),
            breaker_seconds=_seconds(entry, "breaker_seconds", 30, 3600, where),
        )
    return upstreams


@lru_cache(maxsize=4)
def configured_upstreams(raw: str) -> dict[str, Upstream]:
    """The parsed allow-list, once per value of UPSTREAMS."""
    return parse_upstreams(raw)


class UpstreamGuard:
    """One upstream's call budget and circuit breaker, in this container (thread-safe).

    `admit()` before a call raises UpstreamShed when the second's `calls_per_second`
    are used up (shed="rate") or the circuit is open (shed="circuit"); `succeeded()` /
    `failed()` after it.  Open after `breaker_failures` failures in a row; after
    `breaker_seconds`, one call is let through (half-open): its success closes the
    circuit, its failure opens it again."""

    def __init__(self, upstream: Upstream, clock=time.monotonic):
        import threading

        self.upstream, self._clock, self._lock = upstream, clock, threading.Lock()
        self._second, self._calls = -1, 0
        self._failures, self._open_until, self._probing = 0, 0.0, False

    def admit(self) -> None:
        now = self._clock()
        up = self.upstream
        with self._lock:
            if self._failures >= up.breaker_failures:
                if now < self._open_until or self._probing:
                    raise UpstreamShed(
                        f"upstream {up.name!r} failed {self._failures} times in a row: "
                        f"not called for {up.breaker_seconds:g}s", upstream=up.name,
                        shed="circuit")
                self._probing = True  # half-open: this one call tries it again
            second = int(now)
            if second != self._second:
                self._second, self._calls = second, 0
            if self._calls >= up.calls_per_second:
                self._probing = False
                raise UpstreamShed(f"upstream {up.name!r} is called at most "
                                   f"{up.calls_per_second} times a second; retry after 1 s",
                                   upstream=up.name, shed="rate")
            self._calls += 1

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._probing = 0, False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if self._failures >= self.upstream.breaker_failures:
                self._open_until = self._clock() + self.upstream.breaker_seconds


@lru_cache(maxsize=64)
def guard_for(upstream: Upstream) -> UpstreamGuard:
    """The container's guard of one upstream (a changed UPSTREAMS entry gets a new one)."""
    return UpstreamGuard(upstream)


@lru_cache(maxsize=1)
def get_pool():
    """One PoolManager per container: kept-alive connections to every upstream."""
    import urllib3

    return urllib3.PoolManager(num_pools=8, maxsize=10, block=False, retries=False)


class UpstreamClient:
    """GETs one upstream URL within a total deadline; answers Fetched or raises 502/504."""

    def __init__(self, pool=None, connect_timeout: float = 0.5,
                 max_body_bytes: int = MAX_BODY_BYTES):
        self._pool = pool or get_pool()
        self._connect_timeout = connect_timeout
        self._max_body = max_body_bytes

    def fetch(self, upstream: Upstream, url: str, deadline: float) -> Fetched:
        """GET one of the upstream's URLs (Upstream.url_for); `deadline` is a
        time.monotonic() value."""
        import urllib3

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout(upstream)
        with self._failures(upstream, "could not be reached"):
            resp = self._pool.request(
                "GET", url, redirect=False, preload_content=False,
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                timeout=urllib3.Timeout(total=remaining,
                                        connect=min(self._connect_timeout, remaining)))
        try:
            with self._failures(upstream, "broke off its answer"):
                body = self._read_body(resp, upstream, deadline)
        finally:
            resp.release_conn()
        return Fetched(resp.status, body, resp.headers.get("Content-Type", "application/json"))

    @contextmanager
    def _failures(self, upstream: Upstream, what: str):
        """urllib3's errors as our 504 (a timeout) or 502 (any other failure)."""
        from urllib3.exceptions import HTTPError, TimeoutError

        try:
            yield
        except TimeoutError:
            raise self._timeout(upstream) from None
        except HTTPError as exc:
            raise UpstreamFailed(f"upstream {upstream.name!r} {what} ({type(exc).__name__})",
                                 upstream=upstream.name) from None

    def _read_body(self, resp, upstream: Upstream, deadline: float) -> bytes:
        # The read timeout bounds each socket read, not the whole body: a server
        # that trickles bytes could hold us past any timeout.  read1 returns after
        # one read, so the deadline is checked between reads, and each read may
        # wait only for what is left of it.
        chunks, size = [], 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                resp.close()  # the connection is mid-body: never reuse it
                raise self._timeout(upstream)
            sock = getattr(resp.connection, "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            chunk = resp.read1(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_body:
                resp.close()
                raise UpstreamFailed(f"upstream {upstream.name!r} answered more than "
                                     f"{self._max_body} bytes", upstream=upstream.name)
            chunks.append(chunk)

    @staticmethod
    def _timeout(upstream: Upstream) -> UpstreamTimeout:
        return UpstreamTimeout(f"upstream {upstream.name!r} did not answer within "
                               f"{upstream.timeout:g}s", upstream=upstream.name)
