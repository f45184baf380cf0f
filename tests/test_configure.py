"""deploy/configure.py: Terraform outputs -> one stage of .chalice/config.json + its policy.

The outputs are built here in the shape `terraform output -json` prints, from a
few ids, so each assertion can be traced back to an input.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy import configure  # noqa: E402

REGION, ACCOUNT = "eu-west-1", "210987654321"
SUBNETS = ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"]
LAMBDA_SG = "sg-0123456789abcdef0"
BUCKET = "pulse-prod-qr-20261122000000000000000001"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pulse-prod-qr-cache"
BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/pulse-prod-events"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/pulse-prod-clicks"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:pulse-prod-qr-events"
FAILED_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:pulse-prod-clicks-failed"
TABLE_STREAM_ARN = f"{TABLE_ARN}/stream/2026-12-02T17:00:00.000"
KMS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1b2c3d4e-0000-4000-8000-1234567890ab"
X_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pulse/prod/x-bearer-token-AbCdEf"
PW_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pulse/prod/memorydb-password-GhIjKl"
REDIS_HOST = "clustercfg.pulse-prod-redis.abc123.memorydb.eu-west-1.amazonaws.com"
MC_NODES = [
    "pulse-prod-mc.abc123.0001.euw1.cache.amazonaws.com:11211",
    "pulse-prod-mc.abc123.0002.euw1.cache.amazonaws.com:11211",
]


def tf_outputs(stage: str = "prod", **overrides) -> dict:
    """What `terraform -chdir=infra output -json` prints for infra/outputs.tf."""
    env = {
        "REDIS_URL": f"rediss://{REDIS_HOST}:6379",
        "REDIS_CLUSTER": "true",
        "REDIS_USERNAME": "pulse-app",
        "REDIS_PASSWORD_SECRET_ARN": PW_SECRET,
        "MEMCACHED_SERVERS": ",".join(MC_NODES),
        "QR_BUCKET": BUCKET,
        "QR_TABLE": "pulse-prod-qr-cache",
        "EVENT_BUS_NAME": "pulse-prod-events",
        "QR_EVENTS_QUEUE": "pulse-prod-qr-events",
        "CLICK_STREAM_NAME": "pulse-prod-clicks",
        "CLICK_FAILURE_QUEUE_ARN": FAILED_QUEUE_ARN,
        "X_BEARER_TOKEN_SECRET_ARN": X_SECRET,
    }
    env.update(overrides.pop("env", {}))
    values = {
        "stage": stage,
        "aws_region": REGION,
        "aws_account_id": ACCOUNT,
        "aws_partition": "aws",
        "vpc_id": "vpc-0fedcba9876543210",
        "private_subnet_ids": SUBNETS,
        "lambda_security_group_ids": [LAMBDA_SG],
        "kms_key_arn": KMS_ARN,
        "memorydb_endpoint": {"address": REDIS_HOST, "port": 6379},
        "memorydb_username": "pulse-app",
        "memorydb_password_secret_arn": PW_SECRET,
        "memcached_nodes": MC_NODES,
        "memcached_transit_encryption": True,
        "qr_bucket_name": BUCKET,
        "qr_bucket_arn": BUCKET_ARN,
        "qr_table_name": "pulse-prod-qr-cache",
        "qr_table_arn": TABLE_ARN,
        "event_bus_name": "pulse-prod-events",
        "event_bus_arn": BUS_ARN,
        "qr_events_queue_name": "pulse-prod-qr-events",
        "qr_events_queue_arn": QUEUE_ARN,
        "click_stream_name": "pulse-prod-clicks",
        "click_stream_arn": STREAM_ARN,
        "click_failure_queue_arn": FAILED_QUEUE_ARN,
        "qr_table_stream_arn": TABLE_STREAM_ARN,
        "x_bearer_token_secret_arn": X_SECRET,
        "lambda_environment": env,
    }
    values.update(overrides)

    def tf_type(v):
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "number"
        if isinstance(v, list):
            return ["tuple", ["string"] * len(v)]
        if isinstance(v, dict):
            return ["object", {k: tf_type(x) for k, x in v.items()}]
        return "string"

    return {k: {"sensitive": False, "type": tf_type(v), "value": v} for k, v in values.items()}


LEAD_CONFIG = {
    "version": "2.0",
    "app_name": "pulse",
    "lambda_timeout": 30,
    "environment_variables": {"LOG_LEVEL": "INFO"},
    "stages": {
        "local": {"api_gateway_stage": "api", "environment_variables": {"PULSE_STAGE": "local"}},
        "dev": {"api_gateway_stage": "api", "environment_variables": {"PULSE_STAGE": "dev"}},
        "prod": {
            "api_gateway_stage": "api",
            "lambda_memory_size": 1024,
            "environment_variables": {"PULSE_STAGE": "prod", "LEADERBOARD_QUERY": "#launch"},
        },
    },
}


@pytest.fixture
def chalice_dir(tmp_path: Path) -> Path:
    d = tmp_path / ".chalice"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(LEAD_CONFIG, indent=2))
    return d


def run(chalice_dir: Path, outputs: dict, *extra: str, stage: str = "prod") -> int:
    outputs_file = chalice_dir.parent / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    return configure.main(["--stage", stage, "--outputs-file", str(outputs_file),
                           "--config", str(chalice_dir / "config.json"), *extra])


def test_writes_the_stage_and_keeps_everything_else(chalice_dir):
    assert run(chalice_dir, tf_outputs()) == 0
    config = json.loads((chalice_dir / "config.json").read_text())

    for key in ("version", "app_name", "lambda_timeout", "environment_variables"):
        assert config[key] == LEAD_CONFIG[key]
    assert config["stages"]["local"] == LEAD_CONFIG["stages"]["local"]
    assert config["stages"]["dev"] == LEAD_CONFIG["stages"]["dev"]

    prod = config["stages"]["prod"]
    assert prod["api_gateway_stage"] == "api" and prod["lambda_memory_size"] == 1024
    assert prod["subnet_ids"] == SUBNETS
    assert prod["security_group_ids"] == [LAMBDA_SG]
    assert prod["autogen_policy"] is False
    assert prod["iam_policy_file"] == "policy-prod.json"
    assert prod["environment_variables"] == {
        "PULSE_STAGE": "prod",
        "LEADERBOARD_QUERY": "#launch",  # the stage's own variable survives
        "REDIS_URL": f"rediss://{REDIS_HOST}:6379",
        "REDIS_CLUSTER": "true",
        "REDIS_USERNAME": "pulse-app",
        "REDIS_PASSWORD_SECRET_ARN": PW_SECRET,
        "MEMCACHED_SERVERS": ",".join(MC_NODES),
        "QR_BUCKET": BUCKET,
        "QR_TABLE": "pulse-prod-qr-cache",
        "EVENT_BUS_NAME": "pulse-prod-events",
        "QR_EVENTS_QUEUE": "pulse-prod-qr-events",
        "CLICK_STREAM_NAME": "pulse-prod-clicks",
        "CLICK_FAILURE_QUEUE_ARN": FAILED_QUEUE_ARN,
        "X_BEARER_TOKEN_SECRET_ARN": X_SECRET,
        "MEMCACHED_TLS": "true",
        "QR_TABLE_STREAM_ARN": TABLE_STREAM_ARN,
    }
    # one role per function: its own policy file, beside the stage's own settings
    assert prod["lambda_functions"] == {
        name: {"iam_policy_file": f"policy-prod-{name}.json"} for name in configure.FUNCTIONS}


def _policies(chalice_dir: Path) -> dict[str, dict]:
    return {name: json.loads((chalice_dir / configure.policy_file("prod", name)).read_text())
            for name in ("", *configure.FUNCTIONS)}


def _grants(policy: dict) -> dict[str, set[str]]:
    """action -> the resources a policy grants it on."""
    grants: dict[str, set[str]] = {}
    for st in policy["Statement"]:
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in st["Action"]:
            grants.setdefault(action, set()).update(resources)
    return grants


ENI = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
       "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
       "ec2:UnassignPrivateIpAddresses"}
LOGS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}


def test_each_function_has_a_least_privilege_policy_of_its_own(chalice_dir):
    assert run(chalice_dir, tf_outputs()) == 0
    policies = _policies(chalice_dir)
    for name, policy in policies.items():
        configure.check_policy(policy)
        wildcard = [s["Sid"] for s in policy["Statement"] if s["Resource"] == "*"]
        assert wildcard == ["LambdaVpcEniManagementRequiresResourceWildcard"], name
        assert set(_grants(policy)) >= ENI | LOGS
    # A function without its own file gets logs and ENIs only.
    assert set(_grants(policies[""])) == ENI | LOGS
    api, ingest = _grants(policies["api_handler"]), _grants(policies["ingest_hashtags"])
    qr_created, clicks = _grants(policies["qr_created"]), _grants(policies["consume_clicks"])
    stream = _grants(policies[configure.QR_STREAM_FUNCTION])

    # Only the ingest reads the X token; every Redis user reads the Redis password.
    assert ingest["secretsmanager:GetSecretValue"] == {X_SECRET, PW_SECRET}
    for other in (api, qr_created, clicks):
        assert other["secretsmanager:GetSecretValue"] == {PW_SECRET}
    assert "secretsmanager:GetSecretValue" not in stream
    # Only QR's functions touch its bucket, table and bus.
    assert api["s3:GetObject"] == api["s3:PutObject"] == {f"{BUCKET_ARN}/*"}
    for action in ("GetItem", "PutItem", "UpdateItem", "DescribeTable"):
        assert api[f"dynamodb:{action}"] == {TABLE_ARN}
    assert api["events:PutEvents"] == stream["events:PutEvents"] == {BUS_ARN}
    for other in (ingest, qr_created, clicks):
        assert not [a for a in other if a.split(":")[0] in ("s3", "dynamodb", "events")]
    assert {a for a in stream if a.startswith(("s3:", "dynamodb:"))} == {
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
        "dynamodb:ListStreams"}
    for action in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"):
        assert stream[f"dynamodb:{action}"] == {TABLE_STREAM_ARN}
    # The click route only writes; the consumer only reads (no consumer API, no writes).
    assert {a for a in api if a.startswith("kinesis:")} == {"kinesis:PutRecords"}
    assert api["kinesis:PutRecords"] == {STREAM_ARN}
    assert {a for a in clicks if a.startswith("kinesis:")} == {
        "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
        "kinesis:GetShardIterator", "kinesis:ListShards"}
    assert clicks["sqs:SendMessage"] == {FAILED_QUEUE_ARN}
    for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
        assert qr_created[f"sqs:{action}"] == {QUEUE_ARN}
    # No unused action anywhere.
    every = set().union(*(_grants(p) for p in policies.values()))
    assert not every & {"s3:ListBucket", "kinesis:PutRecord", "kinesis:SubscribeToShard",
                        "kinesis:DescribeStreamConsumer"}
    # KMS only through the services each function calls, and by this account only.
    for policy in policies.values():
        for st in policy["Statement"]:
            if any(a.startswith("kms:") for a in st["Action"]):
                assert st["Resource"] == [KMS_ARN]
                assert st["Condition"]["StringEquals"]["kms:CallerAccount"] == ACCOUNT
    kms = {s["Sid"]: s for s in json.loads(
        (chalice_dir / "policy-prod-consume_clicks.json").read_text())["Statement"]}
    assert set(kms["DataKeyThroughServices"]["Condition"]["StringEquals"]["kms:ViaService"]) == {
        f"{svc}.{REGION}.amazonaws.com" for svc in ("kinesis", "sqs", "secretsmanager")}
    # Each function writes to its own log group only.
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/pulse-prod"
    assert api["logs:PutLogEvents"] == {group, f"{group}:*"}
    assert clicks["logs:PutLogEvents"] == {f"{group}-consume_clicks",
                                           f"{group}-consume_clicks:*"}


def _readme_table() -> dict[str, set[str]]:
    """The README's table of each function's actions: function -> actions."""
    text = (configure.REPO / "README.md").read_text()
    section = text.split("| function | actions", 1)[1].split("\n\n", 1)[0]
    table = {}
    for row in section.splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        table[cells[0].split("`")[1]] = set(re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", cells[1]))
    return table


def test_readme_lists_each_functions_actions(chalice_dir):
    assert run(chalice_dir, tf_outputs()) == 0
    policies = _policies(chalice_dir)
    common = ENI | LOGS
    want = {name: set(_grants(policy)) - common for name, policy in policies.items() if name}
    assert _readme_table() == want


def test_is_idempotent(chalice_dir):
    assert run(chalice_dir, tf_outputs()) == 0
    first = (chalice_dir / "config.json").read_text()
    assert run(chalice_dir, tf_outputs()) == 0
    assert (chalice_dir / "config.json").read_text() == first


def test_adds_a_new_stage(chalice_dir):
    assert run(chalice_dir, tf_outputs(stage="rehearsal"), stage="rehearsal") == 0
    config = json.loads((chalice_dir / "config.json").read_text())
    assert set(config["stages"]) == {"local", "dev", "prod", "rehearsal"}
    assert config["stages"]["prod"] == LEAD_CONFIG["stages"]["prod"]
    assert config["stages"]["rehearsal"]["environment_variables"]["PULSE_STAGE"] == "rehearsal"
    assert (chalice_dir / "policy-rehearsal.json").exists()
    assert (chalice_dir / "policy-rehearsal-api_handler.json").exists()


def test_accepts_exactly_the_deployable_stages(chalice_dir, capsys):
    assert configure.DEPLOYABLE_STAGES == ("dev", "prod", "rehearsal")
    with pytest.raises(SystemExit):
        configure.main(["--stage", "local", "--config", str(chalice_dir / "config.json")])
    assert "invalid choice: 'local'" in capsys.readouterr().err
    variables = (configure.REPO / "infra" / "variables.tf").read_text()
    stage_block = variables.split('variable "stage"', 1)[1].split("\n}\n", 1)[0]
    assert 'contains(["dev", "prod", "rehearsal"], var.stage)' in stage_block


@pytest.mark.parametrize("outputs, message", [
    (tf_outputs(stage="dev"), "outputs are for stage 'dev'"),
    (tf_outputs(env={"MEMCACHED_SERVERS": ""}), "no value for MEMCACHED_SERVERS"),
    (tf_outputs(env={"REDIS_URL": f"redis://{REDIS_HOST}:6379"}), "TLS"),
    (tf_outputs(env={"X_BEARER_TOKEN_SECRET_ARN": "AAAAAAAAAAAAAAAAAAAAA%2Ftoken"}), "ARN"),
    (tf_outputs(private_subnet_ids=[]), "no private subnets"),
    ({k: v for k, v in tf_outputs().items() if k != "qr_table_arn"}, "qr_table_arn"),
    ({}, "no outputs"),
    ({**tf_outputs(), "db_password": {"sensitive": True, "type": "string", "value": "hunter2"}},
     "sensitive"),
])
def test_refuses_bad_outputs_and_writes_nothing(chalice_dir, capsys, outputs, message):
    before = (chalice_dir / "config.json").read_text()
    assert run(chalice_dir, outputs) == 1
    assert message in capsys.readouterr().err
    assert (chalice_dir / "config.json").read_text() == before
    assert not (chalice_dir / "policy-prod.json").exists()


def test_allow_empty_is_per_variable(chalice_dir):
    outputs = tf_outputs(env={"MEMCACHED_SERVERS": ""})
    assert run(chalice_dir, outputs, "--allow-empty", "MEMCACHED_SERVERS") == 0
    env = json.loads((chalice_dir / "config.json").read_text())["stages"]["prod"][
        "environment_variables"]
    assert env["MEMCACHED_SERVERS"] == ""


def test_reads_terraform_when_no_outputs_file(chalice_dir, monkeypatch):
    calls = []

    def fake_outputs(tf_dir, state=None):
        calls.append((tf_dir, state))
        return tf_outputs()

    monkeypatch.setattr(configure, "terraform_outputs", fake_outputs)
    assert configure.main(["--stage", "prod", "--config", str(chalice_dir / "config.json")]) == 0
    assert calls == [(configure.REPO / "infra", None)]
