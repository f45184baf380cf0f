"""The read-through component against real memcached (the session's two nodes) and a
loopback upstream: MISS/HIT, TTL refresh, stampede, serve-stale, negative entries,
values over the item limit."""
from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest

from chalicelib.cache.memcached import make_memcached
from chalicelib.cache.readthrough import (
    CacheStatus,
    Entry,
    Loaded,
    Policy,
    ReadThroughCache,
    decode,
    encode,
)
from chalicelib.clients import get_memcached
from chalicelib.errors import UpstreamFailed, UpstreamTimeout
from chalicelib.upstream import api as cache_api
from chalicelib.upstream.upstreams import UpstreamClient, parse_upstreams
from tests.conftest import upstreams_json

LIST = "/api/v1/employees"


def demo_cfg(demo_upstream, **entry):
    return parse_upstreams(upstreams_json(demo_upstream.base_url, **entry))["demo"]


def read(cache, upstream, item=None):
    """One read through the cache, as the route does it."""
    url = upstream.url_for(item)
    return cache.get(cache_api.url_key(upstream, url),
                     cache_api.load_from(upstream, url, UpstreamClient()),
                     cache_api.policy_of(upstream))


@pytest.fixture
def cache(memcached_env):
    return ReadThroughCache(get_memcached(), jitter=0)


def test_miss_then_hit_with_the_upstream_body(cache, demo_upstream):
    upstream = demo_cfg(demo_upstream, ttl=60)
    first = read(cache, upstream)
    second = read(cache, upstream)
    assert (first.status, second.status) == (CacheStatus.MISS, CacheStatus.HIT)
    assert json.loads(second.entry.value)["data"][0]["id"] == 1
    assert second.entry.value == first.entry.value
    assert second.entry.meta == "application/json"
    assert demo_upstream.calls[LIST] == 1


def test_age_counts_seconds_since_the_upstream_answered(memcached_env, demo_upstream):
    now = [1_000_000.0]
    cache = ReadThroughCache(get_memcached(), jitter=0, clock=lambda: now[0])
    upstream = demo_cfg(demo_upstream, ttl=60)
    assert read(cache, upstream).age == 0
    now[0] += 42.7
    hit = read(cache, upstream)
    assert (hit.status, hit.age) == (CacheStatus.HIT, 42)


def test_after_the_ttl_exactly_one_refresh_while_others_get_the_stale_copy(
        cache, demo_upstream):
    upstream = demo_cfg(demo_upstream, ttl=0.3)
    assert read(cache, upstream).status == CacheStatus.MISS
    time.sleep(0.35)
    demo_upstream.delay = 0.3  # the refresh takes a while: the others arrive meanwhile
    barrier = threading.Barrier(20)
    statuses = []

    def one():
        barrier.wait()
        statuses.append(read(cache, upstream).status)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert demo_upstream.calls[LIST] == 2  # the first load and exactly one refresh
    assert sorted(statuses).count(CacheStatus.MISS) == 1
    assert statuses.count(CacheStatus.STALE) == 19
    assert read(cache, upstream).status == CacheStatus.HIT


def test_100_concurrent_requests_for_a_cold_key_call_the_upstream_once(
        memcached_env, demo_upstream):
    upstream = demo_cfg(demo_upstream, ttl=60)
    demo_upstream.delay = 0.3
    # One client per caller, as 100 Lambda containers would each have their own.  100
    # threads share two cores here, where 100 Lambdas would have one each: a longer
    # memcached timeout keeps a starved thread's connect from counting as a dead node.
    settings = dataclasses.replace(memcached_env, memcached_timeout=5.0)
    callers = [ReadThroughCache(make_memcached(settings), jitter=0) for _ in range(100)]
    barrier = threading.Barrier(100)
    results = []

    def one(cache):
        barrier.wait()
        results.append(read(cache, upstream))

    threads = [threading.Thread(target=one, args=(c,)) for c in callers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in callers:
        c.mc.close()
    assert demo_upstream.total_calls() == 1
    assert len(results) == 100
    assert {r.entry.value for r in results} == {results[0].entry.value}
    assert [r.status for r in results].count(CacheStatus.MISS) == 1
    assert [r.status for r in results].count(CacheStatus.HIT) == 99


def test_upstream_failing_serves_the_stale_copy(cache, demo_upstream):
    upstream = demo_cfg(demo_upstream, ttl=0.2)
    good = read(cache, upstream)
    time.sleep(0.25)
    demo_upstream.mode = "fail"
    stale = read(cache, upstream)
    assert stale.status == CacheStatus.STALE
    assert stale.entry.value == good.entry.value
    # The failure is remembered briefly: the next caller gets the copy without
    # another call to the failing upstream.
    assert read(cache, upstream).status == CacheStatus.STALE
    assert demo_upstream.calls[LIST] == 2
    demo_upstream.mode = "ok"
    time.sleep(2.05)  # the failure hold (1-2 s) is over: the next read refreshes
    assert read(cache, upstream).status == CacheStatus.MISS
    assert read(cache, upstream).status == CacheStatus.HIT


def test_upstream_hanging_serves_stale_within_its_timeout(cache, demo_upstream):
    upstream = demo_cfg(demo_upstream, ttl=0.2, timeout=0.5)
    read(cache, upstream)
    time.sleep(0.25)
    demo_upstream.mode = "hang"
    started = time.monotonic()
    result = read(cache, upstream)
    assert result.status == CacheStatus.STALE
    assert time.monotonic() - started < 2.0


def test_no_stale_copy_gives_502_and_504_to_every_waiting_caller(cache, demo_upstream):
    upstream = demo_cfg(demo_upstream, ttl=60, timeout=0.5)
    demo_upstream.mode = "fail"
    with pytest.raises(UpstreamFailed) as failed:
        read(cache, upstream, "1")
    assert failed.value.details["upstream_status"] == 500

    demo_upstream.mode = "hang"
    errors = []

    def one():
        try:
            read(cache, upstream, "2")
        except (UpstreamFailed, UpstreamTimeout) as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [type(e) for e in errors] == [UpstreamTimeout] * 5
    assert time.monotonic() - started < 2.0
    assert demo_upstream.calls["/api/v1/employee/2"] == 1  # the waiters did not pile on


def test_a_404_is_cached_for_the_shorter_negative_ttl(cache, demo_upstream):
    upstream = demo_cfg(demo_upstream, ttl=60, negative_ttl=0.3)
    first = read(cache, upstream, "999")
    second = read(cache, upstream, "999")
    assert (first.status, second.status) == (CacheStatus.MISS, CacheStatus.HIT)
    assert second.entry.value is None
    time.sleep(0.35)
    assert read(cache, upstream, "999").status == CacheStatus.MISS
    assert demo_upstream.calls["/api/v1/employee/999"] == 2
    assert read(cache, upstream, "3").entry.value is not None  # other items unaffected


def test_a_value_over_the_item_limit_is_served_uncached(cache, demo_upstream):
    big = parse_upstreams(json.dumps({"demo": {"url": demo_upstream.base_url + "/big",
                                               "ttl": 60}}))["demo"]
    first, second = read(cache, big), read(cache, big)
    assert (first.status, second.status) == (CacheStatus.MISS, CacheStatus.MISS)
    assert len(first.entry.value) > 1024 * 1024
    assert json.loads(second.entry.value)["status"] == "success"
    assert demo_upstream.calls["/api/v1/big"] == 2
    # Nothing large was stored: only the small "too large" marker.
    assert len(get_memcached().get(cache_api.cache_key(big, None))) < 100


def test_ttl_jitter_only_shortens(memcached_env, demo_upstream):
    cache = ReadThroughCache(get_memcached(), jitter=0.5, rng=iter([0.0, 0.999]).__next__)
    upstream = demo_cfg(demo_upstream, ttl=100)
    a, b = read(cache, upstream, "1").entry, read(cache, upstream, "2").entry
    assert a.fresh_until - a.fetched_at == pytest.approx(100)
    assert b.fresh_until - b.fetched_at == pytest.approx(50, abs=0.1)


def test_entries_are_stored_compactly_and_read_back():
    body = json.dumps([{"id": i, "employee_name": "Tiger Nixon"} for i in range(200)]).encode()
    entry = Entry(body, "application/json", 1_700_000_000.5, 1_700_000_300.5)
    raw = encode(entry)
    assert len(raw) < len(body) / 5  # repetitive JSON compresses
    assert decode(raw) == entry
    negative = Entry(None, "", 1.0, 2.0)
    assert decode(encode(negative)) == negative
    assert decode(b"garbage from an older format") is None


def test_without_the_lock_nobody_waits_and_a_value_bounds_its_own_freshness(memcached_env):
    # The QR lookup's use: another caller holding the key's lock does not hold this one,
    # and a value that dies in 20 s is not kept for the policy's 300 s.
    now = [1_000_000.0]
    cache = ReadThroughCache(get_memcached(), jitter=0, clock=lambda: now[0])
    policy = Policy(ttl=300, negative_ttl=0, stale_ttl=0, timeout=1, lock=False)
    loads = []

    def load(_deadline):
        loads.append(now[0])
        return Loaded(b"record", ttl=20)

    assert get_memcached().add("qr-like:lock", b"1", expire=10, noreply=False)
    started = time.monotonic()
    first = cache.get("qr-like", load, policy)
    assert time.monotonic() - started < 0.1
    assert first.status == CacheStatus.MISS and first.entry.fresh_until == now[0] + 20
    assert cache.get("qr-like", load, policy).status == CacheStatus.HIT
    now[0] += 21  # past the value's own lifetime, well inside the policy's ttl
    assert cache.get("qr-like", load, policy).status == CacheStatus.MISS
    assert len(loads) == 2


def test_not_found_with_nothing_to_keep_is_not_stored(memcached_env):
    cache = ReadThroughCache(get_memcached(), jitter=0)
    policy = Policy(ttl=300, negative_ttl=0, stale_ttl=0, timeout=1, lock=False)
    answers = iter([Loaded(None), Loaded(b"created meanwhile")])
    first = cache.get("made-later", lambda _: next(answers), policy)
    assert (first.status, first.entry.value) == (CacheStatus.MISS, None)
    assert get_memcached().get("made-later") is None
    second = cache.get("made-later", lambda _: next(answers), policy)
    assert (second.status, second.entry.value) == (CacheStatus.MISS, b"created meanwhile")
