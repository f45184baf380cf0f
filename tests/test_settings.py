from dataclasses import fields

import pytest

from chalicelib.settings import (
    INFRA_ENV_VARS,
    LOCAL_REDIS_PORT,
    Settings,
    SettingsError,
    env_var,
)


def test_defaults_point_at_the_local_stack():
    s = Settings.from_env({})
    assert s.stage == "local"
    assert s.redis_url == f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
    assert not s.redis_cluster
    assert len(s.memcached_servers) == 2


def test_values_come_from_standard_variable_names():
    s = Settings.from_env({
        "PULSE_STAGE": "prod",
        "REDIS_URL": "rediss://clustercfg.pulse.memorydb.us-east-1.amazonaws.com:6379",
        "REDIS_CLUSTER": "true",
        "REDIS_USERNAME": "pulse-app",
        "MEMCACHED_SERVERS": "a.cache:11211, b.cache:11211",
        "AWS_REGION": "eu-west-1",
        "QR_BUCKET": "b", "QR_TABLE": "t", "EVENT_BUS_NAME": "bus",
        "CLICK_STREAM_NAME": "clicks",
    })
    assert s.redis_cluster and s.redis_username == "pulse-app"
    assert s.memcached_servers == ("a.cache:11211", "b.cache:11211")
    assert (s.region, s.qr_bucket, s.qr_table, s.event_bus_name, s.click_stream_name) == (
        "eu-west-1", "b", "t", "bus", "clicks")


def test_secret_values_in_the_environment_are_never_shown():
    # Secrets come by ARN; REDIS_PASSWORD is never read, and the local stage's X token
    # is never shown by as_public_dict or repr (and so never logged with the settings).
    s = Settings.from_env({
        "REDIS_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:x:1:secret:p",
        "REDIS_PASSWORD": "hunter2-redis", "X_BEARER_TOKEN": "hunter2-x",
    })
    shown = str(s.as_public_dict())
    assert "arn:aws:secretsmanager:x:1:secret:p" in shown
    assert "hunter2" not in shown and "hunter2" not in repr(s)
    # X_BEARER_TOKEN (local stage only) is held, to be read in one place, and hidden
    assert s.x_bearer_token == "hunter2-x" and s.as_public_dict()["x_bearer_token"] == "(set)"


def test_leaderboard_settings():
    local, prod = Settings.from_env({}), Settings.from_env({"PULSE_STAGE": "prod"})
    assert (local.leaderboard_source, prod.leaderboard_source) == ("synthetic", "twitter")
    assert (local.leaderboard_name, local.ingest_max_pages, local.ingest_rate_minutes) == (
        "default", 10, 5)
    s = Settings.from_env({
        "LEADERBOARD_SOURCE": " Archive ", "LEADERBOARD_QUERY": "#kpop -is:retweet",
        "LEADERBOARD_ARCHIVE": "a.jsonl, b.jsonl", "LEADERBOARD_NAME": "kpop",
        "INGEST_MAX_PAGES": "3", "INGEST_RATE_MINUTES": "15",
    })
    assert (s.leaderboard_source, s.leaderboard_query, s.leaderboard_archive) == (
        "archive", "#kpop -is:retweet", ("a.jsonl", "b.jsonl"))
    assert (s.leaderboard_name, s.ingest_max_pages, s.ingest_rate_minutes) == ("kpop", 3, 15)


def test_every_setting_names_its_variable_and_bad_numbers_name_it_too():
    assert all(f.metadata["env"] for f in fields(Settings))
    with pytest.raises(SettingsError, match="INGEST_MAX_PAGES must be a number"):
        Settings.from_env({"INGEST_MAX_PAGES": "ten"})
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert Settings.from_env({"AWS_REGION": "eu-north-1",
                              "AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-north-1"


def test_terraform_provides_exactly_the_infra_variables():
    """infra/outputs.tf cannot import Python: its lambda_environment is checked here."""
    import re

    from tests.conftest import ROOT

    text = (ROOT / "infra" / "outputs.tf").read_text()
    block = text.split('output "lambda_environment"', 1)[1].split("\n}\n", 1)[0]
    provided = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", block, re.M))
    assert provided == set(INFRA_ENV_VARS)


BOOL_VARS = [env_var(f) for f in fields(Settings) if f.type in ("bool", "bool | None")]
ENUM_VARS = {env_var(f): f.metadata["choices"] for f in fields(Settings)
             if f.metadata["choices"]}


def test_the_booleans_and_enums_are_the_ones_documented():
    assert set(BOOL_VARS) == {"REDIS_CLUSTER", "MEMCACHED_TLS", "QR_SCAN_COUNTING",
                              "TEAM_API_KEY_REQUIRED"}
    assert set(ENUM_VARS) == {"PULSE_STAGE", "LOG_LEVEL", "LEADERBOARD_SOURCE",
                              "LEADERBOARD_RETWEETS", "QR_SCAN_SEND"}


@pytest.mark.parametrize("name", BOOL_VARS)
def test_a_boolean_takes_only_the_documented_spellings(name):
    field_name = next(f.name for f in fields(Settings) if env_var(f) == name)
    for raw in ("true", "TRUE", " Yes ", "1", "on"):
        assert getattr(Settings.from_env({name: raw}), field_name) is True, raw
    for raw in ("false", "False", "no", "0", " OFF"):
        assert getattr(Settings.from_env({name: raw}), field_name) is False, raw
    for raw in ("enabled", "maybe", "2", "y", "disabled"):
        with pytest.raises(SettingsError, match=f"^{name} must be true or false"):
            Settings.from_env({name: raw})


@pytest.mark.parametrize("name", sorted(ENUM_VARS))
def test_an_enum_takes_only_its_choices(name):
    field_name = next(f.name for f in fields(Settings) if env_var(f) == name)
    for choice in ENUM_VARS[name]:
        for raw in (choice, f" {choice.swapcase()} "):
            assert getattr(Settings.from_env({name: raw}), field_name) == choice
    with pytest.raises(SettingsError, match=f"^{name} must be one of {ENUM_VARS[name][0]}"):
        Settings.from_env({name: "bogus"})


def test_the_wrong_values_of_the_report_are_refused():
    for env in ({"MEMCACHED_TLS": "enabled"}, {"REDIS_CLUSTER": "maybe"},
                {"PULSE_STAGE": "bogus"}):
        with pytest.raises(SettingsError, match=next(iter(env))):
            Settings.from_env(env)


def test_the_choices_are_the_features_own():
    from chalicelib.leaderboard.model import RETWEET_POLICIES
    from chalicelib.leaderboard.sources import SOURCES

    assert ENUM_VARS["LEADERBOARD_SOURCE"] == SOURCES
    assert ENUM_VARS["LEADERBOARD_RETWEETS"] == RETWEET_POLICIES
