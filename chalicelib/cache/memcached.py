"""The memcached client of the read-through cache: static nodes or auto discovery, TLS.

pymemcache's HashClient spreads keys over the nodes by rendezvous hashing.  memcached
does not replicate, so a node that fails takes its keys with it: `retry_attempts=0`
takes a node out of the hash at its first network error (its keys rehash to the live
nodes, so a dead node costs one connect timeout, not one per request) and tries it
again after `dead_timeout`.  With retries allowed, the client would between attempts
silently answer None to `get` and False to `add`, which the cache would take for "miss"
and "someone else holds the lock".

Imports pymemcache: import this module only where memcached is used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pymemcache.client.hash import HashClient

from chalicelib.cache.discovery import DiscoveringHashClient, parse_host_port

if TYPE_CHECKING:  # pragma: no cover - typing only
    import ssl

    from chalicelib.settings import Settings


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS with certificate and host name checks (ElastiCache in-transit encryption)."""
    if not settings.memcached_tls:
        return None
    import ssl

    return ssl.create_default_context(cafile=settings.memcached_tls_ca_file)


def make_memcached(settings: Settings) -> HashClient:
    """A HashClient over the configuration endpoint's nodes, or over MEMCACHED_SERVERS."""
    options = {
        "connect_timeout": settings.memcached_timeout,
        "timeout": settings.memcached_timeout,
        "use_pooling": True,  # connections live as long as the container
        "no_delay": True,
        "retry_attempts": 0,
        "dead_timeout": settings.memcached_dead_seconds,
        "ignore_exc": False,  # the cache must tell a failure from a miss
        "tls_context": tls_context(settings),
    }
    if settings.memcached_config_endpoint:
        return DiscoveringHashClient(parse_host_port(settings.memcached_config_endpoint),
                                     settings.memcached_discovery_seconds, **options)
    return HashClient([parse_host_port(s) for s in settings.memcached_servers], **options)
