"""GET /r/{code}: the code's item through memcached, the rules, the 302, the count.

The lookup is the shared read-through cache (chalicelib.cache) in front of DynamoDB's
GetItem, with one change to how copies are written: a copy a lookup loaded is stored
with memcached's `add` (only where no copy is), and a PATCH or DELETE writes its new
state with `set` once DynamoDB has it.  A lookup that read the old item just before
an edit can then never put the old target back over the edit's copy: every scan that
starts after an edit's answer reaches the new target.  A "not found" is not cached
(codes are created unseen, and a scan right after a creation must find it).

memcached down: lookups read DynamoDB (the component fails open) and edits cannot
write their copy; a copy stored before the outage is replaced at the latest when it
expires (QR_DYNAMIC_CACHE_SECONDS).
"""
from __future__ import annotations

import html
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.cache.readthrough import (
    CACHE_ERRORS,
    Entry,
    Loaded,
    Policy,
    ReadThroughCache,
    encode,
)
from chalicelib.errors import NotFound
from chalicelib.qr.codes import DynamicCodes, Gone
from chalicelib.qr.dynamic import Code, destination, is_code, merge_query
from chalicelib.qr.scans import ScanCounter, visitor_of

KEY_PREFIX = "pulse:qrdyn:"
LOOKUP_TIMEOUT = 2.0
REDIRECT_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


def cache_key(code: str) -> str:
    return KEY_PREFIX + code


class AddOnly:
    """A memcached client whose `set` is an `add`: the read-through cache's stores then
    never replace a copy an edit wrote."""

    def __init__(self, mc):
        self.mc = mc

    def get(self, key):
        return self.mc.get(key)

    def set(self, key, value, expire=0, noreply=None):
        return self.mc.add(key, value, expire=expire, noreply=noreply)

    def add(self, key, value, expire=0, noreply=None):
        return self.mc.add(key, value, expire=expire, noreply=noreply)

    def delete(self, key, noreply=None):
        return self.mc.delete(key, noreply=noreply)


class CachedCodes:
    """A code's redirect state from memcached when it can, DynamoDB otherwise."""

    def __init__(self, codes: DynamicCodes, memcached, seconds: float = 300,
                 clock: Callable[[], float] = time.time):
        self.codes, self.mc, self.seconds, self.clock = codes, memcached, seconds, clock
        self.cache = ReadThroughCache(AddOnly(memcached), jitter=0.0, clock=clock)
        self.policy = Policy(ttl=seconds, negative_ttl=0, stale_ttl=0,
                             timeout=LOOKUP_TIMEOUT, lock=False)

    def get(self, code: str) -> Code | None:
        def load(_deadline: float) -> Loaded:
            record = self.codes.get(code)
            return Loaded(None if record is None else record.redirect().to_json())

        value = self.cache.get(cache_key(code), load, self.policy).entry.value
        return None if value is None else Code.from_json(value)

    def replace(self, state: Code) -> None:
        """Write an edit's new state over any copy (after DynamoDB has it)."""
        now = self.clock()
        raw = encode(Entry(state.to_json(), "", now, now + self.seconds))
        try:
            self.mc.set(cache_key(state.code), raw, expire=math.ceil(self.seconds),
                        noreply=False)
        except CACHE_ERRORS:
            # No copy can be written; drop the old one if that node answers at all.
            try:
                self.mc.delete(cache_key(state.code), noreply=False)
            except CACHE_ERRORS:
                pass


@dataclass(frozen=True)
class Scan:
    code: str
    query: list[tuple[str, str]]
    user_agent: str
    accept_language: str | None
    address: str


def redirect(scan: Scan, lookup: CachedCodes, counter: ScanCounter | None) -> str:
    """The Location of a scan (after counting it): NotFound or Gone otherwise."""
    if not is_code(scan.code):
        raise NotFound("no such short link", code=scan.code[:40])
    code = lookup.get(scan.code)
    if code is None:
        raise NotFound("no such short link", code=scan.code)
    if code.deleted:
        raise Gone("this short link was retired", code=scan.code)
    bot, visitor = visitor_of(scan.user_agent, scan.accept_language)
    location = merge_query(destination(code, visitor), scan.query)
    if counter is not None:
        counter.count(scan.code, scan.address, scan.user_agent, bot, visitor.device)
    return location


ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>{title}</h1><p>{message}</p></main></body></html>
"""


def wants_json(accept: str | None) -> bool:
    return "application/json" in (accept or "").lower()


def error_page(status: int, body: dict) -> str:
    title = {404: "Not found", 410: "Gone"}.get(status, "Error")
    return ERROR_PAGE.format(title=f"{status} {title}",
                             message=html.escape(str(body.get("message", ""))))
