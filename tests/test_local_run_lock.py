"""One `make run` per clone, and a cleanup that never takes another run's pid files.
(The same with two real stacks: tests/test_local_stack.py.)"""
from __future__ import annotations

import os
import subprocess
import sys

from local import processes
from local.stack import RunLock
from tests.conftest import ROOT


def sleeper(tmp_path) -> processes.Server:
    return processes.Server("sleeper", None, [sys.executable, "-c", "import time; "
                                              "time.sleep(60)"], tmp_path)


def test_a_server_removes_its_own_pid_file_only(tmp_path):
    server = sleeper(tmp_path).start()
    assert server.pidfile.read_text().split()[0] == str(server.proc.pid)
    server.stop()
    assert not server.pidfile.exists()

    server = sleeper(tmp_path).start()
    other = sleeper(tmp_path / "other").start()  # a later run's server, same pid file name
    try:
        server.pidfile.write_text(other.pidfile.read_text())
        server.stop()
        assert server.pidfile.read_text().split()[0] == str(other.proc.pid)
        assert other.proc.poll() is None
    finally:
        other.stop()


def run_stack(tmp_path, **env):
    env = {**os.environ, "PULSE_DATA_DIR": str(tmp_path), **env}
    return subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_second_run_in_the_clone_says_so_and_touches_nothing(tmp_path):
    lock = RunLock(tmp_path / "run" / "stack.lock")
    assert lock.acquire(http_port=8123) is None  # the first run holds the clone
    pidfile = tmp_path / "run" / "redis.pid"
    pidfile.write_text(f"{os.getpid()}\npython\n")  # one of its servers (this process)
    try:
        second = run_stack(tmp_path)
        assert second.returncode == 1
        message = second.stderr.strip()
        assert "already running" in message and f"pid {os.getpid()}" in message
        assert "http://127.0.0.1:8123/" in message and "Traceback" not in message
        assert pidfile.read_text() == f"{os.getpid()}\npython\n"
    finally:
        lock.release()
    again = RunLock(tmp_path / "run" / "stack.lock")
    assert again.acquire(http_port=1) is None  # released
    again.release()


def test_a_bad_port_variable_stops_make_run_with_one_line(tmp_path):
    done = run_stack(tmp_path, PULSE_REDIS_PORT="sixteen")
    assert done.returncode == 2
    assert "PULSE_REDIS_PORT must be a port number" in done.stderr
    assert "Traceback" not in done.stderr
