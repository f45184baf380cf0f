"""A small Chalice app of our own that proves the local event runner's three paths.

Each handler records what it received in Redis, where the tests read it.
"""
import json

from chalice import Chalice, Rate

from chalicelib.clients import get_redis

app = Chalice(app_name="eventapp")
FAIL_KEY = "eventapp:fail-next"  # set it to make the Kinesis consumer fail once


@app.schedule(Rate(1, unit=Rate.MINUTES))
def every_minute(event):
    get_redis().rpush("eventapp:schedule", json.dumps(event.to_dict()))


@app.on_cw_event({"source": ["pulse.test"], "detail-type": ["Thing Happened"]})
def on_thing(event):
    get_redis().rpush("eventapp:events", json.dumps(event.detail))


@app.on_kinesis_record(stream="pulse-clicks", batch_size=3, starting_position="TRIM_HORIZON")
def on_clicks(event):
    redis = get_redis()
    if redis.delete(FAIL_KEY):
        raise RuntimeError("injected consumer failure")
    records = [r.data.decode() for r in event]
    redis.rpush("eventapp:batches", json.dumps(records))
