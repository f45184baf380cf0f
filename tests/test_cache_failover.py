"""The cache with memcached nodes of the test's own (so killing them disturbs no other
test): a node killed mid-test, all nodes down, a hung node, TLS, auto discovery."""
from __future__ import annotations

import json
import signal
import socketserver
import subprocess
import threading
import time

import pytest
from pymemcache.client.base import Client as PlainClient

from chalicelib.clients import get_memcached, reset_clients
from chalicelib.upstream import api as cache_api
from chalicelib.upstream.upstreams import parse_upstreams
from local import processes
from tests.conftest import upstreams_json

ITEMS = [str(i) for i in range(1, 21)]


def get(client, path):
    started = time.monotonic()
    resp = client.http.get(path)
    return resp.status_code, resp.headers.get("X-Cache"), resp.body, time.monotonic() - started


def expected_body(item):
    from local.demo_upstream import EMPLOYEES

    return EMPLOYEES[int(item) - 1]


def answers_correctly(client, item):
    status, x_cache, body, elapsed = get(client, f"/upstream/demo/{item}")
    assert status == 200, body
    assert json.loads(body)["data"] == expected_body(item)
    assert elapsed < 2.0
    return x_cache


def kill(node: processes.Server) -> None:
    """SIGKILL, as a node that crashes (and faster than memcached's clean shutdown)."""
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    node.pidfile.unlink(missing_ok=True)


def node_of(demo_upstream, item):
    """host:port of the node that holds `item` now, per the app's client."""
    upstream = parse_upstreams(upstreams_json(demo_upstream.base_url))["demo"]
    return get_memcached()._get_client(cache_api.cache_key(upstream, item)).server


def stored_on(node, demo_upstream, item) -> bool:
    upstream = parse_upstreams(upstreams_json(demo_upstream.base_url))["demo"]
    with_plain = PlainClient(("127.0.0.1", node.port), connect_timeout=1, timeout=1)
    try:
        return with_plain.get(cache_api.cache_key(upstream, item)) is not None
    finally:
        with_plain.close()


@pytest.fixture
def own_nodes(cache_client, demo_upstream, monkeypatch, tmp_path):
    """Two memcached nodes only this test uses; a failed node is retried after 1 s.
    The upstream answers at once, so that a pass over ITEMS takes well under 1 s."""
    nodes = [processes.memcached_server(processes.free_port(), tmp_path, name=f"mc-{i}").start()
             for i in range(2)]
    monkeypatch.setenv("MEMCACHED_SERVERS", ",".join(n.url for n in nodes))
    monkeypatch.setenv("MEMCACHED_DEAD_SECONDS", "1")
    demo_upstream.delay = 0
    reset_clients()
    yield nodes
    for node in nodes:
        kill(node)


def test_one_node_killed_mid_test_keys_rehash_to_the_live_node(
        cache_client, own_nodes, demo_upstream):
    for item in ITEMS:
        assert answers_correctly(cache_client, item) == "MISS"
    homes = {item: node_of(demo_upstream, item) for item in ITEMS}
    killed, live = own_nodes
    on_killed = [i for i in ITEMS if homes[i] == ("127.0.0.1", killed.port)]
    assert 0 < len(on_killed) < len(ITEMS)  # the keys were spread over both nodes

    kill(killed)
    first_pass = [answers_correctly(cache_client, item) for item in ITEMS]
    second_pass = [answers_correctly(cache_client, item) for item in ITEMS]
    # The live node's keys never stopped hitting.  The killed node's keys were fetched
    # again: the read that found the node dead went straight to the upstream (BYPASS),
    # the others rehashed to the live node (MISS, then HIT).
    for item, status in zip(ITEMS, first_pass, strict=True):
        assert status in (("BYPASS", "MISS") if item in on_killed else ("HIT",)), item
    assert 1 <= first_pass.count("BYPASS") <= 2  # a dead node costs a failed call once
    assert second_pass == ["MISS" if s == "BYPASS" else "HIT" for s in first_pass]
    assert all(stored_on(live, demo_upstream, item) for item in on_killed)

    killed.start()  # same port, empty; taken back after MEMCACHED_DEAD_SECONDS
    time.sleep(1.1)
    third_pass = [answers_correctly(cache_client, item) for item in ITEMS]
    assert [answers_correctly(cache_client, item) for item in ITEMS] == ["HIT"] * len(ITEMS)
    assert all(stored_on(killed, demo_upstream, item) for item in on_killed)
    assert {s for i, s in zip(ITEMS, third_pass, strict=True) if i not in on_killed} == {"HIT"}


def test_all_nodes_down_bypasses_then_recovers(cache_client, own_nodes, demo_upstream):
    assert answers_correctly(cache_client, "1") == "MISS"
    for node in own_nodes:
        kill(node)
    assert [answers_correctly(cache_client, item) for item in ITEMS] == ["BYPASS"] * len(ITEMS)
    status, x_cache, _, _ = get(cache_client, "/upstream/demo")
    assert (status, x_cache) == (200, "BYPASS")

    for node in own_nodes:
        node.start()
    time.sleep(1.1)
    assert answers_correctly(cache_client, "1") == "MISS"
    assert answers_correctly(cache_client, "1") == "HIT"


def test_a_hung_node_costs_one_timeout_then_its_keys_move(cache_client, own_nodes,
                                                          demo_upstream):
    for item in ITEMS:
        answers_correctly(cache_client, item)
    hung = own_nodes[0]
    hung.pause()  # keeps its port, answers nothing
    try:
        statuses = [answers_correctly(cache_client, item) for item in ITEMS]
    finally:
        hung.resume()
    assert statuses.count("BYPASS") == 1  # the read that timed out, once
    assert set(statuses) <= {"HIT", "MISS", "BYPASS"}


# --- TLS ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_node(cache_client, monkeypatch, tmp_path, tls_cert):
    node = processes.memcached_server(processes.free_port(), tmp_path, name="mc-tls",
                                      tls=tls_cert).start()
    monkeypatch.setenv("MEMCACHED_SERVERS", node.url)
    monkeypatch.setenv("MEMCACHED_TLS", "true")
    monkeypatch.setenv("MEMCACHED_TLS_CA_FILE", str(tls_cert[0]))
    reset_clients()
    yield node
    kill(node)


def test_tls_node_miss_then_hit(cache_client, tls_node, demo_upstream):
    assert answers_correctly(cache_client, "3") == "MISS"
    assert answers_correctly(cache_client, "3") == "HIT"
    assert get_memcached().clients[tls_node.url].get("no-such-key") is None
    plain = PlainClient(("127.0.0.1", tls_node.port), connect_timeout=1, timeout=1)
    with pytest.raises(Exception):  # noqa: B017 - any failure: the node speaks only TLS
        plain.version()
    plain.close()


def test_tls_certificate_is_verified(cache_client, tls_node, demo_upstream, monkeypatch):
    monkeypatch.delenv("MEMCACHED_TLS_CA_FILE")  # the system store does not know our CA
    reset_clients()
    assert answers_correctly(cache_client, "3") == "BYPASS"


# --- auto discovery --------------------------------------------------------------------

class FakeConfigEndpoint:
    """Answers `config get cluster` as an ElastiCache configuration endpoint does."""

    def __init__(self):
        self.version, self.nodes = 1, []
        endpoint = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                for line in self.rfile:
                    if line.strip() != b"config get cluster":
                        self.wfile.write(b"ERROR\r\n")
                        continue
                    listing = " ".join(f"127.0.0.1|127.0.0.1|{p}" for p in endpoint.nodes)
                    payload = f"{endpoint.version}\n{listing}\n\r\n".encode()
                    self.wfile.write(b"CONFIG cluster 0 %d\r\n%sEND\r\n"
                                     % (len(payload) - 2, payload))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def publish(self, *nodes):
        self.nodes = [n.port for n in nodes]
        self.version += 1

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def config_endpoint(cache_client, own_nodes, monkeypatch):
    endpoint = FakeConfigEndpoint()
    endpoint.publish(own_nodes[0])
    monkeypatch.setenv("MEMCACHED_CONFIG_ENDPOINT", endpoint.address)
    monkeypatch.setenv("MEMCACHED_DISCOVERY_SECONDS", "0.2")
    reset_clients()
    yield endpoint
    endpoint.stop()


def test_auto_discovery_follows_added_and_removed_nodes(cache_client, own_nodes,
                                                        config_endpoint, demo_upstream):
    first, added = own_nodes
    for item in ITEMS[:10]:
        assert answers_correctly(cache_client, item) == "MISS"
    assert sorted(get_memcached().clients) == [first.url]
    assert all(stored_on(first, demo_upstream, item) for item in ITEMS[:10])

    config_endpoint.publish(first, added)
    time.sleep(0.25)
    for item in ITEMS[10:]:
        assert answers_correctly(cache_client, item) == "MISS"
    assert sorted(get_memcached().clients) == sorted([first.url, added.url])
    assert any(stored_on(added, demo_upstream, item) for item in ITEMS[10:])

    config_endpoint.publish(added)  # the first node leaves the cluster
    time.sleep(0.25)
    statuses = [answers_correctly(cache_client, item) for item in ITEMS]
    assert sorted(get_memcached().clients) == [added.url]
    assert "BYPASS" not in statuses  # a removed node is not a failed one
