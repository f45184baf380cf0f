"""`python -m chalicelib.leaderboard.cli` on real Redis: in-process through main(argv), and as a
subprocess with the environment `make run` gives (stack_env)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from chalicelib.leaderboard.cli import main
from local import processes
from tests.conftest import ROOT, shared_path


def sample(name: str) -> Path:
    return shared_path("sample-data", "tweets", name)


def counts_in(path: Path, retweets: str = "own") -> Counter:
    """Counted by hand from the file: each tweet once, its entities.hashtags case-folded
    (a retweet's original's, from `includes`, with retweets="original")."""
    tweets, included = {}, {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            page = orjson.loads(line)
            for tweet in page.get("data") or ():
                tweets.setdefault(tweet["id"], tweet)
            included.update({t["id"]: t for t in page.get("includes", {}).get("tweets", ())})
    counts: Counter = Counter()
    for t in tweets.values():
        refs = [r["id"] for r in t.get("referenced_tweets") or () if r["type"] == "retweeted"]
        if refs and retweets == "original":
            t = included[refs[0]]
        counts.update(h["tag"].casefold() for h in (t.get("entities") or {}).get("hashtags") or ())
    return counts


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REDIS_"))}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "chalicelib.leaderboard.cli", *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def test_import_archive_then_leaderboard_json(pulse_env, stack_env):
    path = sample("kpop.jsonl")
    expected = counts_in(path)  # each tweet's own entities: LEADERBOARD_RETWEETS=own
    stack_env = {**stack_env, "LEADERBOARD_RETWEETS": "own"}
    imported = cli(stack_env, "import-archive", str(path))
    assert imported.returncode == 0, imported.stderr
    assert "100 tweets read" in imported.stdout and "100 counted" in imported.stdout
    assert "0 skipped as duplicates" in imported.stdout

    shown = cli(stack_env, "leaderboard", "--json", "--n", "5")
    assert shown.returncode == 0, shown.stderr
    board = json.loads(shown.stdout)
    assert board["window"] == "all" and board["total"] == len(expected)
    got = [(item["rank"], item["hashtag"].lower(), item["score"]) for item in board["items"]]
    best = expected.most_common(5)
    assert got[0] == (1, "kpop", expected["kpop"]) and expected["kpop"] == 94
    assert [score for _, _, score in got] == [score for _, score in best]
    assert {tag: score for _, tag, score in got} == {t: expected[t] for _, t, _ in got}


def test_a_second_import_counts_nothing(pulse_env, capsys):
    paths = [str(sample("kpop.jsonl")), str(sample("2sets.jsonl"))]
    assert main(["import-archive", "--no-progress", *paths]) == 0
    first = capsys.readouterr().out
    assert "300 tweets read from 2 file(s)" in first and "200 counted" in first
    assert "100 skipped as duplicates" in first  # 2sets.jsonl repeats kpop.jsonl
    assert main(["import-archive", "--no-progress", "--json", *paths]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["tweets_read"], second["tweets_counted"], second["skipped_files"]) == (
        0, 0, paths)  # the same files: known by their content hash


def test_leaderboard_table(pulse_env, capsys):
    assert main(["leaderboard"]) == 0
    assert "no hashtags counted yet" in capsys.readouterr().out
    assert main(["import-archive", "--no-progress", str(sample("brexit.jsonl"))]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--window", "all", "--n", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = counts_in(sample("brexit.jsonl"), "original")  # the default policy
    assert lines[0].startswith(f"Top hashtags, window all: {len(expected)} tags")
    assert lines[1].split() == ["rank", "hashtag", "score"]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1].lower(), int(r[2])) for r in rows[:2]] == [
        ("1", "#brexit", expected["brexit"]), ("2", "#johnsonout", expected["johnsonout"])]
    assert len(rows) == 3


def test_ingest_runs_the_configured_source(pulse_env, capsys, monkeypatch):
    # the local stage's default source is the synthetic stream
    assert main(["ingest"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("board default: ingest from synthetic: 5 pages, 500 tweets seen, "
                          "500 counted; "
                          "range complete; checkpoint since_id=")
    assert main(["ingest", "--json", "--max-pages", "1"]) == 0
    result = json.loads(capsys.readouterr().out)["default"]
    assert result["source"] == "synthetic" and result["complete"] is True
    assert main(["leaderboard", "--json", "--n", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["items"][0]["rank"] == 1


def test_a_bad_archive_line_is_one_line_naming_file_and_line(pulse_env, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(sample("kpop.jsonl").read_bytes() + b"{truncated\n")
    assert main(["import-archive", "--no-progress", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pulse: {bad}:2: not valid JSON") and err.count("\n") == 1


def test_missing_file_and_bad_arguments(pulse_env, capsys):
    assert main(["import-archive", "/nonexistent/x.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulse: cannot read /nonexistent/x.jsonl") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "--window", "2h"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("args", [["leaderboard"], ["ingest"],
                                  ["import-archive", "--no-progress", "KPOP"]])
@pytest.mark.parametrize("cluster", [False, True])
def test_redis_down_is_a_one_line_error(args, cluster):
    port = processes.free_port()  # nothing listens there
    args = [str(sample("kpop.jsonl")) if a == "KPOP" else a for a in args]
    env = {"PULSE_STAGE": "local", "REDIS_URL": f"redis://:secret@127.0.0.1:{port}/0",
           "REDIS_CLUSTER": "true" if cluster else "false"}
    done = cli(env, *args, timeout=20)
    assert done.returncode == 2
    assert done.stderr.startswith(f"pulse: cannot reach Redis at redis://:***@127.0.0.1:{port}")
    assert "make run" in done.stderr and "secret" not in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_every_command_takes_a_board(pulse_env, capsys, monkeypatch):
    monkeypatch.setenv("LEADERBOARD_BOARDS", '{"spring": "#a", "autumn": "#b"}')
    monkeypatch.setenv("LEADERBOARD_RETWEETS", "own")
    from chalicelib.clients import reset_clients

    reset_clients()
    assert main(["import-archive", "--no-progress", "--board", "autumn",
                 str(sample("brexit.jsonl"))]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--json", "--board", "autumn"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["total"] == len(counts_in(sample("brexit.jsonl")))
    from chalicelib.leaderboard import api

    api.get_board.cache_clear()
    assert shown == api.top({"board": "autumn"})  # the shape of GET /leaderboard, exactly
    assert main(["leaderboard", "--json"]) == 0  # the first board: nothing there
    assert json.loads(capsys.readouterr().out)["total"] == 0
    assert main(["ingest", "--board", "spring", "--max-pages", "1"]) == 0
    assert capsys.readouterr().out.startswith("board spring: ingest from synthetic: 1 pages")
    assert main(["leaderboard", "--board", "nope"]) == 2
    assert capsys.readouterr().err == "pulse: no board 'nope': the boards are spring, autumn\n"
    assert main(["leaderboard", "--json", "--board", "autumn", "--order", "rising"]) == 0
    assert json.loads(capsys.readouterr().out)["order"] == "rising"
    assert main(["leaderboard", "--n", "500"]) == 2  # the route's own limits
    assert "'n' must be between 1 and 100" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["leaderboard"], ["ingest"], ["import-archive", "KPOP"]])
def test_an_unknown_board_exits_2_with_one_line_from_every_command(pulse_env, capsys, command):
    command = [str(sample("kpop.jsonl")) if a == "KPOP" else a for a in command]
    assert main([*command, "--board", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulse: ") and "nope" in err and err.count("\n") == 1


def test_a_bad_setting_exits_2_with_one_line():
    done = cli({"PULSE_STAGE": "bogus"}, "leaderboard", timeout=20)
    assert done.returncode == 2 and "PULSE_STAGE" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
