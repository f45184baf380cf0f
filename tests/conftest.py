"""Fixtures: real redis-server, memcached, a 3-master Redis Cluster and moto's
server, each started on free loopback ports once per session; a headless
Chromium for page tests.  No fakes of our own code."""
from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from chalicelib.clients import reset_clients
from chalicelib.settings import Settings
from local import processes, stack

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CHROMIUM = os.environ.get("PULSE_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic",
                 "--disable-sync"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pytest_sessionstart(session):
    # CI runs on a clean clone with ../shared beside it: its absence there is
    # a broken setup, not a reason to skip a third of the suite silently.
    if in_ci() and not SHARED.is_dir():
        raise pytest.UsageError(f"CI=true but {SHARED} is absent: the tests that read "
                                f"../shared/ would all be skipped")


def shared_path(*parts: str) -> Path:
    """A path under ../shared/, or a skip where that folder is absent (a failure under CI)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is absent (../shared/ is not beside this checkout)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def redis_server(stack_dir):
    server = processes.redis_server(processes.free_port(), stack_dir / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def memcached_servers(stack_dir):
    nodes = [processes.memcached_server(processes.free_port(), stack_dir, name=f"memcached-{i}")
             .start() for i in range(2)]
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def moto_server(stack_dir):
    server = processes.moto_server(processes.free_port(), stack_dir).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(stack_dir):
    """A real Redis Cluster, three masters, as MemoryDB always runs in cluster mode."""
    ports = [processes.free_cluster_port() for _ in range(3)]
    nodes = processes.redis_cluster(ports, stack_dir / "cluster")
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def stack_env(redis_server, memcached_servers, moto_server) -> dict[str, str]:
    """The environment the app sees with the session's servers (as `make run` sets it)."""
    return stack.stack_env(redis_port=redis_server.port,
                           memcached_ports=[n.port for n in memcached_servers],
                           moto_port=moto_server.port)


# The session's `chalice local` (page tests, 20 concurrent QR creations, the contract run)
# talks to the shared moto, which answers in ~10 ms but can stall past the 0.5 s a
# request-path AWS attempt waits in production when the 2-core machine is loaded (two test
# workers, Terraform, Chromium): a healthy-but-starved emulator must not turn a test of
# something else into a 503.  In-process tests, and those of the deadlines themselves,
# run with the production values.
LIVE_SERVER_AWS_PATIENCE = {"PULSE_AWS_READ_TIMEOUT": "2", "PULSE_AWS_BUDGET": "6"}


def real_redis(request):
    """A client (decoding responses) of a real Redis chosen by `request.param`: "standalone",
    the session's server, or "cluster", the session's 3-master Redis Cluster."""
    import redis
    from redis.cluster import RedisCluster

    if request.param == "standalone":
        return redis.Redis(port=request.getfixturevalue("redis_server").port,
                           decode_responses=True)
    nodes = request.getfixturevalue("redis_cluster")
    return RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A test server's request handler that logs nothing; `answer` sends a 200 with a body."""

    def answer(self, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def reset_moto(endpoint: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def clean_world(mp: pytest.MonkeyPatch, stack_env: dict, **extra_env) -> Settings:
    """The session's servers (and `extra_env`) in the environment through `mp`, no AWS
    profile or session of the caller's, and a clean world: empty Redis and memcached,
    fresh moto resources, provisioned.  Returns the world's settings."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        mp.delenv(key, raising=False)
    for key, value in {**stack_env, **extra_env}.items():
        mp.setenv(key, value)
    reset_clients()
    settings = Settings.from_env()
    from chalicelib.clients import get_memcached, get_redis

    get_redis().flushall()
    get_memcached().flush_all()
    reset_moto(stack_env["AWS_ENDPOINT_URL"])
    from local.provision import provision

    provision(settings)
    return settings


@pytest.fixture
def pulse_env(monkeypatch, stack_env) -> Settings:
    """A clean world per test: empty Redis and memcached, fresh moto resources."""
    yield clean_world(monkeypatch, stack_env)
    reset_clients()


@pytest.fixture
def app_client(pulse_env):
    """chalice.test.Client over the real app, with the local stage's config."""
    from chalice.test import Client

    import app as pulse_app

    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        yield client


@pytest.fixture
def own_redis(app_client, monkeypatch, tmp_path):
    """A Redis only this test's app uses, so stopping or pausing it disturbs no other test."""
    server = processes.redis_server(processes.free_port(), tmp_path).start()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    reset_clients()
    yield server
    server.stop()


@contextlib.contextmanager
def paused(server: processes.Server):
    """`server` hung (SIGSTOP) for the block, resumed after it whatever happens."""
    server.pause()
    try:
        yield server
    finally:
        server.resume()


@pytest.fixture(scope="module")
def private_moto_server(tmp_path_factory):
    """A moto server of the test module's own, for tests that pause it: the shared
    moto_server of the session is never paused."""
    server = processes.moto_server(processes.free_port(), tmp_path_factory.mktemp("moto")
                                   ).start(timeout=60)
    yield server
    server.resume()  # a test that failed while it was paused
    server.stop()


@pytest.fixture
def own_moto(app_client, monkeypatch, private_moto_server):
    """The app on a moto only this module uses (reset and provisioned), so pausing it
    (`own_moto.pause()`: it keeps its port and answers nothing) disturbs no other test."""
    from local.provision import provision

    endpoint = f"http://127.0.0.1:{private_moto_server.port}"
    reset_moto(endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    reset_clients()
    provision(Settings.from_env())
    yield private_moto_server
    private_moto_server.resume()  # no-op unless the test failed while it was paused


def http_json(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="session")
def session_upstream():
    """The demo upstream API of the live server (as `make run` runs one), fast."""
    from local.demo_upstream import DemoUpstream

    upstream = DemoUpstream(delay=0.02).start()
    yield upstream
    upstream.stop()


@contextlib.contextmanager
def chalice_local(name: str, stack_env: dict, stack_dir, port: int | None = None,
                  upstream=None, **extra_env):
    """`chalice local` serving the real app on `port` (a free one if None) against the
    session's servers, with `extra_env` over the stack's environment (no AWS_* of the
    caller's) and, given a demo `upstream`, UPSTREAMS naming it `demo` (TTL 60 s, timeout
    1 s); yields its base URL and stops it on exit."""
    port = processes.free_port() if port is None else port
    if upstream is not None:
        extra_env["UPSTREAMS"] = upstreams_json(upstream.base_url, ttl=60, timeout=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack_env, **LIVE_SERVER_AWS_PATIENCE, **extra_env)
    # as `make run` serves it: without Nagle's 40 ms delay on every answer
    server = processes.Server(name, port,
                              [os.sys.executable, "-m", "local.chalice_local", "local",
                               "--stage", "local", "--no-autoreload",
                               "--host", "127.0.0.1", "--port", str(port)],
                              ROOT, env=env, rundir=stack_dir)
    server.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_server(stack_env, stack_dir, session_upstream):
    """`chalice local` serving the real app on a free port, against the session's servers
    (UPSTREAMS: `demo`, the session's demo upstream)."""
    with chalice_local("chalice-local", stack_env, stack_dir, upstream=session_upstream) as url:
        yield url


@pytest.fixture
def live_app(live_server, pulse_env) -> str:
    """The live server's URL, with this test's clean, provisioned world."""
    return live_server


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (its own browser download
    is not used)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    pg = context.new_page()
    yield pg
    context.close()


# --- cache ---
@pytest.fixture
def demo_upstream():
    """The demo upstream API in a thread of the test (fast by default): counts
    requests per path, fails (mode "fail") or hangs (mode "hang") on command."""
    from local.demo_upstream import DemoUpstream

    upstream = DemoUpstream(delay=0.02).start()
    yield upstream
    upstream.stop()


def upstreams_json(base_url: str, **entry) -> str:
    """UPSTREAMS with one upstream `demo` at a DemoUpstream's base URL."""
    return json.dumps({"demo": {"url": f"{base_url}/employees",
                                "item_url": base_url + "/employee/{item}", **entry}})


@pytest.fixture
def memcached_env(monkeypatch, stack_env) -> Settings:
    """The session's servers in the environment and memcached empty: pulse_env
    without its moto reset and provisioning, which the cache does not use."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    reset_clients()
    from chalicelib.clients import get_memcached

    get_memcached().flush_all()
    yield Settings.from_env()
    reset_clients()


@pytest.fixture
def cache_client(memcached_env, demo_upstream, monkeypatch):
    """chalice.test.Client over the app, UPSTREAMS naming the test's demo upstream
    (TTL 60 s, timeout 1 s)."""
    from chalice.test import Client

    import app as pulse_app

    # calls_per_second high: these tests drive the cache (memcached down is a call per
    # request); the upstream call budget has tests of its own (tests/test_bounds.py)
    monkeypatch.setenv("UPSTREAMS", upstreams_json(demo_upstream.base_url, ttl=60, timeout=1,
                                                   calls_per_second=10_000))
    reset_clients()
    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        yield client
