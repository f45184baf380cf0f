"""What the /upstream routes answer: check the name and item, read through the cache,
shape the answer with its X-Cache and Age headers."""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

from chalicelib import telemetry
from chalicelib.errors import InvalidInput, NotFound, UpstreamFailed, UpstreamTimeout
from chalicelib.http import json_response
from chalicelib.upstream import wiring

# One path segment of unreserved characters (RFC 3986), not "." or "..": it can only
# ever name something below the upstream's own URL.
MAX_ITEM_LENGTH = 100
ITEM_RE = re.compile(rf"(?!\.{{1,2}}$)[A-Za-z0-9._~-]{{1,{MAX_ITEM_LENGTH}}}")
# Only JSON is passed through: anything else (text/html above all) served from our
# domain would be an upstream's page under our name.
JSON_TYPE = "application/json"


def is_json_type(content_type: str) -> bool:
    """application/json or a structured-syntax JSON type (application/problem+json)."""
    return content_type == JSON_TYPE or (content_type.startswith("application/")
                                         and content_type.endswith("+json"))


def upstream_named(name: str):
    upstreams = wiring.get_upstreams()
    if name not in upstreams:
        raise NotFound(f"no upstream API is named {name[:40]!r}; known: "
                       f"{', '.join(sorted(upstreams))}", upstream=name[:40])
    return upstreams[name]


def parse_item(raw: str | None, upstream=None) -> str | None:
    """The item, if one path segment and (given the upstream) matching its item_pattern."""
    if raw is None:
        return None
    if not ITEM_RE.fullmatch(raw):
        raise InvalidInput(f"'item' must be one path segment of letters, digits and . _ ~ - "
                           f"(at most {MAX_ITEM_LENGTH}), got {raw[:40]!r}", field="item")
    if upstream is not None and not upstream.item_pattern.fullmatch(raw):
        raise InvalidInput(f"'item' of upstream {upstream.name!r} must match "
                           f"{upstream.item_pattern.pattern}, got {raw[:40]!r}", field="item")
    return raw


def url_key(upstream, url: str) -> str:
    """The cache key of one of the upstream's URLs."""
    # The URL's digest, not the item itself: any item fits memcached's key rules,
    # and a changed URL in UPSTREAMS never answers from the old URL's entries.
    digest = hashlib.blake2b(url.encode(), digest_size=12).hexdigest()
    return f"pulse:up:{upstream.name}:{digest}"


def cache_key(upstream, item: str | None) -> str:
    """The cache key that holds the upstream's list (item None) or one item."""
    return url_key(upstream, upstream.url_for(item))


def load_from(upstream, url: str, client=None):
    """The cache's load function for one upstream URL: 200 -> value, 404/410 -> None."""
    from chalicelib.cache.readthrough import Loaded

    def load(deadline: float) -> Loaded:
        from chalicelib.upstream.upstreams import guard_for

        guard = guard_for(upstream)
        guard.admit()  # the call budget and the circuit breaker: UpstreamShed, a 503
        try:
            fetched = (client or wiring.get_upstream_client()).fetch(upstream, url, deadline)
        except (UpstreamFailed, UpstreamTimeout):
            guard.failed()
            telemetry.count("cache", "CacheUpstreamErrors")
            raise
        if fetched.status >= 500:
            guard.failed()
        else:
            guard.succeeded()
        if fetched.status in (404, 410):
            return Loaded(None)
        if fetched.status != 200:
            telemetry.count("cache", "CacheUpstreamErrors")
            raise UpstreamFailed(f"upstream {upstream.name!r} answered HTTP {fetched.status}",
                                 upstream=upstream.name, upstream_status=fetched.status)
        content_type = fetched.content_type.split(";")[0].strip().lower()
        if not is_json_type(content_type):
            raise UpstreamFailed(f"upstream {upstream.name!r} answered "
                                 f"{(content_type or 'no content type')[:80]}, not JSON",
                                 upstream=upstream.name, content_type=content_type[:80])
        try:
            json.loads(fetched.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise UpstreamFailed(f"upstream {upstream.name!r} answered {content_type} that is "
                                 "not UTF-8 JSON", upstream=upstream.name,
                                 content_type=content_type) from None
        return Loaded(fetched.body, content_type)

    return load


@lru_cache(maxsize=64)
def policy_of(upstream):
    from chalicelib.cache.readthrough import Policy

    return Policy(ttl=upstream.ttl, negative_ttl=upstream.negative_ttl,
                  stale_ttl=upstream.stale_ttl, timeout=upstream.timeout)


def proxy(name: str, item: str | None = None, cache=None, client=None):
    """GET one upstream URL through the cache: the upstream's body, or a 404 JSON."""
    upstream = upstream_named(name)
    item = parse_item(item, upstream)
    url = upstream.url_for(item)
    try:
        result = (cache or wiring.get_cache()).get(url_key(upstream, url),
                                                   load_from(upstream, url, client),
                                                   policy_of(upstream))
    except UpstreamFailed as exc:  # also as the cache keeps it for 1-2 s (a 502 there)
        shed = exc.details.get("shed")
        if shed == "rate":
            return _calls_used_up(upstream, exc.message)
        if shed == "circuit":
            from chalicelib.upstream.upstreams import UpstreamShed

            raise UpstreamShed(exc.message, **exc.details) from None
        raise
    telemetry.count("cache", f"Cache{str(result.status).title()}")  # CacheHit, CacheMiss, ...
    headers = {"X-Cache": str(result.status), "Age": str(result.age)}
    if result.entry.value is None:
        what = f"no item {item!r}" if item is not None else "nothing"
        err = NotFound(f"upstream {name!r} has {what}", upstream=name, item=item)
        return json_response(err.to_body(), err.status_code, headers)
    from chalice import Response

    meta = result.entry.meta if is_json_type(str(result.entry.meta)) else JSON_TYPE
    return Response(body=result.entry.value.decode("utf-8"), status_code=200,
                    headers={"Content-Type": f"{meta}; charset=utf-8", **headers})


def _calls_used_up(upstream, message: str):
    """This second's upstream calls are used up: a 429 in the one error shape, with the
    RateLimit fields of the upstream's own policy (chalicelib.ratelimit's draft)."""
    policy = f"upstream-{upstream.name}"
    return json_response({"error": "TooManyRequests", "message": message,
                          "upstream": upstream.name}, 429,
                         headers={"Retry-After": "1",
                                  "RateLimit-Policy": f"{policy};q={upstream.calls_per_second};w=1",
                                  "RateLimit": f"{policy};r=0;t=1"})


def item_schema() -> dict:
    """An item as the routes check it: one path segment, and one of the configured upstreams'
    `item_pattern`s (the document cannot tie the pattern to the `name` beside it)."""
    from chalicelib import openapi as oa

    patterns = sorted({u.item_pattern.pattern for u in wiring.get_upstreams().values()})
    if not patterns:
        return {"type": "string", "pattern": oa.anchored(ITEM_RE.pattern)}
    return {"type": "string", "maxLength": MAX_ITEM_LENGTH,
            "pattern": oa.anchored("|".join(f"(?:{p})" for p in patterns))}


# What the examples name: tests/test_openapi.py configures `demo` as the demo upstream.
EXAMPLE_UPSTREAM = "demo"
EXAMPLE_ITEM = "7"


def openapi_part() -> dict:
    """The /upstream paths of the API contract (chalicelib.openapi)."""
    from chalicelib import openapi as oa

    headers = {"X-Cache": oa.header("HIT, MISS, STALE, ... (the read-through cache)"),
               "Age": oa.header("seconds since the answer was fetched",
                                {"type": "string", "pattern": "^[0-9]+$"})}
    answers = {
        "200": {"description": "the upstream's JSON answer, as it sent it",
                "headers": headers, "content": {oa.JSON: {"schema": {}}}},
        "400": oa.error(oa.BAD_REQUEST),
        "404": oa.error("no upstream of that name, or the upstream has no such item", headers),
        "429": oa.error("this second's calls to the upstream are used up (its "
                        "calls_per_second) and no copy is kept; retry after 1 s"),
        "502": oa.error("the upstream failed, or answered anything but JSON (the message "
                        "names its content type), and no stale copy is kept"),
        "503": oa.error(oa.UNAVAILABLE),
        "504": oa.error("the upstream did not answer in time and no stale copy is kept"),
    }
    name = oa.path("name", {"type": "string", "minLength": 1},
                   "an upstream API named in UPSTREAMS", EXAMPLE_UPSTREAM)
    return {"paths": {
        "/upstream/{name}": {"get": {
            "summary": "an upstream API's list, through the read-through cache",
            "tags": ["cache"], "parameters": [name], "responses": answers}},
        "/upstream/{name}/{item}": {"get": {
            "summary": "one item of an upstream API, through the read-through cache",
            "tags": ["cache"],
            "parameters": [
                name,
                oa.path("item", item_schema(),
                        "one path segment of unreserved characters, not . or .., that "
                        "matches the upstream's item_pattern", EXAMPLE_ITEM)],
            "responses": answers}},
        "/ui/cache": oa.page("the read-through cache page"),
    }}
