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


@dataclass(frozen=True)
class Policy:
    name: str
    quota: int  # requests per window; 0: not limited
    window: int  # seconds

    def header(self) -> str:
        return f"{self.name};q={self.quota};w={self.window}"


def limit(route_class: str):
    """Put a view in a rate-limit class (one of CLASSES); the middleware reads it."""
    if route_class not in CLASSES:
        raise ValueError(f"unknown rate-limit class {route_class!r}: one of {CLASSES}")

    def mark(view):
        view.rate_class = route_class
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

    def hit(self, route_class: str, address: str) -> Decision | None:
        """Count one request; None when the class is not limited or Redis failed."""
        policy = self.policies.get(route_class)
        if policy is None or policy.quota == 0 or self._clock() < self._skip_until:
            return None
        window_ms = policy.window * 1000
        key = f"pulse:rl:{{{route_class}:{self.client_token(address)}}}"
        try:
            count, ttl_ms = self._counter()(keys=[key], args=[window_ms])
        except Exception as exc:  # Redis down, hung, refusing, or a cluster failing over
            self._skip_until = self._clock() + self.settings.rate_limit_skip_seconds
            log.warning("rate limiter: redis failed (%s: %s); requests pass unlimited "
                        "for %ss", type(exc).__name__, str(exc)[:120],
                        self.settings.rate_limit_skip_seconds)
            return None
        reset = max(1, math.ceil(int(ttl_ms) / 1000))
        return Decision(int(count) <= policy.quota, policy,
                        max(0, policy.quota - int(count)), reset)


_current: list[Limiter] = []  # this container's limiter, rebuilt when the settings change


def get_limiter() -> Limiter:
    settings = get_settings()
    if not _current or _current[0].settings is not settings:
        _current[:] = [Limiter(settings)]
    return _current[0]


def route_class_of(app, request) -> str | None:
    """The class of the view a request goes to (any method's, for a method the route
    lacks); None for a path no route has."""
    methods = app.routes.get(request.path) or {}
    entry = methods.get(request.method) or next(iter(methods.values()), None)
    return getattr(entry.view_function, "rate_class", None) if entry else None


def client_address(request) -> str:
    return (request.context.get("identity") or {}).get("sourceIp") or "unknown"


def too_many_requests(decision: Decision):
    from chalicelib.http import json_response

    body = {"error": "TooManyRequests",
            "message": f"more than {decision.policy.quota} requests in "
                       f"{decision.policy.window} s from this address to "
                       f"{decision.policy.name} routes; retry after {decision.reset} s"}
    return json_response(body, 429, headers=decision.headers())


def middleware_for(app):
    """The `http` middleware that limits every route by its class."""

    def rate_limit(event, get_response):
        route_class = route_class_of(app, event)
        decision = get_limiter().hit(route_class, client_address(event)) \
            if route_class else None
        if decision is None:
            return get_response(event)
        if not decision.allowed:
            from chalicelib import telemetry

            telemetry.count_rate_limited(route_class)
            return too_many_requests(decision)
        response = get_response(event)
        for name, value in decision.headers().items():
            # a view's own policy (an upstream's call budget) stays: the fields are lists
            own = response.headers.get(name)
            response.headers[name] = f"{own}, {value}" if own else value
        return response

    return rate_limit
