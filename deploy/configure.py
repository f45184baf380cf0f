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
- autogen_policy: false and iam_policy_file: policy-<stage>.json, a
  least-privilege policy written beside config.json: named resources, no
  wildcard actions; only the Lambda-in-VPC ENI actions have Resource "*",
  because EC2 gives them no resource-level scoping that Lambda can use.

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


def build_policy(out: Mapping, app_name: str, stage: str) -> dict:
    """Least-privilege policy for every function of the stage."""
    p, region, account = out["aws_partition"], out["aws_region"], out["aws_account_id"]
    # Chalice names functions <app>-<stage> (the API) and <app>-<stage>-<name>.
    log_group = f"arn:{p}:logs:{region}:{account}:log-group:/aws/lambda/{app_name}-{stage}"
    stream_arn = out["click_stream_arn"]
    bucket_arn = out["qr_bucket_arn"]
    statements = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group, f"{log_group}:*", f"{log_group}-*", f"{log_group}-*:*"],
        },
        {
            # Lambda in a VPC creates and deletes its ENIs with the function's
            # role. These EC2 actions take no resource scoping Lambda can use,
            # so Resource "*" is required here, and only here.
            "Sid": "LambdaVpcEniManagementRequiresResourceWildcard",
            "Effect": "Allow",
            "Action": list(ENI_ACTIONS),
            "Resource": "*",
        },
        {
            # HeadObject is authorised by s3:GetObject; presigned GETs are
            # signed with this role, so they need it too.
            "Sid": "QrImagesReadWrite",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [f"{bucket_arn}/*"],
        },
        {
            # Without ListBucket a HeadObject of a missing key answers 403, not 404.
            "Sid": "QrImagesMissingKeyIs404",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket_arn],
        },
        {
            "Sid": "QrCacheTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DescribeTable",
            ],
            "Resource": [out["qr_table_arn"]],
        },
        {
            "Sid": "AppEventBus",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": [out["event_bus_arn"]],
        },
        {
            # The qr_created function's SQS event source mapping polls with the
            # function's role: Lambda needs GetQueueAttributes besides
            # receive/delete.  Sending is EventBridge's (the queue policy).
            "Sid": "QrEventsQueueConsume",
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": [out["qr_events_queue_arn"]],
        },
        {
            "Sid": "ClickStream",
            "Effect": "Allow",
            "Action": [
                "kinesis:PutRecord",
                "kinesis:PutRecords",
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:DescribeStreamConsumer",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
                "kinesis:SubscribeToShard",
            ],
            # SubscribeToShard and DescribeStreamConsumer act on consumers.
            "Resource": [stream_arn, f"{stream_arn}/consumer/*"],
        },
        {
            # The click consumer's event source mapping sends what it gives up on
            # here (its on-failure destination): Lambda uses the function's role.
            "Sid": "ClickConsumerFailureQueue",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [out["click_failure_queue_arn"]],
        },
        {
            "Sid": "ReadAppSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [out["x_bearer_token_secret_arn"], out["memorydb_password_secret_arn"]],
        },
        {
            # The data-tier CMK, only through the services that use it:
            # Decrypt to read (S3, DynamoDB, Kinesis, secrets), GenerateDataKey
            # to write (S3 PutObject, Kinesis PutRecord(s), DynamoDB, SQS SendMessage);
            # Decrypt also reads the KMS-encrypted QR events queue.
            "Sid": "DataKeyThroughServices",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [out["kms_key_arn"]],
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": [
                        f"{svc}.{region}.amazonaws.com"
                        for svc in ("s3", "dynamodb", "kinesis", "secretsmanager", "sqs")
                    ]
                }
            },
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


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
    """Return config with `stage` updated; other stages and keys untouched."""
    merged = json.loads(json.dumps(config))  # deep copy, key order kept
    stages = merged.setdefault("stages", {})
    current = stages.get(stage, {})
    current["subnet_ids"] = list(out["private_subnet_ids"])
    current["security_group_ids"] = list(out["lambda_security_group_ids"])
    current["autogen_policy"] = False
    current["iam_policy_file"] = f"policy-{stage}.json"
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
    """Update config_path's stage and write policy-<stage>.json beside it."""
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
    env = {**app_environment(out, stage, allow_empty), **cache_environment(out)}
    policy = build_policy(out, config.get("app_name", "pulse"), stage)
    check_policy(policy)
    merged = merge_stage(config, stage, out, env)
    _write_json(config_path.parent / f"policy-{stage}.json", policy)
    _write_json(config_path, merged)
    return merged, policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, help="Chalice stage to write (prod, dev, ...)")
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
        merged, policy = configure(args.stage, outputs, args.config, args.allow_empty)
    except ConfigureError as exc:
        print(f"configure: {exc}", file=sys.stderr)
        return 1
    stage = merged["stages"][args.stage]
    policy_path = args.config.parent / stage["iam_policy_file"]
    print(f"configure: wrote stage {args.stage!r} of {args.config} "
          f"({len(stage['subnet_ids'])} subnets, {len(stage['security_group_ids'])} security "
          f"group, {len(stage['environment_variables'])} variables) and "
          f"{policy_path} ({len(policy['Statement'])} statements)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
