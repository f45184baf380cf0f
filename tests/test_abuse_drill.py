"""The abuse drill (bench/abuse_drill.py) against a `chalice local` of its own with the
drill's low limits: 20,000 requests from eight loopback addresses of distinct pages,
tags, domains, upstream items and QR options."""
from __future__ import annotations

import os

import pytest

from bench import abuse_drill as drill
from local import processes
from tests.conftest import LIVE_SERVER_AWS_PATIENCE, ROOT

pytestmark = pytest.mark.slow
REQUESTS = 20_000
SOURCES = 8


@pytest.fixture
def drill_server(pulse_env, stack_env, stack_dir, demo_upstream, monkeypatch):
    """chalice local with the drill's limits; the test process (the event runner) sees
    the same settings."""
    env = drill.drill_env({**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                           **stack_env, **LIVE_SERVER_AWS_PATIENCE}, demo_upstream.base_url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from chalicelib.clients import reset_clients

    reset_clients()
    port = processes.free_port()
    server = processes.Server("chalice-drill", port,
                              [os.sys.executable, "-m", "local.chalice_local", "local",
                               "--stage", "local", "--no-autoreload", "--host", "127.0.0.1",
                               "--port", str(port)], ROOT, env=env, rundir=stack_dir)
    server.start(timeout=60)
    yield port
    server.stop()


def test_a_flood_from_many_addresses_gets_2xx_or_429_and_leaves_bounded_state(
        drill_server, demo_upstream):
    import app as pulse_app
    from chalicelib.clients import get_redis
    from chalicelib.settings import Settings

    r = get_redis()
    before = drill.redis_report(r)
    result = drill.flood("127.0.0.1", drill_server, drill.sources(SOURCES), REQUESTS,
                         threads_per_source=2, deadline_seconds=90)
    assert result.total >= REQUESTS, f"only {result.total} requests in {result.seconds:.0f} s"
    assert not result.problems, result.problems[:10]
    assert not any(code >= 500 for _, code in result.statuses)
    # every class met its quota from every address, and let the first through
    for kind in ("clicks", "hotspots", "qr", "upstream", "page"):
        assert result.statuses[(kind, 429)] > 0, kind
    assert demo_upstream.total_calls() <= drill.DRILL_CALLS_PER_SECOND * (result.seconds + 1)

    records, messages = drill.apply_events(pulse_app.app, Settings.from_env())
    assert records == result.distinct_pages_clicked > drill.DRILL_MAX_PAGES
    after = drill.redis_report(r)
    assert r.zcard(drill.PAGES_KEY) == drill.DRILL_MAX_PAGES
    assert r.zcard(drill.DOMAINS_KEY) <= drill.DRILL_DOMAINS_MAX
    qr_made = sum(c for (kind, code), c in result.statuses.items()
                  if kind == "qr" and code in (200, 201))
    assert messages == qr_made
    bound = drill.memory_bound(SOURCES, qr_made)
    assert after.key_bytes - before.key_bytes <= bound, (after.key_bytes, after.families)
    assert after.used_memory - before.used_memory <= bound + drill.SLACK_BYTES
    assert after.without_ttl == []
