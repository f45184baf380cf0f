"""Scan counting for dynamic codes, without storing who scanned.

Per code per UTC day, in Redis (the code in braces: one cluster slot per code):

    pulse:scan:{<code>}:<day>       hash: humans, bots, device:<class> (humans only)
    pulse:scan:{<code>}:<day>:hll   HyperLogLog of visitor hashes (humans only)
    pulse:scan:salt:<day>           that day's random salt (32 bytes, hex)

A visitor hash is HMAC-SHA256(day's salt, address | user agent | day), 8 bytes of it:
the HyperLogLog keeps registers, not members, and the salt is random per day and
expires two days later, so once it is gone nothing links a hash to an address.
Neither the address nor the user agent is written anywhere, logs included.

Bots (crawlerdetect's list, link-preview fetchers among them) count in `bots` only.
Every counter key has a TTL of QR_SCAN_DAYS_KEPT days.

Counting never holds a redirect for long.  QR_SCAN_SEND=background (the local stage's
default): the redirect queues the scan and a sender thread counts what has queued up
in one pipeline, so the redirect does not wait for Redis at all.  inline (the default
elsewhere: Lambda freezes a function's threads between invocations, so a queued scan
could wait there, or be lost with the container): the redirect counts its own scan
before answering, its Redis client waiting QR_SCAN_TIMEOUT at most.  After a failure
counting is skipped for BREAK_SECONDS, so a hung Redis costs one timeout per container
per second, not one per scan.  A scan that is not counted is logged (code and
reason only) and lost, never counted twice.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from chalicelib.qr.dynamic import Visitor, accepted_languages

log = logging.getLogger("pulse.qr.scans")

DEVICE_CLASSES = ("ios", "android", "mobile", "desktop", "other")
SALT_SECONDS = 2 * 86400  # a day's salt outlives its day by one, for late scans
BREAK_SECONDS = 1.0
MAX_DAYS = 90  # GET /qr/{id}/scans?days= at most


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def counts_key(code: str, day: str) -> str:
    return f"pulse:scan:{{{code}}}:{day}"


def hll_key(code: str, day: str) -> str:
    return counts_key(code, day) + ":hll"


@lru_cache(maxsize=1)
def _crawler_detect():
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


@lru_cache(maxsize=4096)
def classify(user_agent: str) -> tuple[bool, str]:
    """(is a bot, device class) of a User-Agent: crawlerdetect's crawler list (search
    engines, link-preview fetchers, HTTP libraries), then the `user-agents` parser
    (ua-parser's regexes) for the device."""
    if not user_agent or _crawler_detect().isCrawler(user_agent):
        return True, "other"
    from user_agents import parse

    ua = parse(user_agent)
    if ua.is_bot:
        return True, "other"
    family = ua.os.family
    if family == "iOS" or (family == "Mac OS X" and ua.is_tablet):
        return False, "ios"
    if family == "Android":
        return False, "android"
    if ua.is_mobile or ua.is_tablet:
        return False, "mobile"
    if ua.is_pc:
        return False, "desktop"
    return False, "other"


def visitor_of(user_agent: str, accept_language: str | None) -> tuple[bool, Visitor]:
    bot, device = classify(user_agent[:1024])
    return bot, Visitor(device, accepted_languages(accept_language))


class ScanCounter:
    """Counts scans in Redis (`redis`: a client with a short timeout)."""

    def __init__(self, redis, days_kept: int = 400, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
        self.redis = redis
        self.ttl = days_kept * 86400
        self.clock, self.monotonic = clock, monotonic
        self._salts: dict[str, bytes] = {}
        self._broken_until = 0.0
        self._lock = threading.Lock()

    def _salt(self, day: str) -> bytes:
        salt = self._salts.get(day)
        if salt is None:
            key = f"pulse:scan:salt:{day}"
            self.redis.set(key, secrets.token_hex(32), nx=True, ex=SALT_SECONDS)
            salt = self.redis.get(key).encode()
            with self._lock:
                self._salts = {day: salt}  # yesterday's is no longer needed
        return salt

    def visitor_hash(self, day: str, address: str, user_agent: str) -> str:
        message = "\x1f".join((address, user_agent, day)).encode()
        return hmac.new(self._salt(day), message, hashlib.sha256).hexdigest()[:16]

    def count(self, code: str, address: str, user_agent: str, bot: bool, device: str) -> bool:
        """Count one scan; False when it was lost (Redis failed, or counting is paused
        after a failure)."""
        return self.count_many([(code, address, user_agent, bot, device)]) == 1

    def count_many(self, scans: list[tuple[str, str, str, bool, str]]) -> int:
        """Count scans (code, address, user agent, bot, device) in one pipeline: how many
        were counted (all or none)."""
        if self.monotonic() < self._broken_until:
            log.warning("%d scan(s) of %s not counted: Redis failed less than %gs ago",
                        len(scans), _codes(scans), BREAK_SECONDS)
            return 0
        day = day_of(self.clock())
        try:
            pipe = self.redis.pipeline(transaction=False)
            touched = set()
            for code, address, user_agent, bot, device in scans:
                key = counts_key(code, day)
                if bot:
                    pipe.hincrby(key, "bots", 1)
                else:
                    pipe.hincrby(key, "humans", 1)
                    pipe.hincrby(key, f"device:{device}", 1)
                    pipe.pfadd(hll_key(code, day), self.visitor_hash(day, address, user_agent))
                    touched.add(hll_key(code, day))
                touched.add(key)
            for key in touched:
                pipe.expire(key, self.ttl)
            pipe.execute()
        except Exception as exc:  # any Redis failure: the redirect must still answer
            self._broken_until = self.monotonic() + BREAK_SECONDS
            # A timeout may come after Redis ran the pipeline: then they did count.
            log.warning("%d scan(s) of %s not counted: Redis failed (%s)", len(scans),
                        _codes(scans), type(exc).__name__)
            return 0
        return len(scans)

    def flush(self, timeout: float = 0) -> bool:
        return True  # nothing waits here

    def report(self, code: str, days: int) -> dict:
        """Per day (newest first) and in total: humans, bots, unique visitors (HyperLogLog
        estimates; the total's is over the union of the days), humans by device class."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        dates = [(today - timedelta(days=i)).isoformat() for i in range(days)]
        pipe = self.redis.pipeline(transaction=False)
        for day in dates:
            pipe.hgetall(counts_key(code, day))
            # redis-py's cluster pipeline refuses pfcount() (multi-key in general); every
            # key here shares the code's slot, so the command itself is fine.
            pipe.execute_command("PFCOUNT", hll_key(code, day))
        pipe.execute_command("PFCOUNT", *[hll_key(code, day) for day in dates])
        answers = pipe.execute()
        per_day, totals = [], {"humans": 0, "bots": 0,
                               "devices": dict.fromkeys(DEVICE_CLASSES, 0)}
        for i, day in enumerate(dates):
            counts, uniques = answers[2 * i], answers[2 * i + 1]
            devices = {c: int(counts.get(f"device:{c}", 0)) for c in DEVICE_CLASSES}
            row = {"date": day, "humans": int(counts.get("humans", 0)),
                   "bots": int(counts.get("bots", 0)), "unique_visitors": int(uniques),
                   "devices": devices}
            per_day.append(row)
            totals["humans"] += row["humans"]
            totals["bots"] += row["bots"]
            for c in DEVICE_CLASSES:
                totals["devices"][c] += devices[c]
        totals["unique_visitors"] = int(answers[-1])
        return {"days": per_day, "totals": totals}


def _codes(scans) -> str:
    codes = sorted({scan[0] for scan in scans})
    return ", ".join(codes[:5]) + (f" and {len(codes) - 5} more" if len(codes) > 5 else "")


class BackgroundCounter:
    """Scans handed to a sender thread, which counts what has queued up in one pipeline
    (ScanCounter.count_many): the redirect never waits for Redis.  A full queue (Redis
    slower than the scans for a while) drops the scan, logged; a failed batch is logged
    and lost, never counted twice (no retry).  Addresses and user agents stay in this
    process's memory until their batch is sent."""

    def __init__(self, counter: ScanCounter, max_queued: int = 10_000, batch: int = 500):
        import queue

        self.counter, self.batch = counter, batch
        self.queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def count(self, code: str, address: str, user_agent: str, bot: bool, device: str) -> bool:
        import queue

        self._ensure_thread()
        try:
            self.queue.put_nowait((code, address, user_agent, bot, device))
        except queue.Full:
            log.warning("scan of %s not counted: %d scans already wait for Redis",
                        code, self.queue.maxsize)
            return False
        return True

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every queued scan has been sent (or lost): True if done in time."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self.queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._send, name="pulse-scans",
                                                    daemon=True)
                    self._thread.start()

    def _send(self) -> None:
        import queue

        while True:
            scans = [self.queue.get()]
            while len(scans) < self.batch:
                try:
                    scans.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.counter.count_many(scans)
            finally:
                for _ in scans:
                    self.queue.task_done()
