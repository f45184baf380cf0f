"""The PULSE_* port variables move the whole local stack: `make run`'s servers, and the
app, the CLI and the event runner that reach them (chalicelib.settings.LocalPorts)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis

from chalicelib.settings import PORT_VARS, LocalPorts, Settings, SettingsError
from local import stack
from tests.conftest import ROOT

MOVED = {"PULSE_REDIS_PORT": "16479", "PULSE_MEMCACHED_PORTS": "21311,21312,21313",
         "PULSE_MOTO_PORT": "15100", "PULSE_HTTP_PORT": "8100",
         "PULSE_DEMO_UPSTREAM_PORT": "18180"}


def test_every_local_default_follows_the_port_variables():
    assert set(MOVED) == set(PORT_VARS.values())
    s = Settings.from_env(MOVED)
    assert s.redis_url == "redis://127.0.0.1:16479/0"
    assert s.memcached_servers == ("127.0.0.1:21311", "127.0.0.1:21312", "127.0.0.1:21313")
    assert s.aws_endpoint_url == "http://127.0.0.1:15100"
    assert json.loads(s.upstreams)["demo"]["url"].startswith("http://127.0.0.1:18180/")
    assert LocalPorts.from_env(MOVED).http == 8100


def test_explicit_variables_win_and_other_stages_get_no_local_endpoint():
    s = Settings.from_env({**MOVED, "REDIS_URL": "redis://cache.example:6379/0",
                           "AWS_ENDPOINT_URL": "http://moto.example:5000"})
    assert (s.redis_url, s.aws_endpoint_url) == ("redis://cache.example:6379/0",
                                                 "http://moto.example:5000")
    prod = Settings.from_env({**MOVED, "PULSE_STAGE": "prod"})
    assert prod.aws_endpoint_url is None  # AWS itself
    assert "127.0.0.1" not in prod.upstreams


def test_make_run_exports_what_the_settings_derive(monkeypatch):
    """stack_env (what `make run` gives its children) and a bare shell with only the PULSE_*
    variables reach the same servers."""
    for name, value in MOVED.items():
        monkeypatch.setenv(name, value)
    exported, derived = Settings.from_env(stack.stack_env()), Settings.from_env(MOVED)
    for name in ("redis_url", "memcached_servers", "aws_endpoint_url", "upstreams"):
        assert getattr(exported, name) == getattr(derived, name)


@pytest.mark.parametrize("name,value", [("PULSE_REDIS_PORT", "redis"),
                                        ("PULSE_MEMCACHED_PORTS", "21211,x"),
                                        ("PULSE_MOTO_PORT", "70000")])
def test_a_bad_port_is_refused_naming_its_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.fixture
def only_port_variables(pulse_env, redis_server, memcached_servers, moto_server):
    """A shell with the session's servers named by PULSE_* alone: no REDIS_URL,
    MEMCACHED_SERVERS, AWS_ENDPOINT_URL, UPSTREAMS or stage (those would hide a miss)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PULSE_", "REDIS_", "MEMCACHED_", "AWS_", "UPSTREAMS",
                                "LEADERBOARD_", "X_BEARER"))}
    env.update({"PULSE_REDIS_PORT": str(redis_server.port),
                "PULSE_MEMCACHED_PORTS": ",".join(str(n.port) for n in memcached_servers),
                "PULSE_MOTO_PORT": str(moto_server.port),
                # moto takes any credentials; the app needs some to sign with
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    return env


def run(env, *argv):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


HEALTH = """
import json
from chalice.test import Client
import app
with Client(app.app, stage_name="local") as client:
    answer = client.http.get("/health")
    print(json.dumps({"status": answer.status_code, "body": json.loads(answer.body)}))
"""


def test_cli_event_runner_and_app_use_the_moved_stack(only_port_variables, redis_server):
    moved = redis.Redis(port=redis_server.port)
    assert moved.dbsize() == 0
    done = run(only_port_variables, "-m", "chalicelib.leaderboard.cli", "ingest", "--json")
    assert done.returncode == 0, done.stderr
    assert moved.dbsize() > 0  # the synthetic tweets were counted in the moved Redis

    moved.flushall()
    fired = run(only_port_variables, "-m", "local.events", "--app-dir", str(ROOT),
                "--fire", "ingest_hashtags")
    assert fired.returncode == 0, fired.stderr
    assert moved.dbsize() > 0

    checked = run(only_port_variables, "-c", HEALTH)
    assert checked.returncode == 0, checked.stderr
    health = json.loads(checked.stdout.strip().splitlines()[-1])
    assert health["status"] == 200, health
    assert {k: v["status"] for k, v in health["body"]["dependencies"].items()} == {
        "redis": "ok", "memcached": "ok", "aws": "ok"}
