"""The read-through cache on memcached, a component the features share (QR's lookup,
the /upstream routes).

memcached.py and discovery.py build the client (static nodes or ElastiCache auto
discovery, TLS); readthrough.py is the cache itself (TTL with jitter, negative entries,
refresh lock, serve-stale, fail-open).
"""
