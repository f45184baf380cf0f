"""ElastiCache memcached auto discovery on top of pymemcache's HashClient.

Written here because no maintained Python library does it without a framework
(django-elasticache needs Django and pylibmc).  The configuration endpoint answers
`config get cluster` with a version number and the node list; the client asks
again every `discovery_seconds`, on use (a Lambda runs no background thread
between invocations), and follows a new version: added nodes join the hash,
removed ones leave it for good (not as "dead, retry later").

Imports pymemcache: import this module only where memcached is used.
"""
from __future__ import annotations

import logging
import threading
import time

from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError

log = logging.getLogger("pulse.cache")

# How soon a failed discovery is tried again (the node list may be empty meanwhile).
DISCOVERY_RETRY_SECONDS = 5.0


def parse_host_port(server: str, default_port: int = 11211) -> tuple[str, int]:
    """("host", port) from "host:port", "[v6 address]:port" or "host" (default port):
    a MEMCACHED_SERVERS entry, the configuration endpoint, or a HashClient node key."""
    host, _, port = server.rpartition(":")
    if not host:  # "host" without a port
        return server, default_port
    return host.strip("[]"), int(port)


def parse_cluster_config(raw: bytes) -> tuple[int, list[tuple[str, int]]]:
    """(version, [(host, port)]) from the answer to `config get cluster`.

    The answer (END already stripped by the client) is
    ``CONFIG cluster 0 <bytes>\\r\\n<version>\\n<host>|<ip>|<port> ...\\n\\r\\n``.
    The host name is used when present: the TLS certificate names it.
    """
    lines = raw.decode("ascii").replace("\r", "").split("\n")
    if not lines[0].startswith("CONFIG cluster") or len(lines) < 3:
        raise ValueError(f"not a cluster config answer: {raw[:80]!r}")
    nodes = []
    for node in lines[2].split():
        host, ip, port = node.split("|")
        nodes.append((host or ip, int(port)))
    return int(lines[1]), nodes


class DiscoveringHashClient(HashClient):
    """A HashClient whose nodes follow an ElastiCache configuration endpoint."""

    def __init__(self, endpoint: tuple[str, int], discovery_seconds: float, **options):
        super().__init__([], **options)
        self.config_version: int | None = None
        self._discovery_seconds = discovery_seconds
        self._next_discovery = 0.0
        self._discovery_lock = threading.Lock()
        self._endpoint = Client(endpoint, connect_timeout=options.get("connect_timeout"),
                                timeout=options.get("timeout"),
                                tls_context=options.get("tls_context"))
        self.discover()

    def discover(self) -> bool:
        """Ask the configuration endpoint; True when the node list changed."""
        with self._discovery_lock:
            now = time.monotonic()
            try:
                raw = self._endpoint.raw_command("config get cluster", "END\r\n")
                version, nodes = parse_cluster_config(raw)
            except (MemcacheError, OSError, ValueError) as exc:
                self._endpoint.close()
                self._next_discovery = now + min(self._discovery_seconds,
                                                 DISCOVERY_RETRY_SECONDS)
                log.warning("memcached auto discovery failed (%r); nodes kept: %s",
                            exc, sorted(self.clients))
                return False
            self._next_discovery = now + self._discovery_seconds
            if version == self.config_version:
                return False
            self._use_nodes(nodes)
            self.config_version = version
            log.info("memcached nodes (config version %d): %s", version, sorted(self.clients))
            return True

    def _use_nodes(self, nodes: list[tuple[str, int]]) -> None:
        wanted = {self._make_client_key(node): node for node in nodes}
        for key in [k for k in self.clients if k not in wanted]:
            server = parse_host_port(key)
            if key in self.hasher.nodes:
                self.hasher.remove_node(key)
            self._dead_clients.pop(server, None)  # gone for good: never retried
            self._failed_clients.pop(server, None)
            self.clients.pop(key).close()
        for key, node in wanted.items():
            if key not in self.clients:
                self.add_server(node)

    def _get_client(self, key):
        # Every single-key command passes here: the cheapest place to notice that
        # discovery is due (a private hook of the pinned pymemcache 4.0.0).
        if time.monotonic() >= self._next_discovery:
            self.discover()
        return super()._get_client(key)

    def close(self):
        super().close()
        self._endpoint.close()
