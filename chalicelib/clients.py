"""Lazily created clients, one of each per container (Lambda reuses them).

Nothing here connects or imports a client library at import time: each
handler pays only for the clients it uses (cold starts).  Every client has
explicit connect/read timeouts so a hung dependency fails fast.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.aws_secrets import SecretCache
from chalicelib.settings import get_settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    import redis
    from pymemcache.client.hash import HashClient

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _boto3_session():
    import boto3  # deferred: ~150 ms of import

    return boto3.session.Session(region_name=get_settings().region)


@cache
def get_aws_client(service: str, *, background: bool = False, attempts: int | None = None):
    """A boto3 client with botocore's `standard` retry mode and tight timeouts.

    The AWS_ENDPOINT_URL setting (moto's server on the local stage) points every
    client at moto locally.  `attempts` is botocore's total_max_attempts (the first call
    included); 1 is for callers that retry by themselves within a deadline
    (botocore's backoff would not know it).

    Two kinds, so that a hung AWS gives a route's 503 within 2 s (measured in
    BENCHMARKS.md, "A hung AWS"):

    - request paths (the default): the routes and what they call: QR's S3,
      DynamoDB and EventBridge, /health's DynamoDB, POST /clicks' Kinesis, and
      Secrets Manager (the Redis password is read when a connection is made, on
      a request).  Each attempt waits PULSE_AWS_READ_TIMEOUT (0.5 s), a call makes
      PULSE_AWS_ATTEMPTS (2), and inside a route the calls share the request's
      PULSE_AWS_BUDGET (chalicelib.budget, chalicelib.aws_limits).  The scheduled
      ingest's X token read shares the Secrets Manager client, without a budget:
      a failed read fails that run, and the next run reads again;
    - `background=True`: the local event runner (its long polls need more than
      0.5 s) and provisioning (local stack, rehearsal): PULSE_READ_TIMEOUT (1 s)
      and 4 attempts, no budget.  Nobody waits on them for an answer, and giving
      up early would only fail a setup step.  The app's SQS and Kinesis consumers
      use Redis only; deploy tooling runs Terraform and Chalice, not these clients.
    """
    from botocore.config import Config

    s = get_settings()
    config = Config(
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout if background else s.aws_read_timeout,
        retries={"mode": "standard",
                 "total_max_attempts": attempts or (4 if background else s.aws_attempts)},
        # botocore still presigns S3 URLs with SigV2 unless told; SigV4 is what
        # every region accepts (and the only one for KMS-encrypted objects).
        **({"signature_version": "s3v4"} if service == "s3" else {}),
    )
    with _lock:  # boto3 sessions are not thread-safe while creating clients
        client = _boto3_session().client(service, config=config,
                                         endpoint_url=s.aws_endpoint_url)
    if not background:
        from chalicelib.aws_limits import RequestLimits

        RequestLimits(attempt_seconds=s.aws_read_timeout).install(client)
    return client


def read_secret(secret_id: str) -> str:
    """One Secrets Manager read (the secret cache's fetch)."""
    return get_aws_client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


@lru_cache(maxsize=1)
def get_secrets() -> SecretCache:
    """This container's secret cache: values kept SECRET_TTL_SECONDS."""
    return SecretCache(read_secret, get_settings().secret_ttl_seconds)


def get_secret(secret_id: str, *, max_age: float | None = None,
               clock: Callable[[], float] = time.monotonic) -> str:
    """A secret's value through the container's cache (see chalicelib.aws_secrets)."""
    return get_secrets().get(secret_id, max_age=max_age, clock=clock)


def forget_secrets() -> None:
    """Drop every cached secret value."""
    get_secrets().clear()


def _redis_kwargs(read_timeout: float, connect_timeout: float | None = None) -> dict[str, Any]:
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    s = get_settings()
    return {
        "socket_connect_timeout": s.connect_timeout if connect_timeout is None
        else connect_timeout,
        "socket_timeout": read_timeout,
        # One quick retry covers a connection the server closed while the
        # container was frozen.  Not on timeouts: a server that did not answer
        # in read_timeout will not answer a retry either, and waiting twice
        # would break the 2 s answer budget.
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1,
                       supported_errors=(RedisConnectionError,)),
        "decode_responses": True,
    }


def make_redis(read_timeout: float | None = None,
               connect_timeout: float | None = None) -> redis.Redis:
    """A new Redis client for the configured server or cluster (MemoryDB)."""
    s = get_settings()
    kwargs = _redis_kwargs(s.read_timeout if read_timeout is None else read_timeout,
                           connect_timeout)
    url = s.redis_url
    if s.redis_password_secret_arn:
        # The password is read per connection from Secrets Manager (TTL-cached)
        # and read again when refused: rotations reach warm containers.
        from chalicelib.redis_auth import secret_auth_options

        url, auth = secret_auth_options(url, s.redis_username, s.redis_password_secret_arn,
                                        get_secrets())
        kwargs.update(auth)
    elif s.redis_username:
        kwargs["username"] = s.redis_username
    if s.redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(url, **kwargs)
    import redis

    return redis.Redis.from_url(url, **kwargs)


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return make_redis()


@lru_cache(maxsize=1)
def get_memcached() -> HashClient:
    """pymemcache's HashClient over every node (consistent hashing), TLS when the
    stage says so, nodes from auto discovery when a configuration endpoint is set.

    A node that fails is skipped at once (its keys rehash to the live nodes) and
    tried again after MEMCACHED_DEAD_SECONDS: see chalicelib/cache/memcached.py.
    """
    from chalicelib.cache.memcached import make_memcached

    return make_memcached(get_settings())


def reset_clients() -> None:
    """Forget cached settings and clients (tests, and after config changes)."""
    get_settings.cache_clear()
    for cached in (get_redis, get_memcached):
        if cached.cache_info().currsize:
            try:
                cached().close()
            except Exception:  # closing a broken client is best effort
                pass
        cached.cache_clear()
    get_aws_client.cache_clear()
    get_secrets.cache_clear()
    _boto3_session.cache_clear()
