#!/usr/bin/env python3
"""Write one stage of .chalice/config.json from the Terraform outputs of infra/.

    python deploy/configure.py --stage prod          # what `make configure STAGE=prod` runs

Reads `terraform -chdir=infra output -json` (or a saved copy of it with
--outputs-file) and merges into the stage, keeping every other stage and key:

- subnet_ids, security_group_ids: the private subnets and the Lambda group;
- environment_variables: PULSE_STAGE plus the app's settings (endpoints, names,
  secret ARNs; never a secret value), merged over the stage's other variables;
  MEMCACHED_TLS from memcached_transit_encryption and MEMCACHED_CONFIG_ENDPOINT
  (auto discovery) from memcached_configuration_endpoint when it has a value;
- autogen_policy: false and one role per function: lambda_functions.<name>.
  iam_policy_file = policy-<stage>-<name>.json, each a least-privilege policy
  written beside config.json (named resources, no wildcard actions; only the
  Lambda-in-VPC ENI actions have Resource "*", because EC2 gives them no
  resource-level scoping that Lambda can use), and the stage's iam_policy_file
  policy-<stage>.json (logs and ENIs only) for a function without its own;
- QR_TABLE_STREAM_ARN, the QR table's stream, which app.py subscribes to.

Local tooling only (never packaged: Chalice ships app.py, chalicelib/, vendor/).
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The app's environment contract lives in chalicelib/settings.py (standard
# library only): the variables Terraform's lambda_environment must provide.
sys.path.insert(0, str(REPO))
from chalicelib.settings import INFRA_ENV_VARS as APP_ENV_VARS  # noqa: E402
from chalicelib.settings import STAGES  # noqa: E402

# The stages that deploy to AWS: every stage the app knows (PULSE_STAGE) but the local one.
# infra/variables.tf's var.stage accepts the same set.
DEPLOYABLE_STAGES = tuple(s for s in STAGES if s != "local")

DEFAULT_LOG_RETENTION_DAYS = 30  # for a stage that does not set its own

# Outputs this script reads; all must be present and not sensitive.
REQUIRED_OUTPUTS = (
    "stage",
    "aws_region",
    "aws_account_id",
    "aws_partition",
    "vpc_id",
    "private_subnet_ids",
    "lambda_security_group_ids",
    "kms_key_arn",
    "qr_bucket_arn",
    "qr_table_arn",
    "event_bus_arn",
    "qr_events_queue_arn",
    "click_stream_arn",
    "click_failure_queue_arn",
    "qr_table_stream_arn",
    "x_bearer_token_secret_arn",
    "memorydb_password_secret_arn",
    "lambda_environment",
    "memcached_transit_encryption",
)

# Only these actions may have Resource "*" (Lambda's VPC ENI management; the
# same actions as the AWSLambdaVPCAccessExecutionRole managed policy).
ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


class ConfigureError(Exception):
    """A problem the user must fix; printed without a traceback."""


def terraform_outputs(tf_dir: Path, state: Path | None = None) -> dict:
    """`terraform output -json` of tf_dir, as Terraform prints it."""
    cmd = ["terraform", f"-chdir={tf_dir}", "output", "-json"]
    if state is not None:
        cmd.append(f"-state={state}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ConfigureError("terraform is not on PATH") from exc
    if proc.returncode != 0:
        raise ConfigureError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout or "{}")


def output_values(raw: Mapping) -> dict:
    """{name: value} from `terraform output -json`; refuses sensitive outputs."""
    if not raw:
        raise ConfigureError("Terraform has no outputs: run `terraform apply` in infra/ first")
    values = {}
    for name, entry in raw.items():
        if not isinstance(entry, Mapping) or "value" not in entry:
            raise ConfigureError(f"output {name!r} is not in `terraform output -json` form")
        if entry.get("sensitive"):
            raise ConfigureError(f"output {name!r} is sensitive; it must never reach the config")
        values[name] = entry["value"]
    missing = [n for n in REQUIRED_OUTPUTS if n not in values]
    if missing:
        raise ConfigureError(f"outputs missing (is infra/ applied and current?): {missing}")
    return values


def app_environment(out: Mapping, stage: str, allow_empty: Iterable[str] = ()) -> dict:
    env = {"PULSE_STAGE": stage}
    tf_env = out["lambda_environment"]
    unknown = sorted(set(tf_env) - set(APP_ENV_VARS))
    if unknown:
        raise ConfigureError(f"lambda_environment has variables the app does not read "
                             f"(chalicelib/settings.py): {unknown}")
    allowed = set(allow_empty)
    for name in APP_ENV_VARS:
        value = tf_env.get(name)
        if value is None or (value == "" and name not in allowed):
            raise ConfigureError(f"lambda_environment has no value for {name}")
        env[name] = str(value)
    for name in ("REDIS_PASSWORD_SECRET_ARN", "X_BEARER_TOKEN_SECRET_ARN"):
        if not env[name].startswith("arn:"):
            raise ConfigureError(f"{name} must be a Secrets Manager ARN, got something else")
    if not env["REDIS_URL"].startswith("rediss://"):
        raise ConfigureError("REDIS_URL must use TLS (rediss://)")
    return env


# --- cache ---
def cache_environment(out: Mapping) -> dict:
    """memcached TLS (in-transit encryption makes the nodes speak TLS only) and, when
    Terraform knows it, the configuration endpoint for auto discovery."""
    tls = out["memcached_transit_encryption"]
    if not isinstance(tls, bool):
        raise ConfigureError(f"memcached_transit_encryption must be a bool, got {tls!r}")
    env = {"MEMCACHED_TLS": "true" if tls else "false"}
    endpoint = out.get("memcached_configuration_endpoint")
    if endpoint:
        env["MEMCACHED_CONFIG_ENDPOINT"] = str(endpoint)
    return env


# The functions of the app (Chalice's handler names) and the role of each: `make configure`
# writes .chalice/policy-<stage>-<function>.json for each and names it in the stage's
# lambda_functions, so every function has its own role with only what it calls.  A
# function not listed here gets the stage's base policy (its logs and VPC network
# interfaces, nothing else): `make rehearse` fails on it, naming the function.
API_FUNCTION = "api_handler"
QR_STREAM_FUNCTION = "qr_item_written"  # @app.on_dynamodb_record on the QR table's stream
FUNCTIONS = (API_FUNCTION, "ingest_hashtags", "qr_created", "consume_clicks",
             QR_STREAM_FUNCTION)


def _statement(sid: str, actions: list[str], resources: list[str] | str, **extra) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def _logs_statement(out: Mapping, group: str) -> dict:
    p, region, account = out["aws_partition"], out["aws_region"], out["aws_account_id"]
    arn = f"arn:{p}:logs:{region}:{account}:log-group:{group}"
    return _statement("WriteOwnLogs",
                      ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                      [arn, f"{arn}:*"])


def _eni_statement() -> dict:
    # Lambda in a VPC creates and deletes its ENIs with the function's role. These
    # EC2 actions take no resource scoping Lambda can use, so Resource "*" is
    # required here, and only here.
    return _statement("LambdaVpcEniManagementRequiresResourceWildcard", list(ENI_ACTIONS), "*")


def _kms_statement(out: Mapping, actions: list[str], services: list[str]) -> dict:
    """The data-tier CMK, only through the services this function calls, only by this
    account's principals."""
    region = out["aws_region"]
    return _statement("DataKeyThroughServices", actions, [out["kms_key_arn"]], Condition={
        "StringEquals": {
            "kms:ViaService": [f"{svc}.{region}.amazonaws.com" for svc in services],
            "kms:CallerAccount": out["aws_account_id"],
        }})


def _redis_password(out: Mapping) -> dict:
    return _statement("ReadRedisPassword", ["secretsmanager:GetSecretValue"],
                      [out["memorydb_password_secret_arn"]])


def function_statements(out: Mapping, function: str) -> list[dict]:
    """What one function calls, beyond its logs and network interfaces."""
    if function == API_FUNCTION:
        return [
            # QR images: PutObject on a miss, GetObject to serve and to sign
            # presigned GETs (signed with this role).  No ListBucket: a missing
            # object answers AccessDenied rather than NoSuchKey.
            _statement("QrImagesReadWrite", ["s3:GetObject", "s3:PutObject"],
                       [f"{out['qr_bucket_arn']}/*"]),
            # GetItem/PutItem: QR lookup and creation; UpdateItem: a dynamic code's
            # change and retirement; DescribeTable: /health's AWS check.
            _statement("QrTable", ["dynamodb:GetItem", "dynamodb:PutItem",
                                   "dynamodb:UpdateItem", "dynamodb:DescribeTable"],
                       [out["qr_table_arn"]]),
            _statement("AppEventBus", ["events:PutEvents"], [out["event_bus_arn"]]),
            # POST /clicks writes a batch; it never reads the stream.
            _statement("ClickStreamWrite", ["kinesis:PutRecords"], [out["click_stream_arn"]]),
            _redis_password(out),
            _kms_statement(out, ["kms:Decrypt", "kms:GenerateDataKey"],
                           ["s3", "dynamodb", "kinesis", "secretsmanager"]),
        ]
    if function == "ingest_hashtags":
        return [
            # The only function that reads the X API token.
            _statement("ReadXTokenAndRedisPassword", ["secretsmanager:GetSecretValue"],
                       [out["x_bearer_token_secret_arn"], out["memorydb_password_secret_arn"]]),
            _kms_statement(out, ["kms:Decrypt"], ["secretsmanager"]),
        ]
    if function == "qr_created":
        return [
            # Its SQS event source mapping polls with this role; sending is
            # EventBridge's (the queue policy).
            _statement("QrEventsQueueConsume", ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                "sqs:GetQueueAttributes"],
                       [out["qr_events_queue_arn"]]),
            _redis_password(out),
            _kms_statement(out, ["kms:Decrypt"], ["sqs", "secretsmanager"]),
        ]
    if function == "consume_clicks":
        return [
            # Its Kinesis event source mapping reads the stream with this role
            # (shared-throughput iterators: no consumer, no SubscribeToShard).
            _statement("ClickStreamRead", ["kinesis:DescribeStream",
                                           "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                                           "kinesis:GetShardIterator", "kinesis:ListShards"],
                       [out["click_stream_arn"]]),
            # The mapping's on-failure destination, sent with this role too.
            _statement("ClickConsumerFailureQueue", ["sqs:SendMessage"],
                       [out["click_failure_queue_arn"]]),
            _redis_password(out),
            _kms_statement(out, ["kms:Decrypt", "kms:GenerateDataKey"],
                           ["kinesis", "sqs", "secretsmanager"]),
        ]
    if function == QR_STREAM_FUNCTION:
        stream = out["qr_table_stream_arn"]
        return [
            # Its DynamoDB Streams event source mapping reads the table's stream.
            _statement("QrTableStreamRead", ["dynamodb:DescribeStream", "dynamodb:GetRecords",
                                             "dynamodb:GetShardIterator",
                                             "dynamodb:ListStreams"], [stream]),
            _statement("AppEventBus", ["events:PutEvents"], [out["event_bus_arn"]]),
            _kms_statement(out, ["kms:Decrypt"], ["dynamodb"]),
        ]
    raise ConfigureError(f"no policy for function {function!r}")


def function_name(app_name: str, stage: str, function: str) -> str:
    """Chalice's name of a function: <app>-<stage> for the API, else <app>-<stage>-<name>."""
    return f"{app_name}-{stage}" if function == API_FUNCTION else f"{app_name}-{stage}-{function}"


def build_policies(out: Mapping, app_name: str, stage: str) -> dict[str, dict]:
    """Least-privilege policy of each function, and under "" the stage's base policy
    (its functions' logs and ENIs only) for a function without its own."""
    prefix = f"/aws/lambda/{app_name}-{stage}"
    policies = {"": {"Version": "2012-10-17", "Statement": [
        _statement("WriteOwnLogs", ["logs:CreateLogGroup", "logs:CreateLogStream",
                                    "logs:PutLogEvents"],
                   [f"arn:{out['aws_partition']}:logs:{out['aws_region']}:"
                    f"{out['aws_account_id']}:log-group:{g}" for g in
                    (prefix, f"{prefix}:*", f"{prefix}-*", f"{prefix}-*:*")]),
        _eni_statement()]}}
    for function in FUNCTIONS:
        group = f"/aws/lambda/{function_name(app_name, stage, function)}"
        policies[function] = {"Version": "2012-10-17", "Statement": [
            _logs_statement(out, group), _eni_statement(),
            *function_statements(out, function)]}
    return policies


def policy_file(stage: str, function: str = "") -> str:
    return f"policy-{stage}-{function}.json" if function else f"policy-{stage}.json"


def check_policy(policy: Mapping) -> None:
    """No wildcard action anywhere; Resource "*" only for the ENI actions."""
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in actions:
            if "*" in action:
                raise ConfigureError(f"wildcard action {action!r} in {st.get('Sid')}")
        if "*" in resources and not set(actions) <= set(ENI_ACTIONS):
            raise ConfigureError(f"Resource '*' outside the ENI statement: {st.get('Sid')}")
        for resource in resources:
            if resource != "*" and not resource.startswith("arn:"):
                raise ConfigureError(f"resource {resource!r} is not an ARN ({st.get('Sid')})")


def merge_stage(config: dict, stage: str, out: Mapping, env: Mapping) -> dict:
    """Return config with `stage` updated; other stages and keys untouched (a function's
    own settings, such as reserved_concurrency, are kept beside its policy file)."""
    merged = json.loads(json.dumps(config))  # deep copy, key order kept
    stages = merged.setdefault("stages", {})
    current = stages.get(stage, {})
    current["subnet_ids"] = list(out["private_subnet_ids"])
    current["security_group_ids"] = list(out["lambda_security_group_ids"])
    current["autogen_policy"] = False
    current["iam_policy_file"] = policy_file(stage)
    functions = current.setdefault("lambda_functions", {})
    for function in FUNCTIONS:
        functions.setdefault(function, {})["iam_policy_file"] = policy_file(stage, function)
    current["environment_variables"] = {**current.get("environment_variables", {}), **env}
    # Lambda's log groups otherwise keep every line for ever (and bill for it).
    current.setdefault("log_retention_in_days", DEFAULT_LOG_RETENTION_DAYS)
    stages[stage] = current
    return merged


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def configure(
    stage: str,
    outputs: Mapping,
    config_path: Path,
    allow_empty: Iterable[str] = (),
) -> tuple[dict, dict]:
    """Update config_path's stage and write its policy files beside it: returns the
    config and {function: policy} ("" is the stage's base policy)."""
    out = output_values(outputs)
    if out["stage"] != stage:
        raise ConfigureError(
            f"infra/ outputs are for stage {out['stage']!r}, not {stage!r}: apply infra/ with "
            f"-var stage={stage} (its own state or workspace) first"
        )
    if not out["private_subnet_ids"] or not out["lambda_security_group_ids"]:
        raise ConfigureError("outputs have no private subnets or Lambda security group")
    if not config_path.exists():
        raise ConfigureError(f"{config_path} does not exist")
    config = json.loads(config_path.read_text())
    env = {**app_environment(out, stage, allow_empty), **cache_environment(out),
           # app.py subscribes the QR stream handler to this ARN at import.
           "QR_TABLE_STREAM_ARN": str(out["qr_table_stream_arn"])}
    policies = build_policies(out, config.get("app_name", "pulse"), stage)
    for policy in policies.values():
        check_policy(policy)
    merged = merge_stage(config, stage, out, env)
    for function, policy in policies.items():
        _write_json(config_path.parent / policy_file(stage, function), policy)
    _write_json(config_path, merged)
    return merged, policies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, choices=DEPLOYABLE_STAGES,
                        help="Chalice stage to write")
    parser.add_argument("--tf-dir", type=Path, default=REPO / "infra",
                        help="Terraform directory to read outputs from (default: infra/)")
    parser.add_argument("--state", type=Path, help="local state file (default: the backend's)")
    parser.add_argument("--outputs-file", type=Path,
                        help="saved `terraform output -json` instead of calling terraform")
    parser.add_argument("--config", type=Path, default=REPO / ".chalice" / "config.json")
    parser.add_argument("--allow-empty", action="append", default=[], metavar="VAR",
                        help="accept an empty value for VAR (the rehearsal's emulator gaps)")
    args = parser.parse_args(argv)
    try:
        if args.outputs_file:
            outputs = json.loads(args.outputs_file.read_text())
        else:
            outputs = terraform_outputs(args.tf_dir, args.state)
        merged, policies = configure(args.stage, outputs, args.config, args.allow_empty)
    except ConfigureError as exc:
        print(f"configure: {exc}", file=sys.stderr)
        return 1
    stage = merged["stages"][args.stage]
    print(f"configure: wrote stage {args.stage!r} of {args.config} "
          f"({len(stage['subnet_ids'])} subnets, {len(stage['security_group_ids'])} security "
          f"group, {len(stage['environment_variables'])} variables) and "
          f"{len(policies)} policy files in {args.config.parent}: "
          + ", ".join(f"{policy_file(args.stage, f)} ({len(p['Statement'])} statements)"
                      for f, p in policies.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
