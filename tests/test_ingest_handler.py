"""The scheduled ingest handler, invoked as Lambda would invoke it (chalice.test)."""
from chalice.test import Client

import app as pulse_app
from chalicelib.clients import get_redis
from chalicelib.leaderboard.store import Leaderboard
from tests.conftest import ROOT


def scheduled_event(client):
    return client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={},
        resources=["arn:aws:events:us-east-1:123456789012:rule/pulse-dev-ingest_hashtags"])


def test_scheduled_run_counts_synthetic_tweets_then_resumes_after_them(pulse_env):
    board = Leaderboard(get_redis(), pulse_env.leaderboard_name)
    with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
        name = pulse_env.leaderboard_name  # the one board when LEADERBOARD_BOARDS is unset
        first = client.lambda_.invoke("ingest_hashtags", scheduled_event(client)).payload[name]
        assert first["tweets_counted"] > 0 and first["complete"], first
        total = sum(e.score for e in board.top("all", n=100))
        assert total > 0 and board.size("all") > 0
        # A second run starts after the first's checkpoint: nothing is counted twice.
        second = client.lambda_.invoke("ingest_hashtags", scheduled_event(client)).payload[name]
    assert int(second["checkpoint"]["since_id"]) >= int(first["checkpoint"]["since_id"])
    assert second["tweets_seen"] <= 2 < first["tweets_seen"]  # only what is newer is read
