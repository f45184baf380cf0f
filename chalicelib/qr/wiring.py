"""QR's objects over this container's clients, built per request (cheap: no I/O, the
clients are the cached part, so reset_clients() reaches them too)."""
from __future__ import annotations


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
