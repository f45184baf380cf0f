"""The local event runner delivers schedules, EventBridge events and Kinesis
records to Chalice handlers, through moto's server."""
import json

import pytest

from chalicelib.clients import get_aws_client, get_redis
from local.events import EventRunner, rate_seconds
from tests.eventapp import event_app


@pytest.fixture
def runner(pulse_env):
    now = [1_000_000.0]
    r = EventRunner(event_app.app, settings=pulse_env, clock=lambda: now[0]).setup()
    r.now = now  # the tests move time forward by hand
    return r


def test_rate_expressions():
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(1 hour)") == 3600
    with pytest.raises(ValueError, match="rate"):
        rate_seconds("cron(0 12 * * ? *)")


def test_schedule_fires_on_its_rate_with_a_scheduled_event(runner):
    assert runner.run_due_schedules() == 0  # not due before one interval
    runner.now[0] += 60
    assert runner.run_due_schedules() == 1
    assert runner.run_due_schedules() == 0  # not twice in the same minute
    event = json.loads(get_redis().lindex("eventapp:schedule", 0))
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"


def put_event(bus, source, detail_type, detail):
    resp = get_aws_client("events").put_events(Entries=[{
        "EventBusName": bus, "Source": source, "DetailType": detail_type,
        "Detail": json.dumps(detail)}])
    assert resp["FailedEntryCount"] == 0


def test_only_events_matching_the_rule_reach_the_handler(runner, pulse_env):
    # Chalice subscribes on_cw_event handlers on the default bus in AWS
    # (aws/chalice#1755); the runner does the same, so the app's own bus never
    # reaches them.
    bus = "default"
    put_event(pulse_env.event_bus_name, "pulse.test", "Thing Happened", {"n": 0})
    put_event(bus, "pulse.test", "Thing Happened", {"n": 1})
    put_event(bus, "pulse.other", "Thing Happened", {"n": 2})  # other source
    put_event(bus, "pulse.test", "Other Thing", {"n": 3})  # other detail-type
    put_event(bus, "pulse.test", "Thing Happened", {"n": 4})
    delivered = 0
    for _ in range(5):
        delivered += runner.deliver_events()
    assert delivered == 2
    got = [json.loads(x)["n"] for x in get_redis().lrange("eventapp:events", 0, -1)]
    assert sorted(got) == [1, 4]


def put_clicks(stream, n, key="k"):
    get_aws_client("kinesis").put_records(StreamName=stream, Records=[
        {"Data": f"click-{i}".encode(), "PartitionKey": key} for i in range(n)])


def drain(runner, rounds=10):
    return sum(runner.deliver_records() for _ in range(rounds))


def batches():
    return [json.loads(b) for b in get_redis().lrange("eventapp:batches", 0, -1)]


def test_kinesis_records_arrive_in_order_in_batches(runner, pulse_env):
    put_clicks(pulse_env.click_stream_name, 7)
    assert drain(runner) == 7
    got = batches()
    assert all(len(b) <= 3 for b in got)  # the handler's batch_size
    assert [r for b in got for r in b] == [f"click-{i}" for i in range(7)]


def test_failed_kinesis_batch_is_retried_not_lost(runner, pulse_env):
    put_clicks(pulse_env.click_stream_name, 5)
    get_redis().set(event_app.FAIL_KEY, 1)
    assert drain(runner) == 5
    assert [r for b in batches() for r in b] == [f"click-{i}" for i in range(5)]


def test_firing_an_unknown_schedule_names_the_schedules_in_one_line():
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "-m", "local.events", "--app-dir", str(ROOT),
                           "--fire", "nope"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "local.events: no schedule 'nope'; the schedules are ingest_hashtags"]
    assert done.stdout == ""
