"""`make run`: the local stack and the app, in one foreground process.

Starts redis-server, two memcached nodes, moto's server and the slow demo
upstream API (local/demo_upstream.py), provisions the AWS stand-ins, then runs
the event runner and `chalice local --stage local`.
Ctrl-C (or SIGTERM) stops everything it started; a run after a crash first
stops what the crashed run left (pid files in .local/run/), and a run while
another is live in the same clone says so and exits, leaving that one alone.

Ports (env): PULSE_REDIS_PORT, PULSE_MEMCACHED_PORTS (comma-separated),
PULSE_MOTO_PORT, PULSE_DEMO_UPSTREAM_PORT, PULSE_HTTP_PORT; the app, the CLI
and the event runner derive the same ones (chalicelib.settings.LocalPorts).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from chalicelib import settings as settings_mod
from local import processes

ROOT = Path(__file__).resolve().parent.parent
# All local data, logs and pid files live in one ignored folder.
DATA = Path(os.environ.get("PULSE_DATA_DIR", ROOT / ".local"))


# moto accepts any credentials; fixed fake ones keep a developer's real AWS
# credentials out of every local call.
LOCAL_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def local_ports(redis_port: int | None = None, memcached_ports: list[int] | None = None,
                moto_port: int | None = None) -> settings_mod.LocalPorts:
    """The stack's ports: PULSE_*_PORT(S) or the defaults (chalicelib.settings.LocalPorts),
    except those given here (the test fixtures pass their own)."""
    given = {"redis": redis_port, "moto": moto_port,
             "memcached": None if memcached_ports is None else tuple(memcached_ports)}
    return replace(settings_mod.LocalPorts.from_env(),
                   **{k: v for k, v in given.items() if v is not None})


def stack_env(redis_port: int | None = None, memcached_ports: list[int] | None = None,
              moto_port: int | None = None) -> dict[str, str]:
    """The environment the app, the CLI and the event runner see under `make run`: the
    settings' own local defaults for these ports, set explicitly so that nothing in the
    developer's shell (a REDIS_URL, an AWS profile) points them elsewhere."""
    ports = local_ports(redis_port, memcached_ports, moto_port)
    return {
        "PULSE_STAGE": "local",
        "REDIS_URL": ports.redis_url,
        "REDIS_CLUSTER": "false",
        "MEMCACHED_SERVERS": ",".join(ports.memcached_servers),
        "AWS_ENDPOINT_URL": ports.aws_endpoint_url,
        **LOCAL_AWS_CREDENTIALS,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "UPSTREAMS": ports.upstreams,
    }


def use_local_aws_credentials() -> None:
    """This process's AWS calls sign with the fake credentials, never a developer's own."""
    os.environ.update(LOCAL_AWS_CREDENTIALS)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)


def code_mtimes() -> dict[str, float]:
    """What a code reload watches: the deployed code and its config only.

    `chalice local`'s own reloader polls every file under the project,
    .venv and .local included, and restarts on each Redis append; ours
    watches just these.
    """
    files = [ROOT / "app.py", ROOT / ".chalice" / "config.json",
             *(ROOT / "chalicelib").rglob("*.py"), *(ROOT / "chalicelib").rglob("*.html")]
    return {str(f): f.stat().st_mtime for f in files if f.exists()}


class RunLock:
    """One `make run` per clone: an exclusive flock on .local/run/stack.lock, which the
    kernel releases when this process ends, however it ends; so a run after a crash
    proceeds (and stops the crashed run's leftovers by their pid files), while a run
    beside a live one is refused before it touches any of that run's servers or files.
    The file holds the holder's pid and HTTP port, for the refusal's message."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def acquire(self, http_port: int) -> str | None:
        """None once this process holds the lock; else what the file says of the holder."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # held open for the life of the run
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().split()
            f.close()
            pid, port = (holder + ["?", "?"])[:2]
            return f"pid {pid}, http://127.0.0.1:{port}/"
        f.truncate(0)
        f.write(f"{os.getpid()}\n{http_port}\n")
        f.flush()
        self._file = f
        return None

    def release(self) -> None:
        if self._file is not None:
            self._file.truncate(0)
            self._file.close()  # closing the last descriptor releases the flock
            self._file = None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[stack] %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    log = logging.getLogger("pulse.stack")
    try:
        ports = local_ports()
    except settings_mod.SettingsError as exc:
        log.error("%s", exc)
        return 2
    run_dir = DATA / "run"
    lock = RunLock(run_dir / "stack.lock")
    holder = lock.acquire(ports.http)
    if holder is not None:
        log.error("`make run` is already running in this clone (%s); this one exits and "
                  "leaves that one running: stop it first (Ctrl-C in its terminal)", holder)
        return 1
    try:
        return _run(ports, run_dir, log)
    finally:
        lock.release()


def _run(ports: settings_mod.LocalPorts, run_dir: Path, log: logging.Logger) -> int:
    os.environ.update(stack_env())
    use_local_aws_credentials()
    started = time.monotonic()

    servers = [processes.persistent_redis_server(ports.redis, DATA / "redis")]
    for i, port in enumerate(ports.memcached):
        servers.append(processes.memcached_server(port, run_dir, name=f"memcached-{i}"))
    servers.append(processes.moto_server(ports.moto, run_dir))
    py = sys.executable
    servers.append(processes.Server(
        "demo-upstream", ports.demo_upstream,
        [py, "-m", "local.demo_upstream", "--port", str(ports.demo_upstream)], ROOT))
    http_port = ports.http
    apps = [
        processes.Server("events", None, [py, "-m", "local.events", "--app-dir", str(ROOT)],
                         ROOT, rundir=run_dir),
        processes.Server("chalice", http_port,
                         [py, "-m", "local.chalice_local", "local", "--stage", "local",
                          "--host", "127.0.0.1", "--port", str(http_port), "--no-autoreload"],
                         ROOT, rundir=run_dir),
    ]
    started_servers: list[processes.Server] = []

    # SIGTERM (kill, systemd, CI) takes the same clean path as Ctrl-C, and
    # SIGINT is handled even when a shell started us with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for server in servers:
            server.rundir = run_dir  # one folder shows every pid file and log
            started_servers.append(server.start())
            log.info("%s on 127.0.0.1:%d (log: %s)", server.name, server.port,
                     server.logfile)
        from local.provision import provision

        resources = provision(settings_mod.Settings.from_env())
        log.info("AWS resources in moto: %s", resources)
        for app_proc in apps:
            started_servers.append(app_proc.start(timeout=60, stream_output=True))
        log.info("ready in %.1fs: http://127.0.0.1:%d/  (health: /health); Ctrl-C stops all",
                 time.monotonic() - started, http_port)
        seen = code_mtimes()
        while all(s.proc.poll() is None for s in started_servers):
            time.sleep(0.5)
            now = code_mtimes()
            if now != seen:  # reload the app's processes on a code change
                seen = now
                log.info("code changed: restarting chalice local and the event runner")
                for app_proc in apps:
                    app_proc.stop()
                    app_proc.start(timeout=60, stream_output=True)
        log.error("a process of the stack exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:  # a server that would not start (port taken, binary missing)
        log.error("%s", exc)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in reversed(started_servers):
            server.stop()
        log.info("stopped everything")


if __name__ == "__main__":
    sys.exit(main())
