"""Rate limits per client address and route class, counted in Redis.

Each route belongs to one class (`@limit("public-read")` in app.py, read by the `http`
middleware `middleware_for(app)`); each class has a quota of requests per window and
client address (RATE_LIMITS, by stage).  The client address is API Gateway's
`requestContext.identity.sourceIp` (local/chalice_local.py fills it with the peer
address), never a header the caller writes such as X-Forwarded-For.

One fixed window per client and class: `ratelimit.lua` counts it in one key,
`pulse:rl:{<class>:<client>}`, whose hash tag keeps it on one cluster slot and whose TTL
is the window; `<client>` is a keyed hash of the address (RATE_LIMIT_SALT), so no
address is stored.  Over the quota the answer is a 429 in the one error shape with
`Retry-After`; every limited answer carries the `RateLimit-Policy` and `RateLimit`
fields of draft-ietf-httpapi-ratelimit-headers-10 (`public-read;q=120;w=60`,
`public-read;r=17;t=42`).

A read-only view (`@limit(..., read_only=True)`: it only reads, cheaply, and changes
nothing) runs while its request is being counted: the count is sent, the view runs, then
the count's answer is read, and over the quota the view's answer is dropped for the 429.
The Redis round trip then overlaps the view's own work instead of adding to it.  A client
refused on this container is counted before its view again until its window ends, so a
flood's refused requests do not run views.  Every other view runs only once its request
is counted.

Redis down, slow or refusing: the request passes unlimited (API Gateway's stage
throttling and the WAF still hold in AWS) and a warning is logged.  The limiter's client
waits at most RATE_LIMIT_TIMEOUT for Redis, and after a failure skips Redis for
RATE_LIMIT_SKIP_SECONDS, so a hung Redis costs one request that timeout, not every one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from chalicelib.settings import Settings, SettingsError, get_settings

log = logging.getLogger("pulse.ratelimit")

CLASSES = ("public-read", "public-write", "team", "pages")
# Requests per window (seconds) per client address, on every stage but local.
DEFAULT_POLICIES = {"public-read": (120, 60), "public-write": (60, 60), "team": (30, 60),
                    "pages": (300, 60)}
# The local stage counts the same way with quotas this many times higher, so the test
# suite and a developer's pages never meet them (tests that do set RATE_LIMITS).
LOCAL_FACTOR = 100
SCRIPT = Path(__file__).with_name("ratelimit.lua")
SAFE_METHODS = ("GET", "HEAD")
# Clients refused on this container, remembered until their window ends (at most this many).
REFUSED_CAP = 1024


@dataclass(frozen=True)
class Policy:
    name: str
    quota: int  # requests per window; 0: not limited
    window: int  # seconds

    def header(self) -> str:
        return f"{self.name};q={self.quota};w={self.window}"


def limit(route_class: str, *, read_only: bool = False):
    """Put a view in a rate-limit class (one of CLASSES); the middleware reads it.
    read_only: the view only reads, cheaply, so it may run while its request is counted
    (see the module); not for a view that calls a third party or counts anything."""
    if route_class not in CLASSES:
        raise ValueError(f"unknown rate-limit class {route_class!r}: one of {CLASSES}")

    def mark(view):
        view.rate_class = route_class
        view.rate_read_only = read_only
        return view

    return mark


def policies(settings: Settings) -> dict[str, Policy]:
    """Each class's policy: RATE_LIMITS (JSON `{"class": {"quota": N, "window": S}}`, the
    classes it names) over the stage's defaults.  A SettingsError names what is wrong."""
    factor = LOCAL_FACTOR if settings.stage == "local" else 1
    result = {name: Policy(name, quota * factor, window)
              for name, (quota, window) in DEFAULT_POLICIES.items()}
    raw = settings.rate_limits.strip()
    if not raw:
        return result
    try:
        given = json.loads(raw)
    except ValueError:
        raise SettingsError(f"RATE_LIMITS must be a JSON object, got {raw[:40]!r}") from None
    if not isinstance(given, dict):
        raise SettingsError("RATE_LIMITS must be a JSON object of classes")
    for name, entry in given.items():
        if name not in CLASSES:
            raise SettingsError(f"RATE_LIMITS: unknown class {name!r} (one of {CLASSES})")
        ok = isinstance(entry, dict) and set(entry) <= {"quota", "window"} and all(
            isinstance(entry.get(k, 1), int) and not isinstance(entry.get(k, 1), bool)
            for k in ("quota", "window")) and entry.get("quota", 1) >= 0 and \
            entry.get("window", 1) >= 1
        if not ok:
            raise SettingsError(f"RATE_LIMITS[{name!r}] must be {{\"quota\": N >= 0, "
                                f"\"window\": seconds >= 1}}, got {json.dumps(entry)[:60]}")
        default = result[name]
        result[name] = Policy(name, entry.get("quota", default.quota),
                              entry.get("window", default.window))
    return result


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: Policy
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        fields = {"RateLimit-Policy": self.policy.header(),
                  "RateLimit": f"{self.policy.name};r={self.remaining};t={self.reset}"}
        if not self.allowed:
            fields["Retry-After"] = str(self.reset)
        return fields


class Limiter:
    """Counts requests in Redis; passes everything while Redis fails (see the module)."""

    def __init__(self, settings: Settings, redis_factory=None, clock=time.monotonic):
        self.settings = settings
        self.policies = policies(settings)
        self._redis_factory = redis_factory or self._make_redis
        self._clock = clock
        self._lock = threading.Lock()
        self._script = None
        self._skip_until = 0.0
        self._refused: dict[str, float] = {}  # key -> end of its window (monotonic)
        # BLAKE2b takes a key of at most 64 bytes; built once, not per request
        self._token_key = ("pulse-ratelimit:" + settings.rate_limit_salt).encode()[:64]

    def _make_redis(self):
        from chalicelib.clients import make_redis

        t = self.settings.rate_limit_timeout
        return make_redis(read_timeout=t, connect_timeout=t)

    def _counter(self):
        with self._lock:
            if self._script is None:
                self._script = self._redis_factory().register_script(SCRIPT.read_text())
            return self._script

    def client_token(self, address: str) -> str:
        """The name of a client address in Redis: a keyed BLAKE2b hash, not the address."""
        return hashlib.blake2b(address.encode(), key=self._token_key,
                               digest_size=12).hexdigest()

    def _key(self, route_class: str, address: str) -> str:
        return f"pulse:rl:{{{route_class}:{self.client_token(address)}}}"

    def _policy(self, route_class: str) -> Policy | None:
        """The class's policy while it is limited and Redis is not being skipped."""
        policy = self.policies.get(route_class)
        if policy is None or policy.quota == 0 or self._clock() < self._skip_until:
            return None
        return policy

    def hit(self, route_class: str, address: str) -> Decision | None:
        """Count one request; None when the class is not limited or Redis failed."""
        policy = self._policy(route_class)
        if policy is None:
            return None
        key = self._key(route_class, address)
        try:
            count, ttl_ms = self._counter()(keys=[key], args=[policy.window * 1000])
        except Exception as exc:  # Redis down, hung, refusing, or a cluster failing over
            self._failed(exc)
            return None
        return self._decide(policy, key, count, ttl_ms)

    def send(self, route_class: str, address: str) -> Counting | None:
        """Send one request's count without waiting for its answer (Counting.decision()
        reads it).  None when the request is to be counted by hit() instead: the class
        is not limited, Redis is being skipped, the client was refused here in its
        current window, or the count could not be sent."""
        policy = self._policy(route_class)
        if policy is None:
            return None
        key = self._key(route_class, address)
        refused_until = self._refused.get(key)
        if refused_until is not None and self._clock() < refused_until:
            return None
        pool = connection = None
        try:
            script = self._counter()
            client = script.registered_client
            if hasattr(client, "get_node_from_key"):  # a cluster: the pool of the key's node
                node = client.get_node_from_key(key)
                pool = client.get_redis_connection(node).connection_pool
            else:
                pool = client.connection_pool
            connection = pool.get_connection()
            connection.send_command("EVALSHA", script.sha, 1, key, policy.window * 1000)
        except Exception:  # hit() retries, and names the failure if it persists
            if connection is not None:
                connection.disconnect()
                pool.release(connection)
            return None
        return Counting(self, route_class, address, policy, key, pool, connection)

    def _decide(self, policy: Policy, key: str, count, ttl_ms) -> Decision:
        count = int(count)
        reset = max(1, math.ceil(int(ttl_ms) / 1000))
        if count > policy.quota:
            with self._lock:
                if len(self._refused) >= REFUSED_CAP:
                    now = self._clock()
                    self._refused = {k: t for k, t in self._refused.items() if t > now}
                    while len(self._refused) >= REFUSED_CAP:  # the oldest go first
                        del self._refused[next(iter(self._refused))]
                self._refused.pop(key, None)  # to the end: the oldest stay first
                self._refused[key] = self._clock() + reset
        return Decision(count <= policy.quota, policy, max(0, policy.quota - count), reset)

    def _failed(self, exc: Exception) -> None:
        self._skip_until = self._clock() + self.settings.rate_limit_skip_seconds
        log.warning("rate limiter: redis failed (%s: %s); requests pass unlimited "
                    "for %ss", type(exc).__name__, str(exc)[:120],
                    self.settings.rate_limit_skip_seconds)


class Counting:
    """One request's count, sent to Redis (Limiter.send), its answer not yet read."""

    def __init__(self, limiter: Limiter, route_class: str, address: str, policy: Policy,
                 key: str, pool, connection):
        self._limiter, self._class, self._address = limiter, route_class, address
        self._policy, self._key = policy, key
        self._pool, self._connection = pool, connection

    def decision(self) -> Decision | None:
        """The count's answer, as Limiter.hit gives it."""
        from redis.exceptions import (
            AskError,
            ConnectionError,
            MovedError,
            NoScriptError,
            TryAgainError,
        )

        connection, self._connection = self._connection, None
        try:
            count, ttl_ms = connection.read_response()
        except (NoScriptError, MovedError, AskError, TryAgainError, ConnectionError):
            # Not run (a Redis that restarted and lost the script, a slot that moved) or
            # a connection the server had closed: hit() loads the script, follows the
            # cluster and retries the connection.
            connection.disconnect()
            return self._limiter.hit(self._class, self._address)
        except Exception as exc:  # a timeout: whether it was counted is unknown
            connection.disconnect()
            self._limiter._failed(exc)
            return None
        finally:
            self._pool.release(connection)
        return self._limiter._decide(self._policy, self._key, count, ttl_ms)


_current: list[Limiter] = []  # this container's limiter, rebuilt when the settings change


def get_limiter() -> Limiter:
    settings = get_settings()
    if not _current or _current[0].settings is not settings:
        _current[:] = [Limiter(settings)]
    return _current[0]


def route_marks(app, request) -> tuple[str | None, bool]:
    """The class of the view a request goes to (any method's, for a method the route
    lacks; None for a path no route has) and whether that view is read-only."""
    methods = app.routes.get(request.path) or {}
    entry = methods.get(request.method) or next(iter(methods.values()), None)
    view = entry.view_function if entry else None
    return getattr(view, "rate_class", None), getattr(view, "rate_read_only", False)


def client_address(request) -> str:
    return (request.context.get("identity") or {}).get("sourceIp") or "unknown"


def too_many_requests(route_class: str, decision: Decision):
    from chalicelib import telemetry
    from chalicelib.http import json_response

    telemetry.count_rate_limited(route_class)
    body = {"error": "TooManyRequests",
            "message": f"more than {decision.policy.quota} requests in "
                       f"{decision.policy.window} s from this address to "
                       f"{decision.policy.name} routes; retry after {decision.reset} s"}
    return json_response(body, 429, headers=decision.headers())


def middleware_for(app):
    """The `http` middleware that limits every route by its class."""

    def rate_limit(event, get_response):
        route_class, read_only = route_marks(app, event)
        if route_class is None:
            return get_response(event)
        limiter = get_limiter()
        address = client_address(event)
        counting = limiter.send(route_class, address) \
            if read_only and event.method in SAFE_METHODS else None
        if counting is None:
            decision = limiter.hit(route_class, address)
            if decision is not None and not decision.allowed:
                return too_many_requests(route_class, decision)
            response = get_response(event)
        else:
            try:
                response = get_response(event)  # while the count travels
            finally:
                decision = counting.decision()
            if decision is not None and not decision.allowed:
                return too_many_requests(route_class, decision)  # the view's answer dropped
        if decision is not None:
            for name, value in decision.headers().items():
                # a view's own policy (an upstream's call budget) stays: fields are lists
                own = response.headers.get(name)
                response.headers[name] = f"{own}, {value}" if own else value
        return response

    return rate_limit
