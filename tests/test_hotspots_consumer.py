"""The Kinesis consumer of clicks: idempotent per shard sequence number,
malformed records skipped; hotspots read once per window version; on a standalone
Redis and on a Redis Cluster."""
import base64
import itertools
import json
import logging

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.hotspots.consumer import HotspotConsumer
from chalicelib.hotspots.reader import HotspotReader
from chalicelib.hotspots.store import MALFORMED_KEY, HotspotStore, page_keys
from tests.conftest import real_redis

SHARD = "shardId-000000000000"
T0 = 1_764_460_800.0  # arrival time (s) of the first record
_pages = itertools.count()


@pytest.fixture(params=["standalone", "cluster"])
def r(request):
    client = real_redis(request)
    client.delete(MALFORMED_KEY)
    yield client
    client.close()


class Clock:
    def __init__(self, now=T0 + 10):
        self.now = now

    def __call__(self):
        return self.now


def consumer(r, max_clicks=1000, window_seconds=600):
    return HotspotConsumer(HotspotStore(r, max_clicks, window_seconds))


def reader(c, clock=None):
    return HotspotReader(c.store, scan_radius=0.02, min_points=5, clock=clock or Clock())


def record(page, x, y, seq, shard=SHARD, at=T0, data=None):
    if data is None:
        data = json.dumps({"p": page, "s": "sess", "x": x, "y": y, "t": 1}).encode()
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "sess",
                        "sequenceNumber": str(seq),
                        "data": base64.b64encode(data).decode(),
                        "approximateArrivalTimestamp": at},
            "eventSource": "aws:kinesis", "eventID": f"{shard}:{seq}",
            "eventName": "aws:kinesis:record"}


def cluster_of(page, n, x, y, first_seq, **kwargs):
    """n clicks around (x, y), a hotspot when n >= 5."""
    return [record(page, x + (i % 3) * 0.001, y + (i // 3) * 0.001, first_seq + i, **kwargs)
            for i in range(n)]


def state(r, page):
    win, meta, result = page_keys(page)
    return r.lrange(win, 0, -1), r.hgetall(meta), r.get(result)


def test_a_batch_makes_a_window_and_hotspots(r):
    page = f"p{next(_pages)}"
    c = consumer(r)
    got = c.consume(cluster_of(page, 8, 0.5, 0.5, 100) + [record(page, 0.9, 0.1, 200)])
    assert (got.records, got.applied, got.malformed, got.pages) == (9, 9, 0, {page: 9})
    saved = reader(c).read(page)
    [spot] = saved["hotspots"]
    assert spot["count"] == 8 and spot["min"] == [0.5, 0.5]
    assert saved["clicks"] == 9 and len(c.store.window(page)) == 9
    assert reader(c).read("never-clicked") is None


def test_a_redelivered_batch_changes_neither_state_nor_hotspots(r):
    page = f"p{next(_pages)}"
    c = consumer(r)
    clock = Clock()
    batch = cluster_of(page, 6, 0.2, 0.2, 10)
    c.consume(batch)
    first = reader(c, clock).read(page)
    before = state(r, page)
    clock.now += 5  # a recomputation now would have a later computed_at
    again = c.consume(batch)
    assert again.applied == 0 and again.pages == {page: 0}
    assert state(r, page) == before
    assert reader(c, clock).read(page) == first
    # A partial redelivery (Lambda retrying from a checkpoint) adds only the new records.
    more = c.consume(batch[3:] + cluster_of(page, 2, 0.6, 0.6, 16))
    assert more.applied == 2
    assert len(c.store.window(page)) == 8
    after = reader(c, clock).read(page)
    assert after["clicks"] == 8 and after["computed_at"] == clock.now


def test_a_batch_of_many_pages_is_applied_in_one_round_trip_and_only_once(r):
    pages = [f"p{next(_pages)}" for _ in range(5)]  # spread over the cluster's slots
    c = consumer(r)
    batch = [record(pages[i % 5], 0.1 * (i % 5), 0.5, 1000 + i) for i in range(50)]
    r.script_flush()  # the pipeline meets NOSCRIPT and runs those scripts again, once
    got = c.consume(batch)
    assert got.applied == 50 and got.pages == {p: 10 for p in pages}
    assert c.consume(batch).applied == 0
    assert [len(c.store.window(p)) for p in pages] == [10] * 5


def test_sequence_numbers_are_per_shard_and_compared_as_numbers(r):
    page = f"p{next(_pages)}"
    c = consumer(r)
    c.consume([record(page, 0.1, 0.1, 99, shard="shardId-000000000001")])
    # a shorter number is smaller even when its first digit is larger ("99" < "100")
    assert c.consume([record(page, 0.1, 0.1, 100, shard="shardId-000000000001")]).applied == 1
    assert c.consume([record(page, 0.1, 0.1, 98, shard="shardId-000000000001")]).applied == 0
    # another shard has its own position
    assert c.consume([record(page, 0.1, 0.1, 5, shard="shardId-000000000002")]).applied == 1


def test_a_poison_record_is_counted_and_does_not_stop_the_records_behind_it(r, caplog):
    page = f"p{next(_pages)}"
    c = consumer(r)
    batch = [record(page, 0.3, 0.3, 1),
             record(page, 0, 0, 2, data=b"\xff not json"),
             record(page, 0, 0, 3, data=json.dumps({"p": page, "x": "NaN", "y": 0}).encode()),
             record(page, 0, 0, 4, data=b'{"p": "x", "x": NaN, "y": 0.5}'),
             record(page, 0, 0, 5, data=json.dumps({"p": page, "x": 1.5, "y": 0}).encode()),
             record(page, 0, 0, 6, data=json.dumps([1, 2]).encode()),
             record(page, 0, 0, 7, data=b"[" * 200_000),  # too deep for any parser
             {"kinesis": {"data": "%%%"}, "eventID": "x"},
             *cluster_of(page, 5, 0.7, 0.7, 8)]
    with caplog.at_level(logging.WARNING, logger="pulse.hotspots"):
        got = c.consume(batch)
    assert (got.records, got.applied, got.malformed) == (13, 6, 7)
    assert got.pages == {page: 6}
    assert len(reader(c).read(page)["hotspots"]) == 1
    assert int(r.get(MALFORMED_KEY)) == 7
    assert sum("malformed click record" in m for m in caplog.messages) == 7


def test_the_window_is_bounded_by_count_and_by_time(r):
    page = f"p{next(_pages)}"
    c = consumer(r, max_clicks=10, window_seconds=60)
    c.consume(cluster_of(page, 12, 0.4, 0.4, 1))
    assert len(c.store.window(page)) == 10  # count bound
    clock = Clock(T0 + 30)
    assert len(reader(c, clock).read(page)["hotspots"]) == 1
    # a minute later with no new click, the hotspot has left the window
    clock.now = T0 + 61
    assert reader(c, clock).read(page)["hotspots"] == []
    # a new click 2 minutes later drops the old ones from the stored window too
    c.consume([record(page, 0.9, 0.9, 50, at=T0 + 120)])
    assert [(w.x, w.y) for w in c.store.window(page)] == [(0.9, 0.9)]


def test_only_the_newer_window_saves_its_hotspots(r):
    page = f"p{next(_pages)}"
    store = HotspotStore(r, 1000, 600)
    first = store.apply(page, SHARD, [("1", 1000, 0.1, 0.1)])
    second = store.apply(page, "shardId-000000000001", [("1", 1000, 0.2, 0.2)])
    assert store.save_result(page, second.version, {"hotspots": [], "n": 2})
    assert not store.save_result(page, first.version, {"hotspots": [], "n": 1})
    assert store.current(page) == (second.version, {"hotspots": [], "n": 2,
                                                    "version": second.version})


# --- any record a stream may carry --------------------------------------------------------

json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["p", "x", "y", "s", "t"]) | st.text(max_size=3), inner, max_size=4),
    max_leaves=8)
junk_data = st.one_of(st.binary(max_size=40),
                      json_junk.map(lambda v: json.dumps(v, allow_nan=True).encode()))
junk_record = st.one_of(
    junk_data.map(lambda d: ("junk", d)),
    st.dictionaries(st.sampled_from(["kinesis", "eventID", "data"]) | st.text(max_size=5),
                    json_junk, max_size=3).map(lambda d: ("raw", d)))
good_click = st.tuples(st.floats(0, 1), st.floats(0, 1)).map(lambda xy: ("good", xy))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.one_of(good_click, junk_record), max_size=25))
def test_any_batch_applies_exactly_its_good_clicks_and_skips_the_rest(r, batch):
    page = f"fuzzed-page-{next(_pages):024d}"  # longer than any junk's text: junk is never it
    records, good = [], 0
    for seq, (kind, value) in enumerate(batch, start=1):
        if kind == "good":
            records.append(record(page, *value, seq))
            good += 1
        elif kind == "junk":
            records.append(record(page, 0, 0, seq, data=value))
        else:
            records.append(value)
    got = consumer(r).consume(records)  # never raises on what a stream carries
    assert got.records == len(records)
    assert got.pages.get(page, 0) == good  # every good click, whatever junk is around it
    # the rest is malformed, or by chance a click of another page (or one it had seen)
    assert got.applied + got.malformed <= len(records)
    assert consumer(r).consume(records).pages.get(page, 0) == 0  # redelivered: not twice


class Flaky:
    """A store whose first `failures` calls of each write raise as a down Redis does."""

    def __init__(self, store, failures, error=redis.ConnectionError):
        self.store, self.failures, self.error, self.calls = store, failures, error, 0

    def apply_many(self, groups, replay=False):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error("Redis is down")
        return self.store.apply_many(groups, replay=replay)

    def count_malformed(self, n):
        return self.store.count_malformed(n)

    def track(self, newest):
        return self.store.track(newest)


def test_redis_down_for_a_while_is_waited_out_not_skipped(redis_server):
    """Found by the fault drills: a batch given up on is lost for good (the window moves
    past its sequence numbers), so an outage shorter than retry_seconds applies every
    click once, and a longer one still raises for Lambda's own retries."""
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    client.delete(MALFORMED_KEY)
    page = f"flaky-{next(_pages)}"
    slept = []
    clock = Clock(0.0)

    def sleep(s):
        slept.append(s)
        clock.now += s

    flaky = Flaky(HotspotStore(client, 1000, 600), failures=4)
    c = HotspotConsumer(flaky, retry_seconds=5.0, sleep=sleep, clock=clock)
    batch = cluster_of(page, 6, 0.5, 0.5, 1) + [record(page, 0.1, 0.1, 7, data=b"junk")]
    got = c.consume(batch)
    assert (got.applied, got.malformed, flaky.calls) == (6, 1, 5)
    assert slept == [0.1, 0.2, 0.4, 0.8]  # backoff doubles
    assert c.consume(batch).applied == 0  # still once
    assert int(client.get(MALFORMED_KEY)) == 2  # counted per delivery, after the apply

    down = HotspotConsumer(Flaky(flaky.store, failures=100), retry_seconds=3.0, sleep=sleep,
                           clock=clock)
    with pytest.raises(redis.ConnectionError):
        down.consume(cluster_of(f"flaky-{next(_pages)}", 3, 0.5, 0.5, 1))
    # not a dependency failure: no retry at all
    broken = Flaky(flaky.store, failures=1, error=redis.ResponseError)
    with pytest.raises(redis.ResponseError):
        HotspotConsumer(broken, retry_seconds=5.0, sleep=sleep, clock=clock).consume(batch)
    assert broken.calls == 1
    client.close()
