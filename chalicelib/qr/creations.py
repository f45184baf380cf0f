"""What the `qr.created` handler keeps for the page: per-domain counts and recent creations.

Kept in Redis (MemoryDB in AWS), because one Lua script makes the dedupe
marker, the count and the recent list change together or not at all:
EventBridge and SQS deliver at least once, and a failed batch is delivered
again whole, so the same creation must count once however often it arrives.
(DynamoDB could do the marker + count in a transaction, but not a bounded
"last N" list without a read-modify-write race.)

    pulse:qr:{stats}:seen:<creation>  STR   dedupe marker, expires after MARKER_TTL
    pulse:qr:{stats}:domains          ZSET  domain -> creations, the `max_domains` most
                                            counted (a new domain takes the place of the
                                            least counted); expires MARKER_TTL after the
                                            last creation
    pulse:qr:{stats}:recent           LIST  newest first, JSON, at most `keep` long, the
                                            same TTL; id, domain, format and time only:
                                            the URLs people made codes for are not kept

One hash tag, so one cluster slot: the script may touch all three keys.
The dedupe key is the creation id the API writes into the cache item, not the
EventBridge event id: a PutEvents call retried after a lost answer makes a
second event (new id) of the same creation.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable

log = logging.getLogger("pulse.qr")

PREFIX = "pulse:qr:{stats}"
# SQS keeps a message up to 4 days and a DLQ redrive can bring it back later;
# a week covers both.
MARKER_TTL = 7 * 86400

_LUA_RECORD = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('ZINCRBY', KEYS[2], 1, ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[5]) - 1)
  redis.call('LPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[1])
  return 1
end
return 0
"""

_REQUIRED = {"id": str, "url": str, "domain": str, "format": str, "created_at": int,
             "creation": str}


class BadEvent(ValueError):
    """A message that is not a `qr.created` event; retrying cannot fix it."""


def parse_event(body: str) -> dict:
    """The detail of a `qr.created` EventBridge event delivered as an SQS body."""
    try:
        event = json.loads(body)
    except (TypeError, ValueError):
        raise BadEvent("body is not JSON") from None
    if not isinstance(event, dict) or event.get("detail-type") != "qr.created":
        raise BadEvent("not a qr.created event")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise BadEvent("detail is not an object")
    for name, kind in _REQUIRED.items():
        if not isinstance(detail.get(name), kind) or isinstance(detail.get(name), bool):
            raise BadEvent(f"detail.{name} is missing or not a {kind.__name__}")
    return detail


# What a recent creation shows: not its URL, nor its id (GET /qr is answered to anyone, and
# an id opens GET /qr/{id}, an image that encodes the URL).
RECENT_FIELDS = ("domain", "format", "created_at")


class CreationLog:
    def __init__(self, redis, keep: int = 20, max_domains: int = 1000):
        self.redis, self.keep, self.max_domains = redis, keep, max_domains
        self._record = redis.register_script(_LUA_RECORD)

    def record(self, detail: dict) -> bool:
        """Count one creation; False when it was counted before (a redelivery)."""
        recent = json.dumps({k: detail[k] for k in RECENT_FIELDS}, separators=(",", ":"))
        keys = [f"{PREFIX}:seen:{detail['creation']}", f"{PREFIX}:domains", f"{PREFIX}:recent"]
        return bool(self._record(keys=keys, args=[MARKER_TTL, detail["domain"], recent,
                                                  self.keep, self.max_domains]))

    def record_messages(self, bodies: Iterable[str]) -> dict:
        """Record each SQS body; malformed ones are logged and skipped (a retry or the
        DLQ cannot make them valid); a Redis failure raises, so the batch is retried."""
        counts = {"counted": 0, "duplicates": 0, "rejected": 0}
        for body in bodies:
            try:
                detail = parse_event(body)
            except BadEvent as exc:
                log.warning("qr.created handler: skipped a message: %s", exc)
                counts["rejected"] += 1
                continue
            counts["counted" if self.record(detail) else "duplicates"] += 1
        return counts

    def stats(self, top: int = 10) -> dict:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrevrange(f"{PREFIX}:domains", 0, top - 1, withscores=True)
        pipe.lrange(f"{PREFIX}:recent", 0, self.keep - 1)
        domains, recent = pipe.execute()
        return {"domains": [{"domain": d, "count": int(c)} for d, c in domains],
                "recent": [{k: v for k, v in json.loads(r).items() if k in RECENT_FIELDS}
                           for r in recent]}
