"""`make run`'s stack end to end: it serves /health, survives a crash of
itself, keeps Redis data across restarts, refuses a second run beside a live one,
and leaves nothing behind."""
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import redis

from local import processes
from tests.conftest import ROOT, http_json

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_ports(tmp_path):
    ports = {
        "PULSE_REDIS_PORT": processes.free_port(),
        "PULSE_MEMCACHED_PORTS": f"{processes.free_port()},{processes.free_port()}",
        "PULSE_MOTO_PORT": processes.free_port(),
        "PULSE_DEMO_UPSTREAM_PORT": processes.free_port(),
        "PULSE_HTTP_PORT": processes.free_port(),
    }
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "REDIS_", "MEMC", "UPSTREAMS"))}
    env.update({k: str(v) for k, v in ports.items()}, PULSE_DATA_DIR=str(tmp_path))
    return env


def start_stack(env):
    return subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_healthy(env, proc, timeout=90):
    url = f"http://127.0.0.1:{env['PULSE_HTTP_PORT']}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            status, body = http_json(url, timeout=3)
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("stack never became healthy")


def x_cache(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        return resp.headers["X-Cache"]


def all_ports(env):
    return [int(env["PULSE_REDIS_PORT"]), int(env["PULSE_MOTO_PORT"]),
            int(env["PULSE_HTTP_PORT"]), int(env["PULSE_DEMO_UPSTREAM_PORT"]),
            *map(int, env["PULSE_MEMCACHED_PORTS"].split(","))]


def wait_ports_closed(env, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(processes.port_open(p) for p in all_ports(env)):
            return
        time.sleep(0.1)
    listening = [p for p in all_ports(env) if processes.port_open(p)]
    raise AssertionError(f"still listening: {listening}")


def stop_stack(proc: subprocess.Popen) -> None:
    """Ctrl-C the stack and give it 30 s to exit; kill it whatever happens."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    finally:
        proc.kill()


def test_run_serves_health_then_ctrl_c_stops_everything(stack_ports, tmp_path):
    proc = start_stack(stack_ports)
    try:
        body = wait_healthy(stack_ports, proc)
        assert {k: v["status"] for k, v in body["dependencies"].items()} == {
            "redis": "ok", "memcached": "ok", "aws": "ok"}
        demo = f"http://127.0.0.1:{stack_ports['PULSE_HTTP_PORT']}/upstream/demo/3"
        assert [x_cache(demo) for _ in range(2)] == ["MISS", "HIT"]  # the demo upstream
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    wait_ports_closed(stack_ports)
    assert not list((tmp_path / "run").glob("*.pid"))  # every pid file removed


def test_run_after_a_crash_works_and_keeps_redis_data(stack_ports):
    first = start_stack(stack_ports)
    try:
        wait_healthy(stack_ports, first)
        redis.Redis(port=int(stack_ports["PULSE_REDIS_PORT"])).set("survives", "yes")
        first.send_signal(signal.SIGKILL)  # no clean-up at all
        first.wait(10)
    finally:
        first.kill()
    second = start_stack(stack_ports)
    try:
        wait_healthy(stack_ports, second)
        assert redis.Redis(port=int(stack_ports["PULSE_REDIS_PORT"])).get("survives") == b"yes"
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        second.kill()
    wait_ports_closed(stack_ports)


def pid_files(run_dir):
    return {p.name: p.read_text() for p in run_dir.glob("*.pid")}


def test_a_second_run_refuses_and_the_first_keeps_running(stack_ports, tmp_path):
    first = start_stack(stack_ports)
    try:
        wait_healthy(stack_ports, first)
        before = pid_files(tmp_path / "run")
        assert {"redis.pid", "memcached-0.pid", "memcached-1.pid", "moto.pid", "chalice.pid",
                "events.pid", "demo-upstream.pid"} <= set(before)
        second = start_stack(stack_ports)
        try:
            out, _ = second.communicate(timeout=60)
        finally:
            second.kill()
        assert second.returncode == 1
        assert "already running" in out and f"pid {first.pid}" in out, out
        assert "Traceback" not in out
        # the first run, its servers and its pid files are as they were
        assert first.poll() is None
        assert pid_files(tmp_path / "run") == before
        for text in before.values():
            os.kill(int(text.split()[0]), 0)  # each process still runs
        wait_healthy(stack_ports, first, timeout=10)
        first.send_signal(signal.SIGINT)
        assert first.wait(30) == 0
    finally:
        first.kill()
    wait_ports_closed(stack_ports)
    assert not pid_files(tmp_path / "run")
