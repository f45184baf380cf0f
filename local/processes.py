"""Start and stop the real servers of the local stack: redis-server, memcached, moto.

Shared by `make run` (local.stack) and the pytest fixtures, so both run the
same binaries the same way.  Children get PR_SET_PDEATHSIG so that a killed
parent never leaves servers behind, and every process writes a pid file so
that a run after a crash can clean up; a server removes its pid file only
while the file still names its own process.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: rely on the pid files instead
        pass


def free_port(below: int = 65536) -> int:
    """A free loopback port; `below` bounds it (a cluster node also needs port+10000)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < below:
            return port
    raise RuntimeError(f"no free port below {below}")


def free_cluster_port() -> int:
    """Redis Cluster listens on port+10000 for its bus, so the port must be <= 55535."""
    return free_port(below=55536)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None,
                  name: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {proc.returncode} before opening port {port}")
        time.sleep(0.05)
    raise TimeoutError(f"{name} did not open port {port} within {timeout}s")


def wait_port_closed(port: int, timeout: float = 5.0) -> bool:
    """True once nothing listens on `port` (a killed server may take a moment to let go)."""
    deadline = time.monotonic() + timeout
    while port_open(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed; `make run` or `make test` installs it "
                           f"(apt-get install {'redis-server' if 'redis' in name else name})")
    return path


@dataclass
class Server:
    """One child process with its port, log and pid file."""

    name: str
    port: int | None  # None: a worker without a port (the event runner)
    argv: list[str]
    workdir: Path
    env: dict | None = None
    rundir: Path | None = None  # pid and log files; defaults to workdir
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pidfile(self) -> Path:
        return (self.rundir or self.workdir) / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return (self.rundir or self.workdir) / f"{self.name}.log"

    def start(self, timeout: float = 20.0, stream_output: bool = False) -> Server:
        """Start in a process group of its own, so stop() also reaches its children."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        kill_stale(self.pidfile)
        if self.port is not None and not wait_port_closed(self.port):
            raise RuntimeError(f"port {self.port} for {self.name} is already in use; "
                               f"set another port (see README) or stop what holds it")
        log = None if stream_output else open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir,
                                     env=self.env, preexec_fn=_die_with_parent,
                                     start_new_session=True)
        if log is not None:
            log.close()
        self.pidfile.write_text(f"{self.proc.pid}\n{Path(self.argv[0]).name}\n")
        if self.port is None:
            return self
        try:
            wait_for_port(self.port, timeout, self.proc, self.name)
        except Exception:
            self.stop()
            tail = "" if stream_output else self.logfile.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} failed to start; log tail:\n{tail}") from None
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None:
            _stop_group(self.proc.pid, timeout)
            self.proc.wait()
            self._remove_own_pidfile()

    def _remove_own_pidfile(self) -> None:
        """Remove the pid file only while it names this server's own process: another
        run that wrote it since keeps it, or no later run could find that server."""
        try:
            pid = int(self.pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if pid == self.proc.pid:
            self.pidfile.unlink(missing_ok=True)

    def pause(self) -> None:
        """SIGSTOP: the process keeps its port but answers nothing (a hung dependency)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp
            members.append(int(stat.parent.name))
    return members


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _stop_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [p for p in _group_members(pgid) if not _is_zombie(p)]:
                return
            time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_stale(pidfile: Path) -> None:
    """Stop what a crashed run left: the pid file's process group, if it still runs our program."""
    try:
        pid_text, program = pidfile.read_text().split("\n")[:2]
        pgid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return
    # A live group id is never reused, but check the members run our program
    # so that a stale file can never stop someone else's processes.
    if any(program in _cmdline(pid) for pid in _group_members(pgid)):
        _stop_group(pgid)
    pidfile.unlink(missing_ok=True)


def redis_server(port: int, workdir: Path, *extra: str, name: str = "redis") -> Server:
    argv = [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(workdir), "--save", "", "--appendonly", "no",
            "--protected-mode", "no", *extra]
    return Server(name, port, argv, workdir)


def persistent_redis_server(port: int, workdir: Path) -> Server:
    """The `make run` Redis: an append-only file so counts survive a restart."""
    return redis_server(port, workdir, "--appendonly", "yes", "--appendfsync", "everysec",
                        "--dbfilename", "dump.rdb", "--save", "300 1")


def memcached_server(port: int, workdir: Path, name: str = "memcached",
                     memory_mb: int = 64, tls: tuple[Path, Path] | None = None) -> Server:
    """memcached on loopback; tls=(certificate chain, key) serves TLS only (as ElastiCache
    with in-transit encryption)."""
    argv = [require_binary("memcached"), "-l", "127.0.0.1", "-p", str(port), "-U", "0",
            "-m", str(memory_mb)]
    if tls is not None:
        argv += ["-Z", "-o", f"ssl_chain_cert={tls[0]},ssl_key={tls[1]}"]
    if os.geteuid() == 0:  # memcached refuses to run as root without -u
        argv += ["-u", "root"]
    return Server(name, port, argv, workdir)


def moto_server(port: int, workdir: Path) -> Server:
    """moto's server, through local.moto_server: its Kinesis and DynamoDB writes are atomic
    as AWS's are (see there)."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    env.pop("AWS_ENDPOINT_URL", None)
    # the file itself, not `-m local.moto_server`: callers may replace env (the deploy
    # rehearsal does), so nothing may depend on PYTHONPATH
    script = str(Path(__file__).resolve().with_name("moto_server.py"))
    return Server("moto", port, [sys.executable, script, "-H", "127.0.0.1", "-p", str(port)],
                  workdir, env=env)


def redis_cluster(ports: list[int], workdir: Path, timeout: float = 30.0) -> list[Server]:
    """A real Redis Cluster with one master per port (no replicas), like MemoryDB's shards."""
    nodes = []
    for i, port in enumerate(ports):
        node_dir = workdir / f"node-{port}"
        node_dir.mkdir(parents=True, exist_ok=True)
        nodes.append(redis_server(port, node_dir, "--cluster-enabled", "yes",
                                  "--cluster-config-file", "nodes.conf",
                                  "--cluster-node-timeout", "2000", name=f"redis-cluster-{i}")
                     .start())
    subprocess.run([require_binary("redis-cli"), "--cluster", "create",
                    *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "0",
                    "--cluster-yes"], check=True, capture_output=True, timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([require_binary("redis-cli"), "-p", str(ports[0]), "cluster", "info"],
                             capture_output=True, text=True).stdout
        if "cluster_state:ok" in out:
            return nodes
        time.sleep(0.1)
    for node in nodes:
        node.stop()
    raise TimeoutError("redis cluster did not reach cluster_state:ok")
