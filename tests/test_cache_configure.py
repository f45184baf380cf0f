"""deploy/configure.py writes the cache's memcached settings from Terraform's outputs,
and the app reads them back."""
from __future__ import annotations

import json

from chalicelib.settings import Settings
from tests import test_configure
from tests.test_configure import run, tf_outputs

chalice_dir = test_configure.chalice_dir  # the same fixture: the lead's config in a tmp dir

ENDPOINT = "pulse-prod-mc.abc123.cfg.euw1.cache.amazonaws.com:11211"


def stage_env(chalice_dir) -> dict:
    return json.loads((chalice_dir / "config.json").read_text())["stages"]["prod"][
        "environment_variables"]


def test_tls_and_discovery_endpoint_reach_the_stage(chalice_dir):
    assert run(chalice_dir, tf_outputs(memcached_configuration_endpoint=ENDPOINT)) == 0
    env = stage_env(chalice_dir)
    assert (env["MEMCACHED_TLS"], env["MEMCACHED_CONFIG_ENDPOINT"]) == ("true", ENDPOINT)
    settings = Settings.from_env(env)
    assert settings.memcached_tls and settings.memcached_config_endpoint == ENDPOINT


def test_no_encryption_and_no_endpoint(chalice_dir):
    outputs = tf_outputs(memcached_transit_encryption=False, memcached_configuration_endpoint="")
    assert run(chalice_dir, outputs) == 0
    env = stage_env(chalice_dir)
    assert env["MEMCACHED_TLS"] == "false" and "MEMCACHED_CONFIG_ENDPOINT" not in env
    assert not Settings.from_env(env).memcached_tls
