"""infra/: fmt, init -backend=false + validate, checkov, and the deploy rehearsal.

The rehearsal (deploy/infra.py) applies infra/ to moto's server, configures a
`rehearsal` stage of a copy of the app, packages it with Chalice for
Terraform, checks the package, then destroys everything; beside it, on a second
moto server, the upgrade check applies infra/ of infra.UPGRADE_FROM and plans
today's infra/ against that state. Both run once for the module (about 2-3
minutes; the first run also downloads the Lambda wheels). Everything they write
is under .local/; infra/ is only read.

Skipped only where terraform is not installed.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy import configure, infra  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason="terraform is not installed (Terraform >= 1.5 on PATH runs these checks)",
)


def _output(proc) -> str:
    return (proc.stdout + proc.stderr).strip()


def test_terraform_fmt():
    proc = infra.fmt_check()
    assert proc.returncode == 0, f"run `terraform fmt -recursive infra`:\n{_output(proc)}"


@pytest.mark.parametrize("rehearsal", [False, True], ids=["aws", "rehearsal"])
def test_terraform_init_and_validate(rehearsal):
    proc = infra.validate(rehearsal=rehearsal)
    assert proc.returncode == 0, _output(proc)
    assert "The configuration is valid" in proc.stdout


def _blocks(kind: str) -> dict[str, str]:
    """name -> body of every top-level `kind "name" { ... }` block in infra/*.tf."""
    found = {}
    for tf in sorted(infra.INFRA.glob("*.tf")):
        for m in re.finditer(rf'^{kind} "([\w-]+)" {{\n(.*?)^}}', tf.read_text(), re.M | re.S):
            found[m.group(1)] = m.group(2)
    return found


def test_every_output_is_described():
    outputs = _blocks("output")
    assert len(outputs) >= 29 and "lambda_environment" in outputs
    undescribed = [n for n, body in outputs.items()
                   if not re.search(r'^  description\s*=\s*"[^"]{15,}', body, re.M)]
    assert undescribed == []


def test_infra_as_applied_to_aws_has_no_emulator_switch():
    # The rehearsal's endpoint, skip_* flags and what moto cannot create live in
    # deploy/rehearsal/, copied beside infra/ for the rehearsal only.
    text = "\n".join(tf.read_text() for tf in sorted(infra.INFRA.glob("*.tf")))
    for switch in ("skip_credentials_validation", "skip_requesting_account_id",
                   "skip_metadata_api_check", "s3_use_path_style", "endpoints {"):
        assert switch not in text, switch
    emulator_words = re.compile(r"moto|emulat|endpoint_url|for the rehearsal", re.I)
    assert [n for n, body in _blocks("variable").items()
            if emulator_words.search(n) or emulator_words.search(body)] == []
    assert not list(infra.INFRA.glob("*.tfvars"))


def test_checkov_passes():
    proc = infra.checkov()
    out = _output(proc)
    assert proc.returncode == 0, out
    assert re.search(r"Failed checks: 0\b", out), out


def test_every_checkov_skip_has_a_reason():
    skips = []
    for tf in sorted(infra.INFRA.glob("*.tf")):
        for line in tf.read_text().splitlines():
            if "checkov:skip=" in line:
                check_id, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
                skips.append((tf.name, check_id))
                assert len(reason.strip()) > 20, f"{tf.name}: skip {check_id} without a reason"
    assert skips, "expected the documented skips"


def _configured_app(tmp_path: Path, stage_cfg: dict, policy: bool) -> Path:
    chalice = tmp_path / ".chalice"
    chalice.mkdir()
    (chalice / "config.json").write_text(json.dumps(
        {"version": "2.0", "app_name": "pulse", "stages": {"prod": stage_cfg}}))
    if policy:
        (chalice / "policy-prod.json").write_text('{"Version": "2012-10-17", "Statement": []}')
    return tmp_path


@pytest.mark.parametrize("stage_cfg, policy, missing", [
    ({"api_gateway_stage": "api", "iam_policy_file": "policy-prod.json"}, False, "subnet_ids"),
    ({"subnet_ids": ["subnet-1"], "iam_policy_file": "policy-prod.json"}, False,
     "policy-prod.json"),
    (None, False, "no such stage"),
])
def test_package_before_configure_says_to_configure_first(tmp_path, monkeypatch, capsys,
                                                          stage_cfg, policy, missing):
    app = _configured_app(tmp_path, stage_cfg or {}, policy)
    if stage_cfg is None:
        (app / ".chalice" / "config.json").write_text('{"stages": {}}')
    monkeypatch.setattr(infra, "REPO", app)
    out = tmp_path / "out"
    for command in (["package", "--stage", "prod", "--out", str(out)],
                    ["deploy", "--stage", "prod"]):
        assert infra.main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert missing in err and "run `make configure STAGE=prod` first" in err, err
    assert not out.exists()


def test_the_api_guard_is_applied_to_the_api_chalice_deploy_recorded(tmp_path):
    # What `chalice deploy` writes to .chalice/deployed/<stage>.json (Chalice 1.x), trimmed.
    deployed = tmp_path / ".chalice" / "deployed"
    deployed.mkdir(parents=True)
    (deployed / "prod.json").write_text(json.dumps({"schema_version": "2.0", "resources": [
        {"name": "api_handler", "resource_type": "lambda_function",
         "lambda_arn": "arn:aws:lambda:eu-west-1:123456789012:function:pulse-prod"},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "a1b2c3d4e5",
         "rest_api_url": "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1/"}]}))
    assert infra.deployed_api(tmp_path, "prod") == {
        "rest_api_id": "a1b2c3d4e5", "stage_name": "v1", "api_function_name": "pulse-prod"}
    with pytest.raises(infra.InfraError, match="no deployment of stage 'dev' recorded"):
        infra.deployed_api(tmp_path, "dev")
    # Undeploying a stage whose guard was never applied leaves Terraform alone.
    infra.destroy_api_gateway(tmp_path, "prod", {})
    assert not infra.api_gateway_dir(tmp_path, "prod").exists()


def _bare_package(tmp_path: Path) -> Path:
    """A package folder with deploy/gateway_responses*.tf.json beside the least of a
    chalice.tf.json they refer to (the REST API and its deployment)."""
    chalice_tf = {"resource": {
        "aws_api_gateway_rest_api": {"rest_api": {"name": "pulse"}},
        "aws_api_gateway_deployment": {"rest_api": {"stage_name": "api"}}}}
    (tmp_path / "chalice.tf.json").write_text(json.dumps(chalice_tf))
    for extra in infra.package_files():
        if extra.name.startswith("gateway_responses"):
            shutil.copy2(extra, tmp_path / extra.name)
    return tmp_path


def test_gateway_responses_answer_in_the_apps_error_shape(tmp_path):
    shown = infra.check_gateway_responses(_bare_package(tmp_path))
    assert shown["MISSING_AUTHENTICATION_TOKEN"] == {"status": "404", "body": {
        "error": "NotFound", "message": "no route for GET /api/nowhere"}}
    # the same words as `chalice local` for a path no route has
    from local import chalice_local

    local = json.loads(chalice_local.not_found_body("GET", "/nowhere"))
    assert local == {"error": "NotFound", "message": "no route for GET /nowhere"}
    assert shown["THROTTLED"]["status"] == "429" and shown["WAF_FILTERED"]["status"] == "403"
    assert shown["INTEGRATION_TIMEOUT"]["status"] == "504"
    assert shown["DEFAULT_5XX"]["body"] == {"error": "InternalError",
                                            "message": "Missing Authentication Token"}


def test_gateway_responses_check_refuses_a_body_outside_the_shape(tmp_path):
    package = _bare_package(tmp_path)
    path = package / "gateway_responses.tf.json"
    doc = json.loads(path.read_text())
    doc["resource"]["aws_api_gateway_gateway_response"]["throttled"]["response_templates"][
        "application/json"] = '{"message": "Too Many Requests"}'
    path.write_text(json.dumps(doc))
    with pytest.raises(infra.InfraError, match="THROTTLED: the body is not the app's error"):
        infra.check_gateway_responses(package)


def test_tree_stays_clean_of_terraform_runtime_files():
    # The checks above ran on a copy: no lock file, data dir or state in infra/.
    leftovers = [p.name for p in infra.INFRA.iterdir()
                 if p.name in (".terraform", ".terraform.lock.hcl") or ".tfstate" in p.name]
    assert leftovers == []


# --- the deploy rehearsal -----------------------------------------------------------------


@pytest.fixture(scope="module")
def rehearsal():
    lines: list[str] = []
    try:
        result = infra.rehearse(log=lines.append)
    except infra.InfraError as exc:
        pytest.fail(f"rehearsal failed: {exc}\n" + "\n".join(lines))
    print("\n".join(lines))
    return result


@pytest.mark.slow
def test_rehearsal_config_has_the_emulators_subnets_and_security_group(rehearsal):
    outputs, stage = rehearsal["outputs"], rehearsal["stage_config"]
    assert stage["subnet_ids"] == outputs["private_subnet_ids"]
    assert stage["security_group_ids"] == outputs["lambda_security_group_ids"]
    assert all(s.startswith("subnet-") for s in stage["subnet_ids"])
    assert all(g.startswith("sg-") for g in stage["security_group_ids"])
    # ...and moto knows them, in the applied VPC, across two AZs.
    assert sorted(rehearsal["emulator"]["subnets"]) == sorted(stage["subnet_ids"])
    assert len(set(rehearsal["emulator"]["subnets"].values())) == 2
    assert rehearsal["emulator"]["security_groups"] == stage["security_group_ids"]
    assert len(set(rehearsal["emulator"]["nat_gateway_azs"])) == 2
    assert stage["autogen_policy"] is False
    assert stage["iam_policy_file"] == "policy-rehearsal.json"


@pytest.mark.slow
def test_rehearsal_environment_follows_the_app_contract(rehearsal):
    env, tf_env = rehearsal["stage_environment"], rehearsal["outputs"]["lambda_environment"]
    assert env["PULSE_STAGE"] == "rehearsal"
    for name in configure.APP_ENV_VARS:
        assert env[name] == tf_env[name], name
    assert env["REDIS_URL"].startswith("rediss://")
    assert env["REDIS_CLUSTER"] == "true"
    for name in ("REDIS_PASSWORD_SECRET_ARN", "X_BEARER_TOKEN_SECRET_ARN"):
        assert env[name].startswith("arn:aws:secretsmanager:"), name
    # The generated password was looked up in moto and found in none of these.
    assert rehearsal["secret_checked_in"] == [
        "outputs.json", "config.json", "policy-rehearsal.json",
        *(f"policy-rehearsal-{name}.json" for name in configure.FUNCTIONS), "chalice.tf.json"]


@pytest.mark.slow
def test_rehearsal_policy_names_resources(rehearsal):
    for policy in rehearsal["policies"].values():
        configure.check_policy(policy)
    outputs = rehearsal["outputs"]
    text = str(rehearsal["policies"])
    for arn in ("qr_bucket_arn", "qr_table_arn", "event_bus_arn", "click_stream_arn",
                "click_failure_queue_arn", "qr_table_stream_arn",
                "x_bearer_token_secret_arn", "memorydb_password_secret_arn", "kms_key_arn"):
        assert outputs[arn] in text, arn
    assert outputs["qr_table_stream_arn"].startswith(outputs["qr_table_arn"] + "/stream/")
    assert rehearsal["stage_environment"]["QR_TABLE_STREAM_ARN"] == outputs["qr_table_stream_arn"]


@pytest.mark.slow
def test_rehearsal_package_has_one_role_per_function_and_reserved_concurrency(rehearsal):
    # check_chalice_tf compared each function's role policy with its own policy file
    # (tests/test_configure.py checks those files against the README's table) and its
    # reserved concurrency with the stage's lambda_functions.
    functions = rehearsal["functions"]
    assert {"api_handler", "ingest_hashtags", "qr_created", "consume_clicks"} <= set(functions)
    per_function = rehearsal["stage_config"]["lambda_functions"]
    assert per_function["api_handler"]["reserved_concurrency"] == 20
    assert per_function["ingest_hashtags"]["reserved_concurrency"] == 1
    for name in functions:
        assert per_function[name]["iam_policy_file"] == f"policy-rehearsal-{name}.json"


@pytest.mark.slow
def test_rehearsal_package_guards_the_api(rehearsal):
    # check_api_gateway: the swagger's secured routes are the app's api_key_required
    # routes for the stage; the usage plan, the stage throttling and the WAF association.
    api = rehearsal["api_gateway"]
    from chalicelib.settings import Settings

    if hasattr(Settings, "team_api_key_required"):  # the app keys the team's routes
        assert api["secured_routes"]
    # only the team's routes (QR management, /health details); the public ones stay open
    assert all(r.split()[1].startswith(("/qr", "/health")) for r in api["secured_routes"])
    assert "GET /leaderboard" not in api["secured_routes"]
    assert api["quota_per_day"] > 0
    assert api["method_throttling"]["*/*"]["rate_limit"] > 0
    assert "api_gateway.tf.json" in rehearsal["package_files"]
    # check_gateway_responses: every one in the app's error shape, the stage waits for them
    assert rehearsal["gateway_responses"]["MISSING_AUTHENTICATION_TOKEN"]["status"] == "404"


@pytest.mark.slow
def test_rehearsal_package_is_small_and_wired_to_the_stage(rehearsal):
    # check_chalice_tf already compared every function's vpc_config and
    # environment with the stage, and every role policy with the policy file.
    assert "api_handler" in rehearsal["functions"]
    sizes = rehearsal["package_sizes"]
    assert "deployment.zip" in sizes
    assert sum(sizes.values()) < infra.PACKAGE_LIMIT_BYTES, sizes
    # Chalice 1.34 still pins Terraform < 1.4 (aws/chalice#2066); the override lifts it.
    assert "< 1.4.0" in rehearsal["chalice_required_version"]
    # The package needs hashicorp/null: validated where the provider mirror has it,
    # asserted above (check_chalice_tf) where it does not.
    mirror = infra.plugin_dir()
    if mirror is None or (mirror / "registry.terraform.io" / "hashicorp" / "null").is_dir():
        assert rehearsal["package_validation"] == "terraform validate passed"
    else:
        assert "stops at hashicorp/null" in rehearsal["package_validation"]


@pytest.mark.slow
def test_rehearsal_wires_qr_created_from_the_bus_to_its_handler(rehearsal):
    # rehearse() looked the rule, its target and the queue's redrive up in moto,
    # and the handler's SQS trigger up in chalice.tf.json (check_qr_event_wiring).
    wiring, outputs = rehearsal["qr_event_wiring"], rehearsal["outputs"]
    assert wiring["bus"] == outputs["event_bus_name"]
    assert wiring["pattern"] == {"source": ["pulse.qr"], "detail-type": ["qr.created"]}
    assert wiring["targets"] == [outputs["qr_events_queue_arn"]]
    assert wiring["dlq"] == outputs["qr_events_dlq_arn"] and wiring["max_receive_count"] == 5
    trigger = wiring["trigger"]
    assert trigger["event_source_arn"].endswith(":" + outputs["qr_events_queue_name"])
    assert trigger["function_name"].startswith("${aws_lambda_function.qr_created.")
    assert "qr_created" in rehearsal["functions"]
    assert rehearsal["stage_environment"]["QR_EVENTS_QUEUE"] == outputs["qr_events_queue_name"]
    policy = {a: s["Resource"] for s in rehearsal["policies"]["qr_created"]["Statement"]
              for a in s["Action"]}
    assert policy["sqs:ReceiveMessage"] == [outputs["qr_events_queue_arn"]]


@pytest.mark.slow
def test_rehearsal_click_consumer_mapping_does_not_block_its_shard(rehearsal):
    # Chalice exposes none of these; deploy/hotspots_override.tf.json sets them.
    from chalicelib.settings import Settings

    assert "hotspots_override.tf.json" in rehearsal["overrides"]
    mapping = rehearsal["event_source_mappings"]["consume_clicks-kinesis-event-source"]
    assert mapping["maximum_retry_attempts"] == Settings().kinesis_max_retry_attempts
    assert mapping["bisect_batch_on_function_error"] is True
    # the queue's ARN comes from the function's environment, which configure wrote
    assert mapping["destination_config"]["on_failure"]["destination_arn"] == (
        "${aws_lambda_function.consume_clicks.environment[0].variables.CLICK_FAILURE_QUEUE_ARN}")
    queue_arn = rehearsal["outputs"]["click_failure_queue_arn"]
    assert queue_arn.startswith("arn:aws:sqs:") and queue_arn.endswith("-clicks-failed")
    assert rehearsal["stage_environment"]["CLICK_FAILURE_QUEUE_ARN"] == queue_arn
    assert mapping["event_source_arn"].endswith(":stream/pulse-rehearsal-clicks")
    assert (mapping["starting_position"], mapping["batch_size"]) == ("TRIM_HORIZON", 100)


@pytest.mark.slow
def test_rehearsal_destroys_what_it_applied(rehearsal):
    # Only what moto cannot delete is dropped from the state (see EMULATOR_FORGETS);
    # rehearse() has checked the state is empty after `terraform destroy`.
    assert set(rehearsal["forgotten_before_destroy"]) <= set(infra.EMULATOR_FORGETS)
    # When moto drops a gateway endpoint's route first (InvalidRoute.NotFound on
    # DeleteVpcEndpoints), the endpoints alone are forgotten and destroy runs again.
    assert all(r.startswith("aws_vpc_endpoint.")
               for r in rehearsal.get("forgotten_for_moto_route_bug", []))
    assert "terraform destroy" in rehearsal["timings"]


@pytest.mark.slow
def test_rehearsal_packages_two_stages_without_a_shared_name(rehearsal):
    first, second = rehearsal["stage_names"].values()
    assert set(first).isdisjoint(second), set(first) & set(second)
    assert "pulse-rehearsal-ingest_hashtags-schedule" in first  # the schedule rule
    assert "pulse-dev-ingest_hashtags-schedule" in second
    assert "pulse-dev-team" in second  # the usage plan and the team's key


@pytest.mark.slow
def test_rehearsal_package_keeps_logs_for_the_stages_retention(rehearsal):
    groups = rehearsal["log_groups"]
    assert set(groups) == set(rehearsal["functions"])
    assert {g["retention_in_days"] for g in groups.values()} == {
        configure.DEFAULT_LOG_RETENTION_DAYS}


@pytest.mark.slow
def test_rehearsal_alarms_on_memorydb_memory(rehearsal):
    namespace, metric, actions = rehearsal["emulator"]["alarms"]["pulse-rehearsal-memorydb-memory"]
    assert (namespace, metric) == ("AWS/MemoryDB", "DatabaseMemoryUsagePercentage")
    assert actions == [rehearsal["outputs"]["alarm_topic_arn"]]


@pytest.mark.slow
def test_rehearsal_shows_the_dashboard_and_alarms_to_the_topic(rehearsal):
    # check_in_emulator read the dashboard and every alarm back from moto: each alarm of
    # the alarm_names output exists and publishes to the encrypted topic.
    emulator, outputs = rehearsal["emulator"], rehearsal["outputs"]
    alarms, topic = emulator["alarms"], outputs["alarm_topic_arn"]
    assert set(alarms) >= set(outputs["alarm_names"])
    assert {tuple(actions) for *_, actions in alarms.values()} == {(topic,)}
    for function in ("api_handler", "ingest_hashtags", "qr_created", "consume_clicks"):
        assert alarms[f"pulse-rehearsal-{function}-errors"][:2] == ("AWS/Lambda", "Errors")
        assert alarms[f"pulse-rehearsal-{function}-throttles"][:2] == ("AWS/Lambda", "Throttles")
    assert alarms["pulse-rehearsal-api-5xx-rate"][:2] == ("AWS/ApiGateway", "5XXError")
    assert alarms["pulse-rehearsal-consume_clicks-iterator-age"][1] == "IteratorAge"
    assert alarms["pulse-rehearsal-clicks_failed-not-empty"][:2] == (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarms["pulse-rehearsal-qr_events_dlq-not-empty"][0] == "AWS/SQS"
    assert alarms["pulse-rehearsal-x-rate-limit-low"][:2] == ("Pulse", "XRateLimitRemaining")
    dashboard = emulator["dashboard"]
    assert dashboard["name"] == "pulse-rehearsal"
    assert {"ClicksAccepted", "QrCreated", "IngestTweets", "RateLimited"} <= set(
        dashboard["app_metrics"])
    assert len(dashboard["widgets"]) >= 12


@pytest.mark.slow
def test_rehearsal_deploys_with_chalice_and_deletes_it(rehearsal):
    # deploy_with_chalice: `chalice deploy` to moto (local/moto_server.py makes its
    # ImportRestApi take Chalice's swagger), check_deployed, then `chalice delete`.
    deployed = rehearsal["chalice_deploy"]
    functions = deployed["functions"]
    assert set(functions) == set(rehearsal["functions"])
    assert len({f["role"] for f in functions.values()}) == len(functions)
    assert functions["ingest_hashtags"]["reserved_concurrency"] == 1
    assert any(r["schedule"].startswith("rate(") for r in deployed["rules"].values())
    assert deployed["event_source_mappings"]["sqs"] == ["pulse-rehearsal-qr_created"]
    assert deployed["event_source_mappings"]["kinesis"] == ["pulse-rehearsal-consume_clicks"]
    assert deployed["rest_api"]["routes"] >= 15
    assert "image/png" in deployed["rest_api"]["binary_media_types"]
    assert deployed["deleted"] is True  # and no usage plan or API key left either


@pytest.mark.slow
def test_rehearsal_guards_the_api_chalice_deploy_made(rehearsal):
    # apply_api_gateway: `make deploy` applies the package's api_gateway.tf.json to the
    # API `chalice deploy` made; check_api_guard read it back from the emulator.
    guard = rehearsal["chalice_deploy"]["api_guard"]
    packaged = rehearsal["api_gateway"]
    assert guard["usage_plan"] == "pulse-rehearsal-team"
    assert guard["quota"] == {"limit": packaged["quota_per_day"], "period": "DAY"}
    assert guard["method_settings"] == {
        path: (float(t["rate_limit"]), t["burst_limit"])
        for path, t in packaged["method_throttling"].items()}
    assert guard["web_acl"] == "pulse-rehearsal-api"


# --- the upgrade from the flat layout -----------------------------------------------------

# The per-AZ resources the flat layout made with count = 2.
PER_AZ = ("aws_subnet.public", "aws_subnet.private", "aws_route_table_association.public",
          "aws_eip.nat", "aws_nat_gateway.main", "aws_route_table.private",
          "aws_route.private_nat", "aws_route_table_association.private")


@pytest.mark.slow
def test_upgrade_from_the_flat_layout_keeps_every_stateful_resource(rehearsal):
    # rehearse() applied infra/ of infra.UPGRADE_FROM to its own moto server and
    # planned today's infra/ (with deploy/rehearsal/) against that state.
    upgrade = rehearsal["upgrade"]
    assert upgrade["from"] == infra.UPGRADE_FROM
    changes = {c["address"]: c for c in upgrade["changes"]}
    # Every kind of stateful resource was in the old state and is still in the plan...
    assert {c["type"] for c in changes.values() if infra.is_stateful(c["type"])} >= set(
        infra.STATEFUL_TYPES)
    # ...and none is destroyed or replaced.
    assert upgrade["lost"] == []
    assert [a for a, c in changes.items() if "delete" in c["actions"]] == []
    # The count-indexed per-AZ resources moved to the zone keys, nothing else changed.
    assert upgrade["moved"] == {f"{r}[{i}]": f'{r}["{key}"]'
                                for r in PER_AZ for i, key in enumerate("ab")}
    assert all(changes[a]["actions"] == ["no-op"] for a in upgrade["moved"].values())
    # Beyond what moto reports back differently (the old layout's own plan shows the
    # same), the upgrade only adds, and updates in place only the QR table (its stream
    # turned on) and the KMS key (its policy's aws:SourceAccount conditions).
    assert [(c["address"], c["actions"]) for c in upgrade["beyond_drift"]
            if c["actions"] != ["create"]
            and c["address"] not in ("aws_dynamodb_table.qr_cache", "aws_kms_key.data")] == []
    assert all(c["actions"] in (["create"], ["update"]) for c in upgrade["beyond_drift"])
