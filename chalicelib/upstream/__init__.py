"""GET /upstream/<name>[/<item>]: slow upstream APIs answered through the read-through
cache (chalicelib.cache).

upstreams.py is the allow-list (UPSTREAMS) and the HTTP fetch; wiring.py builds the
cache and the client over this container's connections; api.py is what the routes answer.
"""
