"""MemoryDB is the leaderboard's system of record and runs with maxmemory-policy
noeviction (infra/leaderboard.tf): when memory is full, writes fail loudly and
nothing is half-counted or evicted; once there is room again the ingest resumes
and counts every tweet exactly once."""
from __future__ import annotations

import json

import pytest
import redis

from chalicelib.http import json_api
from chalicelib.leaderboard.ingest import run_ingest
from chalicelib.leaderboard.sources import SyntheticSource
from chalicelib.leaderboard.store import Leaderboard
from local import processes
from tests.conftest import ROOT

NOW = 1_790_000_000.0


@pytest.fixture
def small_redis(tmp_path):
    server = processes.redis_server(processes.free_port(), tmp_path,
                                    "--maxmemory-policy", "noeviction").start()
    client = redis.Redis(port=server.port, decode_responses=True)
    yield client
    client.close()
    server.stop()


def source() -> SyntheticSource:
    return SyntheticSource(seed=7, tweets_per_run=1500, page_size=100, clock=lambda: NOW)


def counts(board: Leaderboard) -> dict[str, int]:
    return {e.hashtag.casefold(): e.score for e in board.top("all", n=100)}


def test_the_terraform_never_lets_memorydb_evict():
    text = (ROOT / "infra" / "leaderboard.tf").read_text()
    assert 'value = "noeviction"' in text and "volatile-" not in text.split("parameter {")[1]
    alarms = (ROOT / "infra" / "alarms.tf").read_text()
    assert '"DatabaseMemoryUsagePercentage"' in alarms and '"AWS/MemoryDB"' in alarms


def test_full_memory_fails_the_ingest_loudly_and_loses_nothing(small_redis):
    board = Leaderboard(small_redis, "campaign")
    first = run_ingest(board, source(), max_pages=3)
    assert first.tweets_counted == 300 and not first.complete
    before, progress = counts(board), board.progress()

    small_redis.config_set("maxmemory", small_redis.info("memory")["used_memory"] - 1024)
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="maxmemory"):
        run_ingest(board, source(), max_pages=5)
    assert counts(board) == before and board.progress() == progress  # nothing half-counted

    small_redis.config_set("maxmemory", 0)  # room again (e.g. a bigger node type)
    while not run_ingest(board, source(), max_pages=50).complete:
        pass
    reference = Leaderboard(small_redis, "reference")
    assert run_ingest(reference, source(), max_pages=50).complete
    assert counts(board) == counts(reference)
    assert sum(counts(board).values()) > sum(before.values())


def test_a_full_redis_answers_503_naming_the_cause(small_redis):
    small_redis.config_set("maxmemory", 1)

    @json_api
    def view():
        return small_redis.set("k", "v")

    response = view()
    body = json.loads(response.body)
    assert response.status_code == 503
    assert body["error"] == "ServiceUnavailable" and "OutOfMemoryError" in body["message"]
