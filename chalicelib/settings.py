"""Typed settings, read from the environment in one place, once per container.

Defaults point at the local stack that `make run` starts, so `chalice local`,
the CLI and the tests work with no configuration; the dev/prod stages in
.chalice/config.json set every value explicitly (see `make configure`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache

# Ports of the local stack; chosen to stay clear of a developer's own
# Redis (6379), memcached (11211) and moto (5000).
LOCAL_REDIS_PORT = 16379
LOCAL_MEMCACHED_PORTS = (21211, 21212)
LOCAL_MOTO_PORT = 15000


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    # botocore reads AWS_ENDPOINT_URL itself; kept here for /health and logs.
    aws_endpoint_url: str | None = None
    redis_url: str = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
    redis_cluster: bool = False
    redis_username: str | None = None
    redis_password_secret_arn: str | None = None
    memcached_servers: tuple[str, ...] = tuple(f"127.0.0.1:{p}" for p in LOCAL_MEMCACHED_PORTS)
    qr_bucket: str = "pulse-qr-local"
    qr_table: str = "pulse-qr-cache"
    event_bus_name: str = "pulse-events"
    click_stream_name: str = "pulse-clicks"
    x_bearer_token_secret_arn: str | None = None
    # Hashtag leaderboard.  The source is twitter|archive|synthetic; the local
    # stage defaults to synthetic (no X account needed), every other to twitter.
    # The bearer token itself is never held here: it comes from the secret
    # above in AWS, or from env X_BEARER_TOKEN locally (see leaderboard.sources).
    leaderboard_name: str = "default"
    leaderboard_source: str = "synthetic"
    leaderboard_query: str = "#campaign -is:retweet"
    leaderboard_archive: tuple[str, ...] = ()  # twarc2 JSONL files for the archive source
    ingest_max_pages: int = 10  # pages of up to 100 tweets per scheduled run
    ingest_rate_minutes: int = 5
    # Timeouts (seconds) for every network client: a hung dependency must
    # not hold a request past the 2 s the API promises.
    connect_timeout: float = 0.5
    read_timeout: float = 1.0
    # --- leaderboard ---
    # What a retweet counts: original (the hashtags of the original tweet it carries),
    # own (its own, cut-off text's entities) or skip (nothing); see leaderboard.model.
    leaderboard_retweets: str = "original"
    # Campaigns: a JSON object {"board": "search query", ...}, the first board the default
    # of every route, the CLI and the page; empty: one board, LEADERBOARD_NAME with
    # LEADERBOARD_QUERY.  Parsed and checked by leaderboard.boards (not here: a bad value
    # must not keep app.py from importing).
    leaderboard_boards: str = ""
    # Cache-Control max-age (seconds) of the read routes: counts change once an ingest.
    leaderboard_max_age: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default):
            value = env.get(name)
            return default if value in (None, "") else value

        servers = get("MEMCACHED_SERVERS", None)
        return cls(
            stage=get("PULSE_STAGE", defaults.stage),
            region=get("AWS_REGION", get("AWS_DEFAULT_REGION", defaults.region)),
            aws_endpoint_url=get("AWS_ENDPOINT_URL", None),
            redis_url=get("REDIS_URL", defaults.redis_url),
            redis_cluster=_bool(get("REDIS_CLUSTER", "false")),
            redis_username=get("REDIS_USERNAME", None),
            redis_password_secret_arn=get("REDIS_PASSWORD_SECRET_ARN", None),
            memcached_servers=(
                tuple(s.strip() for s in servers.split(",") if s.strip())
                if servers else defaults.memcached_servers
            ),
            qr_bucket=get("QR_BUCKET", defaults.qr_bucket),
            qr_table=get("QR_TABLE", defaults.qr_table),
            event_bus_name=get("EVENT_BUS_NAME", defaults.event_bus_name),
            click_stream_name=get("CLICK_STREAM_NAME", defaults.click_stream_name),
            x_bearer_token_secret_arn=get("X_BEARER_TOKEN_SECRET_ARN", None),
            leaderboard_name=get("LEADERBOARD_NAME", defaults.leaderboard_name),
            leaderboard_source=get(
                "LEADERBOARD_SOURCE",
                "synthetic" if get("PULSE_STAGE", defaults.stage) == "local" else "twitter",
            ).strip().lower(),
            leaderboard_query=get("LEADERBOARD_QUERY", defaults.leaderboard_query),
            leaderboard_archive=tuple(
                p.strip() for p in get("LEADERBOARD_ARCHIVE", "").split(",") if p.strip()),
            ingest_max_pages=int(get("INGEST_MAX_PAGES", defaults.ingest_max_pages)),
            ingest_rate_minutes=int(get("INGEST_RATE_MINUTES", defaults.ingest_rate_minutes)),
            connect_timeout=float(get("PULSE_CONNECT_TIMEOUT", defaults.connect_timeout)),
            read_timeout=float(get("PULSE_READ_TIMEOUT", defaults.read_timeout)),
            # --- leaderboard ---
            leaderboard_retweets=get("LEADERBOARD_RETWEETS",
                                     defaults.leaderboard_retweets).strip().lower(),
            leaderboard_boards=get("LEADERBOARD_BOARDS", defaults.leaderboard_boards).strip(),
            leaderboard_max_age=int(get("LEADERBOARD_MAX_AGE", defaults.leaderboard_max_age)),
        )

    def as_public_dict(self) -> dict:
        """Settings safe to show (no secret values are ever held here)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
