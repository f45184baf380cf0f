"""QR's objects over this container's clients, built per request (cheap: no I/O, the
clients are the cached part, so reset_clients() reaches them too)."""
from __future__ import annotations

from functools import lru_cache


def get_service(clock=None):
    """The create-or-reuse service; `clock` is for tests that move time past an entry's
    ttl."""
    import time

    from chalicelib.cache.readthrough import ReadThroughCache
    from chalicelib.clients import get_aws_client, get_memcached
    from chalicelib.qr.cached import CachedEntries
    from chalicelib.qr.service import QrService
    from chalicelib.qr.store import QrStore
    from chalicelib.settings import get_settings

    s, clock = get_settings(), clock or time.time
    store = QrStore(get_aws_client("s3"), get_aws_client("dynamodb"), s.qr_bucket, s.qr_table,
                    clock=clock)
    lookup = None
    if s.qr_cache_seconds > 0:
        cache = ReadThroughCache(get_memcached(), jitter=s.cache_ttl_jitter, clock=clock)
        lookup = CachedEntries(store, cache, max_seconds=s.qr_cache_seconds)
    return QrService(store, ttl_seconds=s.qr_ttl_seconds, presign_seconds=s.qr_presign_seconds,
                     clock=clock, lookup=lookup)


def get_publisher():
    """`qr.created` onto the app's bus, for the table's stream handler (a background path:
    the stream waits, no request does)."""
    from chalicelib.clients import get_aws_client
    from chalicelib.qr.events import EventPublisher
    from chalicelib.settings import get_settings

    return EventPublisher(get_aws_client("events", background=True),
                          get_settings().event_bus_name)


def get_creation_log():
    """The `qr.created` counts and recent creations, over the shared Redis client."""
    from chalicelib.clients import get_redis
    from chalicelib.qr.creations import CreationLog
    from chalicelib.settings import get_settings

    s = get_settings()
    return CreationLog(get_redis(), keep=s.qr_recent_max, max_domains=s.qr_domains_max)


def get_dynamic_codes(clock=None):
    """Dynamic codes' items and images (chalicelib.qr.codes)."""
    import time

    from chalicelib.clients import get_aws_client
    from chalicelib.qr.codes import DynamicCodes
    from chalicelib.settings import get_settings

    s = get_settings()
    return DynamicCodes(get_aws_client("s3"), get_aws_client("dynamodb"), s.qr_bucket,
                        s.qr_table, s.public_base_url, clock=clock or time.time)


def get_cached_codes(codes=None):
    """The redirect's lookup: dynamic codes through memcached (chalicelib.qr.redirect)."""
    from chalicelib.clients import get_memcached
    from chalicelib.qr.redirect import CachedCodes
    from chalicelib.settings import get_settings

    return CachedCodes(codes or get_dynamic_codes(), get_memcached(),
                       seconds=get_settings().qr_dynamic_cache_seconds)


def get_scan_counter():
    """The scan counter over a Redis client of its own: inline, with QR_SCAN_TIMEOUT as
    both timeouts; background, behind a sender thread, with the usual timeouts (no
    request waits for it).  None when QR_SCAN_COUNTING is off."""
    from chalicelib.settings import get_settings

    s = get_settings()
    return _scan_counter(s) if s.qr_scan_counting else None


@lru_cache(maxsize=2)
def _scan_counter(settings):
    """One per settings (a test that moves REDIS_URL gets a new one)."""
    from chalicelib.clients import make_redis
    from chalicelib.qr.scans import ScanCounter

    if settings.qr_scan_send == "background":  # nobody waits: the usual timeouts
        from chalicelib.qr.scans import BackgroundCounter

        return BackgroundCounter(ScanCounter(make_redis(),
                                             days_kept=settings.qr_scan_days_kept))
    redis = make_redis(read_timeout=settings.qr_scan_timeout,
                       connect_timeout=settings.qr_scan_timeout)
    return ScanCounter(redis, days_kept=settings.qr_scan_days_kept)


def get_scan_reader():
    """The scan counter over the shared Redis client (normal timeouts), for reports."""
    from chalicelib.clients import get_redis
    from chalicelib.qr.scans import ScanCounter
    from chalicelib.settings import get_settings

    return ScanCounter(get_redis(), days_kept=get_settings().qr_scan_days_kept)
