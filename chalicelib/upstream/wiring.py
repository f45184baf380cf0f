"""The /upstream feature's objects over this container's clients, built per request
(cheap: the memcached client and the connection pool are the cached parts, so
reset_clients() reaches them too)."""
from __future__ import annotations


def get_cache():
    """The read-through cache over this container's memcached client."""
    from chalicelib.cache.readthrough import ReadThroughCache
    from chalicelib.clients import get_memcached
    from chalicelib.settings import get_settings

    return ReadThroughCache(get_memcached(), jitter=get_settings().cache_ttl_jitter)


def get_upstream_client():
    from chalicelib.settings import get_settings
    from chalicelib.upstream.upstreams import UpstreamClient

    return UpstreamClient(connect_timeout=get_settings().connect_timeout)


def get_upstreams():
    """The allow-list of UPSTREAMS, parsed once per value."""
    from chalicelib.settings import get_settings
    from chalicelib.upstream.upstreams import configured_upstreams

    return configured_upstreams(get_settings().upstreams)
