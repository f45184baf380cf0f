"""Typed settings, read from the environment in one place, once per container.

This module is the app's environment contract: each field names its variable
once (`_env`), and everything else derives from it: `from_env` parses by the
field's type, `INFRA_ENV_VARS` lists the variables Terraform's
`lambda_environment` output must provide (deploy/configure.py requires exactly
those, tests/test_settings.py checks infra/outputs.tf), and the local stack
sets only what differs from the defaults.

Defaults point at the local stack that `make run` starts, so `chalice local`,
the CLI, the event runner and the tests work with no configuration: its ports
come from the PULSE_*_PORT(S) variables (`LocalPorts`), the one place the local
REDIS_URL, MEMCACHED_SERVERS, AWS_ENDPOINT_URL and UPSTREAMS are derived from.
The dev/prod stages in .chalice/config.json set every value explicitly (see
`make configure`).

Only documented spellings pass, anything else is a `SettingsError` naming the
variable: booleans are true/false, 1/0, yes/no or on/off; enums are one of
their choices; both ignore case and surrounding spaces.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from functools import lru_cache
from typing import Any

# Ports of the local stack; chosen to stay clear of a developer's own
# Redis (6379), memcached (11211) and moto (5000).
LOCAL_REDIS_PORT = 16379
LOCAL_MEMCACHED_PORTS = (21211, 21212)
LOCAL_MOTO_PORT = 15000
LOCAL_HTTP_PORT = 8000
# The demo upstream API that `make run` starts (local/demo_upstream.py).
LOCAL_DEMO_UPSTREAM_PORT = 18080

STAGES = ("local", "dev", "prod", "rehearsal")
LEADERBOARD_SOURCES = ("twitter", "archive", "synthetic")
RETWEET_POLICIES = ("original", "own", "skip")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SCAN_SENDS = ("background", "inline")
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}


def default_upstreams(stage: str, demo_port: int = LOCAL_DEMO_UPSTREAM_PORT) -> str:
    """UPSTREAMS when none is set: the local demo API, or the public example API."""
    if stage == "local":
        base = f"http://127.0.0.1:{demo_port}/api/v1"
        return json.dumps({"demo": {"url": f"{base}/employees",
                                    "item_url": base + "/employee/{item}",
                                    "ttl": 30, "timeout": 1.0, "negative_ttl": 10}})
    base = "https://dummy.restapiexample.com/api/v1"
    return json.dumps({"employees": {"url": f"{base}/employees",
                                     "item_url": base + "/employee/{item}",
                                     "ttl": 300, "timeout": 1.2, "negative_ttl": 60}})


class SettingsError(ValueError):
    """A variable holds a value of the wrong kind; the message names it."""


def _env(*names: str, default: Any, infra: bool = False, choices: tuple[str, ...] = (),
         secret: bool = False) -> Any:
    """A field read from the first non-empty of `names`; `infra`: Terraform provides it;
    `choices`: the only values it takes; `secret`: never shown (repr, as_public_dict)."""
    return field(default=default, repr=not secret,
                 metadata={"env": names, "infra": infra, "choices": choices, "secret": secret})


def _parse(kind: str, name: str, raw: str, choices: tuple[str, ...] = ()) -> Any:
    """A raw variable as the field's annotated type (annotations are strings here)."""
    if choices:
        canonical = {c.casefold(): c for c in choices}.get(raw.strip().casefold())
        if canonical is None:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw[:40]!r}")
        return canonical
    if kind in ("bool", "bool | None"):
        value = _BOOLEANS.get(raw.strip().lower())
        if value is None:
            raise SettingsError(f"{name} must be true or false (also 1/0, yes/no, on/off), "
                                f"got {raw[:40]!r}")
        return value
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number ({kind}), got {raw[:40]!r}") from None
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise SettingsError(f"{name} must be a port number (1-65535), got {raw[:40]!r}")
    return port


# Each port of the local stack and the variable that moves it.
PORT_VARS = {"redis": "PULSE_REDIS_PORT", "memcached": "PULSE_MEMCACHED_PORTS",
             "moto": "PULSE_MOTO_PORT", "http": "PULSE_HTTP_PORT",
             "demo_upstream": "PULSE_DEMO_UPSTREAM_PORT"}


@dataclass(frozen=True)
class LocalPorts:
    """Where the local stack listens, from PULSE_*_PORT(S) (defaults above): `make run`
    starts its servers there, and the settings' local defaults point there, so the app,
    the CLI and the event runner all reach the same stack."""

    redis: int = LOCAL_REDIS_PORT
    memcached: tuple[int, ...] = LOCAL_MEMCACHED_PORTS
    moto: int = LOCAL_MOTO_PORT
    http: int = LOCAL_HTTP_PORT
    demo_upstream: int = LOCAL_DEMO_UPSTREAM_PORT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalPorts:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for attr, name in PORT_VARS.items():
            raw = (env.get(name) or "").strip()
            if not raw:
                continue
            if attr == "memcached":
                values[attr] = tuple(_port(name, p.strip()) for p in raw.split(","))
            else:
                values[attr] = _port(name, raw)
        return cls(**values)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis}/0"

    @property
    def memcached_servers(self) -> tuple[str, ...]:
        return tuple(f"127.0.0.1:{p}" for p in self.memcached)

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.moto}"

    @property
    def upstreams(self) -> str:
        return default_upstreams("local", self.demo_upstream)


@dataclass(frozen=True)
class Settings:
    stage: str = _env("PULSE_STAGE", default="local", choices=STAGES)
    # app + chalicelib loggers (logs.py)
    log_level: str = _env("LOG_LEVEL", default="INFO", choices=LOG_LEVELS)
    region: str = _env("AWS_REGION", "AWS_DEFAULT_REGION", default="us-east-1")
    # Every AWS client's endpoint (chalicelib.clients): moto's server of the local stack
    # on the local stage; unset elsewhere (AWS itself).
    aws_endpoint_url: str | None = _env("AWS_ENDPOINT_URL", default=None)
    # Redis or MemoryDB (cluster mode, TLS, ACL user whose password is a secret).
    redis_url: str = _env("REDIS_URL", default=LocalPorts().redis_url, infra=True)
    redis_cluster: bool = _env("REDIS_CLUSTER", default=False, infra=True)
    redis_username: str | None = _env("REDIS_USERNAME", default=None, infra=True)
    redis_password_secret_arn: str | None = _env("REDIS_PASSWORD_SECRET_ARN", default=None,
                                                 infra=True)
    memcached_servers: tuple[str, ...] = _env(
        "MEMCACHED_SERVERS", default=LocalPorts().memcached_servers, infra=True)
    qr_bucket: str = _env("QR_BUCKET", default="pulse-qr-local", infra=True)
    qr_table: str = _env("QR_TABLE", default="pulse-qr-cache", infra=True)
    event_bus_name: str = _env("EVENT_BUS_NAME", default="pulse-events", infra=True)
    click_stream_name: str = _env("CLICK_STREAM_NAME", default="pulse-clicks", infra=True)
    x_bearer_token_secret_arn: str | None = _env("X_BEARER_TOKEN_SECRET_ARN", default=None,
                                                 infra=True)
    # How long a Secrets Manager value is kept before it is read again (rotation).
    secret_ttl_seconds: float = _env("SECRET_TTL_SECONDS", default=300.0)
    # The X API token itself, for the local stage only (leaderboard.sources refuses it
    # on any other, which reads the secret above): the one secret value held here,
    # hidden from repr and as_public_dict.
    x_bearer_token: str | None = _env("X_BEARER_TOKEN", default=None, secret=True)
    # Hashtag leaderboard.  The source is twitter|archive|synthetic; the local
    # stage defaults to synthetic (no X account needed), every other to twitter.
    leaderboard_name: str = _env("LEADERBOARD_NAME", default="default")
    leaderboard_source: str = _env("LEADERBOARD_SOURCE", default="",  # "": by stage
                                   choices=LEADERBOARD_SOURCES)
    leaderboard_query: str = _env("LEADERBOARD_QUERY", default="#campaign -is:retweet")
    # twarc2 JSONL files for the archive source
    leaderboard_archive: tuple[str, ...] = _env("LEADERBOARD_ARCHIVE", default=())
    # pages of up to 100 tweets per scheduled run
    ingest_max_pages: int = _env("INGEST_MAX_PAGES", default=10)
    ingest_rate_minutes: int = _env("INGEST_RATE_MINUTES", default=5)
    # --- qr ---
    # Cache entries and their images live this long (the bucket's lifecycle
    # deletes objects after 1 day: keep this <= 86400).  Presigned URLs are
    # valid until the entry expires, at most qr_presign_seconds.
    qr_ttl_seconds: int = _env("QR_TTL_SECONDS", default=86400)
    qr_presign_seconds: int = _env("QR_PRESIGN_SECONDS", default=3600)
    # SQS queue the `qr.created` rule feeds; Chalice needs its name when it
    # packages the handler (infra/qr.tf output qr_events_queue_name).
    qr_events_queue: str = _env("QR_EVENTS_QUEUE", default="pulse-qr-events", infra=True)
    qr_recent_max: int = _env("QR_RECENT_MAX", default=20)  # recent creations for the page
    # --- qr events from the table's stream ---
    # The QR table's DynamoDB stream (NEW_IMAGE), which the `qr_item_written` handler
    # reads to put `qr.created` (infra: the table's stream_arn).  Locally the event
    # runner reads the stream of QR_TABLE in moto whatever this says.
    qr_table_stream_arn: str = _env(
        "QR_TABLE_STREAM_ARN",
        default="arn:aws:dynamodb:us-east-1:123456789012:table/pulse-qr-cache/stream/local")
    # A live entry found in DynamoDB is kept in memcached (the read-through cache) for at
    # most this long, never past its own ttl; 0: every lookup is a GetItem.
    qr_cache_seconds: int = _env("QR_CACHE_SECONDS", default=300)
    # --- dynamic qr ---
    # Dynamic QR codes encode <PUBLIC_BASE_URL>/r/<code>: the stage's public origin (and
    # API Gateway stage path, if any); "": http://127.0.0.1:<PULSE_HTTP_PORT> on the local
    # stage, where the creating request reached the API on the others.
    public_base_url: str = _env("PUBLIC_BASE_URL", default="")
    # A dynamic code's target and rules kept in memcached this long (PATCH replaces the
    # copy, so an edit is seen at once).
    qr_dynamic_cache_seconds: int = _env("QR_DYNAMIC_CACHE_SECONDS", default=300)
    # Scan counting in Redis on GET /r/{code}; off: redirects only.
    qr_scan_counting: bool = _env("QR_SCAN_COUNTING", default=True)
    # background: a sender thread counts scans in batches, the redirect never waits;
    # inline: the redirect counts its scan before answering (Lambda freezes threads
    # between invocations).  "": background on the local stage, inline on the others.
    qr_scan_send: str = _env("QR_SCAN_SEND", default="", choices=SCAN_SENDS)
    # How long an inline count waits for Redis (connect and read, seconds); past it the
    # scan is lost and logged, and the redirect answers.  The background sender, which
    # no request waits for, has PULSE_CONNECT_TIMEOUT and PULSE_READ_TIMEOUT.
    qr_scan_timeout: float = _env("QR_SCAN_TIMEOUT", default=0.05)
    # Days a code's per-day counters are kept (each key's TTL).
    qr_scan_days_kept: int = _env("QR_SCAN_DAYS_KEPT", default=400)
    # --- hotspots ---
    # Click hotspots.  Each page keeps a window of its latest clicks: at
    # most hotspots_window_clicks, none older than hotspots_window_seconds (by Kinesis
    # arrival time).  Hotspots are HOTSPOTS(window, scan_radius, min_points) in canvas
    # units (x, y in 0..1): the AWS example's 0.2 on a 10x10 plane is 0.02 here.
    hotspots_window_clicks: int = _env("HOTSPOTS_WINDOW_CLICKS", default=1000)
    hotspots_window_seconds: int = _env("HOTSPOTS_WINDOW_SECONDS", default=600)
    hotspots_scan_radius: float = _env("HOTSPOTS_SCAN_RADIUS", default=0.02)
    hotspots_min_points: int = _env("HOTSPOTS_MIN_POINTS", default=17)
    # PutRecords calls per POST /clicks: the first plus retries of only the failed
    # records, with exponential backoff from hotspots_put_backoff seconds.
    hotspots_put_attempts: int = _env("HOTSPOTS_PUT_ATTEMPTS", default=4)
    hotspots_put_backoff: float = _env("HOTSPOTS_PUT_BACKOFF", default=0.05)
    # How long the click consumer retries a batch while Redis is down or hung, within one
    # invocation (kept below the function's timeout by the handler): a skipped batch's
    # clicks are lost, so a short outage must be waited out, not skipped.
    hotspots_consume_retry_seconds: float = _env("HOTSPOTS_CONSUME_RETRY_SECONDS",
                                                 default=20.0)
    # Retries of a failing batch before it is skipped: the event source mapping's
    # maximum_retry_attempts in AWS (deploy/hotspots_override.tf.json), the local
    # runner's limit here; skipped batches go to this SQS queue (local stand-in of
    # the on-failure destination in infra/hotspots.tf).
    kinesis_max_retry_attempts: int = _env("KINESIS_MAX_RETRY_ATTEMPTS", default=2)
    kinesis_failure_queue: str = _env("KINESIS_FAILURE_QUEUE", default="pulse-clicks-failed")
    # That queue in AWS (infra/hotspots.tf); the packaged event source mapping reads
    # it from the function's environment (deploy/hotspots_override.tf.json).
    click_failure_queue_arn: str | None = _env("CLICK_FAILURE_QUEUE_ARN", default=None,
                                               infra=True)
    # Timeouts (seconds) for every network client: a hung dependency must
    # not hold a request past the 2 s the API promises.
    connect_timeout: float = _env("PULSE_CONNECT_TIMEOUT", default=0.5)
    read_timeout: float = _env("PULSE_READ_TIMEOUT", default=1.0)
    # AWS clients on request paths (routes; see chalicelib.clients): each attempt waits
    # at most aws_read_timeout for an answer, a call makes at most aws_attempts attempts
    # (botocore's total_max_attempts), and all the calls of one request share
    # aws_budget seconds, counted from its first AWS call (chalicelib.budget).  A hung
    # AWS then costs a request about 2 x 0.5 s, and at most aws_budget in all.
    # Background paths keep read_timeout and four attempts.
    aws_read_timeout: float = _env("PULSE_AWS_READ_TIMEOUT", default=0.5)
    aws_attempts: int = _env("PULSE_AWS_ATTEMPTS", default=2)
    aws_budget: float = _env("PULSE_AWS_BUDGET", default=1.5)
    # --- leaderboard ---
    # What a retweet counts: original (the hashtags of the original tweet it carries),
    # own (its own, cut-off text's entities) or skip (nothing); see leaderboard.model.
    leaderboard_retweets: str = _env("LEADERBOARD_RETWEETS", default="original",
                                     choices=RETWEET_POLICIES)
    # Campaigns: a JSON object {"board": "search query", ...}, the first board the default
    # of every route, the CLI and the page; empty: one board, LEADERBOARD_NAME with
    # LEADERBOARD_QUERY.  Parsed and checked by leaderboard.boards (not here: a bad value
    # must not keep app.py from importing).
    leaderboard_boards: str = _env("LEADERBOARD_BOARDS", default="")
    # Cache-Control max-age (seconds) of the read routes: counts change once an ingest.
    leaderboard_max_age: int = _env("LEADERBOARD_MAX_AGE", default=5)
    # --- cache ---
    # memcached in AWS: TLS when ElastiCache's in-transit encryption is on (the stage
    # config sets it from Terraform); a CA bundle only for a private CA (the tests'
    # own certificate; AWS's verify against the system store).  With a configuration
    # endpoint (host:port) the nodes come from ElastiCache auto discovery, checked
    # every memcached_discovery_seconds, instead of memcached_servers.  A node that
    # fails once is left out (its keys rehash) for memcached_dead_seconds.  memcached
    # answers in well under a millisecond inside the VPC: memcached_timeout (connect
    # and read, seconds) bounds what a dead or hung node adds to a request.
    memcached_timeout: float = _env("MEMCACHED_TIMEOUT", default=0.25)
    memcached_tls: bool = _env("MEMCACHED_TLS", default=False)
    memcached_tls_ca_file: str | None = _env("MEMCACHED_TLS_CA_FILE", default=None)
    memcached_config_endpoint: str | None = _env("MEMCACHED_CONFIG_ENDPOINT", default=None)
    memcached_discovery_seconds: float = _env("MEMCACHED_DISCOVERY_SECONDS", default=60.0)
    memcached_dead_seconds: float = _env("MEMCACHED_DEAD_SECONDS", default=30.0)
    # The read-through cache's upstream APIs, JSON {name: {url, item_url, ttl, timeout,
    # negative_ttl, stale_ttl}} (see chalicelib/upstream/upstreams.py); "": the stage's
    # default (local: the demo upstream; other stages: the public example API).  TTLs
    # are shortened by up to cache_ttl_jitter (a fraction) so keys do not expire together.
    upstreams: str = _env("UPSTREAMS", default="")  # "": by stage
    cache_ttl_jitter: float = _env("CACHE_TTL_JITTER", default=0.1)
    # --- limits (chalicelib/ratelimit.py) ---
    # Requests per window and client address per route class, JSON {"class": {"quota": N,
    # "window": S}} over the stage's defaults (parsed by chalicelib.ratelimit: a bad value
    # must not keep app.py from importing); "": the defaults.  The limiter waits at most
    # rate_limit_timeout for Redis and, after a failure, lets requests pass without asking
    # it for rate_limit_skip_seconds.
    rate_limits: str = _env("RATE_LIMITS", default="")
    rate_limit_timeout: float = _env("RATE_LIMIT_TIMEOUT", default=0.03)
    rate_limit_skip_seconds: float = _env("RATE_LIMIT_SKIP_SECONDS", default=1.0)
    # The key of the keyed hash that names a client address in Redis (no address is
    # stored): a secret per stage keeps the names from being traced back by enumeration.
    rate_limit_salt: str = _env("RATE_LIMIT_SALT", default="")
    # Click pages kept at most (hotspots.store: past it the least recently clicked page is
    # dropped), each of at most HOTSPOTS_WINDOW_CLICKS clicks.
    hotspots_max_pages: int = _env("HOTSPOTS_MAX_PAGES", default=2000)
    # Domains GET /qr counts at most (the most counted; qr.creations).
    qr_domains_max: int = _env("QR_DOMAINS_MAX", default=1000)

    # --- who may do what (README "Who may do what") ---
    # API Gateway requires the team's API key (x-api-key) on the team's routes: POST /qr,
    # PATCH/DELETE /qr/{id}, GET /qr/{id}/scans, GET /health/details.  Unset: by stage,
    # open on the local stage, required elsewhere.
    # Read when app.py is imported (the route decorators; `chalice package` bakes it in).
    team_api_key_required: bool | None = _env("TEAM_API_KEY_REQUIRED", default=None)

    def __post_init__(self):
        if self.team_api_key_required is None:
            object.__setattr__(self, "team_api_key_required", self.stage != "local")
        source = self.leaderboard_source.strip().lower() or (
            "synthetic" if self.stage == "local" else "twitter")
        object.__setattr__(self, "leaderboard_source", source)
        object.__setattr__(self, "upstreams", self.upstreams or default_upstreams(self.stage))
        object.__setattr__(self, "qr_scan_send", self.qr_scan_send or (
            "background" if self.stage == "local" else "inline"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings `env` gives; what it leaves unset points at the local stack's
        ports (LocalPorts), the AWS endpoint and upstreams on the local stage only."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            for name in f.metadata["env"]:
                raw = env.get(name)
                if raw not in (None, ""):
                    values[f.name] = _parse(f.type, name, raw, f.metadata["choices"])
                    break
        ports = LocalPorts.from_env(env)
        values.setdefault("redis_url", ports.redis_url)
        values.setdefault("memcached_servers", ports.memcached_servers)
        if values.get("stage", "local") == "local":
            values.setdefault("aws_endpoint_url", ports.aws_endpoint_url)
            values.setdefault("upstreams", ports.upstreams)
            values.setdefault("public_base_url", f"http://127.0.0.1:{ports.http}")
        return cls(**values)

    def as_public_dict(self) -> dict:
        """Settings safe to show: a secret (X_BEARER_TOKEN) only as whether it is set."""
        return {f.name: ("(set)" if getattr(self, f.name) else None) if f.metadata["secret"]
                else getattr(self, f.name) for f in fields(self)}


def env_var(f: Field) -> str:
    """The variable a field is read from (the first, where there are several)."""
    return f.metadata["env"][0]


# What Terraform's `lambda_environment` output provides (infra/outputs.tf).
INFRA_ENV_VARS = tuple(env_var(f) for f in fields(Settings) if f.metadata["infra"])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
