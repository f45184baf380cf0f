"""Read-through cache on memcached for slow upstream APIs (issue #9).

memcached.py and discovery.py build the client (static nodes or ElastiCache auto
discovery, TLS); readthrough.py is the reusable component (TTL with jitter, negative
entries, refresh lock, serve-stale, fail-open); upstream.py the allow-list and the
HTTP fetch; api.py what the /upstream routes answer.
"""
