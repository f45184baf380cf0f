"""Secrets that rotate: values are cached for SECRET_TTL_SECONDS, not for the
life of a container, and the Redis client reads the password again when the
server rejects it, so rotating the MemoryDB password (two passwords at once,
then the old one removed) fails no request of a warm client."""
from __future__ import annotations

import threading
import time

import pytest
import redis

from chalicelib.clients import get_aws_client, get_redis, get_secret, get_secrets, reset_clients

USER = "pulse-rotation-test"


class AclNodes:
    """The same ACL user on every node of a server or cluster (MemoryDB replicates users)."""

    def __init__(self, ports: list[int]):
        self.nodes = [redis.Redis(port=p, decode_responses=True) for p in ports]

    def setuser(self, **kwargs) -> None:
        for node in self.nodes:
            # enabled=True: redis-py's acl_setuser would otherwise switch the user off.
            node.acl_setuser(USER, enabled=True, **kwargs)

    def drop_connections(self) -> None:
        for node in self.nodes:
            node.client_kill_filter(user=USER)

    def close(self) -> None:
        for node in self.nodes:
            node.acl_deluser(USER)
            node.close()


@pytest.fixture(params=["standalone", "cluster"])
def acl_user(request, pulse_env, redis_server, monkeypatch):
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        ports = [n.port for n in cluster]
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{ports[0]}")
        monkeypatch.setenv("REDIS_CLUSTER", "true")
    else:
        ports = [redis_server.port]
    nodes = AclNodes(ports)
    nodes.setuser(passwords=["+pw-one"], keys=["*"], channels=["*"], commands=["+@all"])
    yield nodes
    nodes.close()


def put_secret(name: str, value: str) -> str:
    sm = get_aws_client("secretsmanager")
    try:
        return sm.create_secret(Name=name, SecretString=value)["ARN"]
    except sm.exceptions.ResourceExistsException:
        return sm.put_secret_value(SecretId=name, SecretString=value)["ARN"]


def test_a_secret_is_read_again_after_its_ttl(pulse_env):
    arn = put_secret("pulse/test/token", "first")
    now = [1000.0]
    assert get_secret(arn, max_age=60, clock=lambda: now[0]) == "first"
    put_secret("pulse/test/token", "second")
    now[0] += 59
    assert get_secret(arn, max_age=60, clock=lambda: now[0]) == "first"  # cached
    now[0] += 2
    assert get_secret(arn, max_age=60, clock=lambda: now[0]) == "second"


def rotate(acl: AclNodes, secret_name: str) -> None:
    """The documented rotation: add the new password, publish it, remove the old one."""
    acl.setuser(passwords=["+pw-two"])  # both are accepted now
    put_secret(secret_name, "pw-two")
    acl.setuser(passwords=["-pw-one"])
    # New containers and dropped connections authenticate again from here on.
    acl.drop_connections()


def test_rotating_the_password_under_a_live_client_fails_no_request(acl_user, monkeypatch):
    arn = put_secret("pulse/test/redis", "pw-one")
    monkeypatch.setenv("REDIS_USERNAME", USER)
    monkeypatch.setenv("REDIS_PASSWORD_SECRET_ARN", arn)
    monkeypatch.setenv("SECRET_TTL_SECONDS", "3600")  # only the rejection makes it re-read
    reset_clients()
    client = get_redis()
    assert client.acl_whoami() == USER

    failures: list[BaseException] = []
    done = [0]
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                client.incr("requests")
                done[0] += 1
            except Exception as exc:  # every failure is a failed request
                failures.append(exc)

    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(0.2)
    before = done[0]
    rotate(acl_user, "pulse/test/redis")
    time.sleep(0.3)
    stop.set()
    worker.join(5)
    assert failures == []
    assert done[0] > before  # requests went on after the rotation...
    assert client.get("requests") is not None  # ...on connections made with the new password
    assert get_secret(arn) == "pw-two"
    reset_clients()


def test_a_password_fixed_at_creation_fails_after_the_same_rotation(pulse_env, redis_server):
    """Control: what the client did before (the password read once per container)."""
    acl = AclNodes([redis_server.port])
    acl.setuser(passwords=["+pw-one"], keys=["*"], commands=["+@all"])
    put_secret("pulse/test/redis", "pw-one")
    fixed = redis.Redis(port=redis_server.port, username=USER, password="pw-one")
    fixed.ping()
    rotate(acl, "pulse/test/redis")
    with pytest.raises(redis.exceptions.AuthenticationError):
        fixed.ping()
    fixed.close()
    acl.close()


def test_tls_urls_keep_tls_with_the_secret_password(pulse_env, tmp_path):
    """MemoryDB is rediss://: the secret-password connection must still speak TLS."""
    import subprocess

    from chalicelib.redis_auth import SecretAuthSSLConnection, secret_auth_options
    from local import processes

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    port = processes.free_port()
    server = processes.redis_server(
        processes.free_port(), tmp_path, "--tls-port", str(port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
        "--requirepass", "tls-secret").start()
    try:
        processes.wait_for_port(port)
        arn = put_secret("pulse/test/redis-tls", "tls-secret")
        url, options = secret_auth_options(f"rediss://127.0.0.1:{port}/0", None, arn,
                                           get_secrets())
        assert options["connection_class"] is SecretAuthSSLConnection
        client = redis.Redis.from_url(url, ssl_ca_certs=str(cert), **options)
        assert client.ping()
        assert client.connection_pool.get_connection().__class__ is SecretAuthSSLConnection
        client.close()
    finally:
        server.stop()
