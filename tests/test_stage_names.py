"""Two stages in one account: every name the Terraform package gives AWS is
stage-specific once deploy/*_override.tf.json are applied (aws/chalice#1691)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy import infra  # noqa: E402


def chalice_package(stage: str) -> dict:
    """The named resources `chalice package --pkg-format terraform` writes (Chalice 1.34)."""
    fn = f"pulse-{stage}"
    return {"resource": {
        "aws_iam_role": {"default-role": {"name": fn}},
        "aws_iam_role_policy": {"default-role": {"name": "default-rolePolicy"}},
        "aws_lambda_function": {"api_handler": {"function_name": fn},
                                "ingest_hashtags": {"function_name": f"{fn}-ingest_hashtags"}},
        "aws_cloudwatch_event_rule": {"ingest_hashtags-event": {"name": "ingest_hashtags-event"}},
        "aws_lambda_permission": {"ingest_hashtags-event": {"statement_id": "x"}},
        "aws_api_gateway_rest_api": {"rest_api": {"name": "pulse"}},
        "aws_api_gateway_deployment": {"rest_api": {"stage_name": "api"}},
        "aws_lambda_event_source_mapping": {
            "consume_clicks-kinesis-event-source": {"batch_size": 100}},
    }}


def packages(tmp_path: Path, with_overrides: bool) -> dict[str, Path]:
    out = {}
    for stage in ("dev", "prod"):
        pkg = tmp_path / stage
        pkg.mkdir()
        (pkg / "chalice.tf.json").write_text(json.dumps(chalice_package(stage)))
        if with_overrides:
            for extra in infra.package_files():  # the overrides and what adds to the package
                shutil.copy2(extra, pkg / extra.name)
        out[stage] = pkg
    return out


def test_without_the_override_dev_and_prod_share_the_schedule_rule(tmp_path):
    clashes = infra.name_collisions(packages(tmp_path, with_overrides=False))
    assert any("'ingest_hashtags-event'" in c for c in clashes)
    assert any("aws_api_gateway_rest_api 'pulse'" in c for c in clashes)


def test_with_the_overrides_no_name_is_shared(tmp_path):
    pkgs = packages(tmp_path, with_overrides=True)
    assert infra.name_collisions(pkgs) == []
    names = infra.effective_names(pkgs["prod"])
    assert names[("aws_cloudwatch_event_rule", "ingest_hashtags-event")] == (
        "pulse-prod-ingest_hashtags-schedule")
    assert names[("aws_api_gateway_rest_api", "rest_api")] == "pulse-prod"
    assert names[("aws_api_gateway_usage_plan", "team")] == "pulse-prod-team"


def test_chalice_deploy_runs_with_the_stages_own_settings():
    # app.py names the QR queue and the schedule's rate at import, and Chalice
    # imports it to deploy: the stage's variables must win over the caller's.
    config = {"environment_variables": {"LOG_LEVEL": "INFO"},
              "stages": {"prod": {"environment_variables": {
                  "PULSE_STAGE": "prod", "QR_EVENTS_QUEUE": "pulse-prod-qr-created"}}}}
    env = infra.deploy_environment(config, "prod", {"AWS_PROFILE": "ops",
                                                    "QR_EVENTS_QUEUE": "stale"})
    assert env["QR_EVENTS_QUEUE"] == "pulse-prod-qr-created"
    assert env["AWS_PROFILE"] == "ops" and env["PULSE_STAGE"] == "prod"


def test_an_override_of_a_resource_the_package_lacks_is_refused(tmp_path):
    # Terraform refuses it too ("Missing resource to override"): say so before applying.
    import pytest

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    package = chalice_package("prod")
    del package["resource"]["aws_lambda_event_source_mapping"]
    (pkg / "chalice.tf.json").write_text(json.dumps(package))
    shutil.copy2(infra.DEPLOY / "hotspots_override.tf.json", pkg)
    with pytest.raises(infra.InfraError, match="consume_clicks-kinesis-event-source"):
        infra.packaged_event_source_mappings(pkg)
