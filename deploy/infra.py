#!/usr/bin/env python3
"""Checks of infra/ and the deploy rehearsal against moto's server.

    python deploy/infra.py check      # terraform fmt -check, init -backend=false, validate
                                      # (as applied to AWS and as rehearsed), checkov
    python deploy/infra.py rehearse   # apply -> configure -> chalice package -> assert -> destroy,
                                      # and beside it the upgrade check
    python deploy/infra.py upgrade [--from REV]   # the upgrade check alone
    python deploy/infra.py package --stage prod [--out out/]   # the Terraform package of a stage
    python deploy/infra.py deploy --stage prod   # chalice deploy with the stage's environment

Nothing is written into infra/: Terraform runs on a copy under .local/
(TF_DATA_DIR, state and lock file included), so the tree stays clean.

The rehearsal starts moto's server (local.processes) on a free loopback port, applies
infra/ to it with the files of deploy/rehearsal/ beside it (emulator_override.tf sends
every provider call to the server and leaves out only what moto cannot emulate;
rehearsal.tfvars), runs deploy/configure.py for a `rehearsal` stage of a copy of the
app, packages that copy with `chalice package --pkg-format terraform` plus every
deploy/*_override.tf.json, checks the package, and destroys everything again.

The upgrade check (run by the rehearsal at the same time, on its own moto server)
applies an earlier revision of infra/ (UPGRADE_FROM) to a fresh moto server, then
plans today's infra/ against that state: a `moved` block missing for a renamed
address shows up as a stateful resource destroyed or replaced.

Settings: TF_PLUGIN_DIR (a provider mirror for `terraform init -plugin-dir`;
default /opt/tf-plugins or the first tf-plugins folder found two levels below
/; empty means plain `terraform init`), CHECKOV (the checkov binary; default
.venv-checkov/bin/checkov, then PATH).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # local.processes: one way to start moto's server
from deploy import configure  # noqa: E402  (its FUNCTIONS and policy file names)

INFRA = REPO / "infra"
LOCAL = REPO / ".local"
WORK = LOCAL / "rehearsal"
# Terraform override files merged into the Chalice package: chalice_override.tf.json
# lifts Chalice's version pins; each feature may add its own `<name>_override.tf.json`
# (e.g. settings of a packaged event source mapping that Chalice does not expose).
DEPLOY = REPO / "deploy"
# What the rehearsal copies beside infra/ (the emulator's provider settings and
# what moto cannot create) and the variables it applies with.
REHEARSAL = DEPLOY / "rehearsal"
REHEARSAL_VARS = REHEARSAL / "rehearsal.tfvars"


def override_files() -> list[Path]:
    return sorted(DEPLOY.glob("*_override.tf.json"))


def package_files() -> list[Path]:
    """Every deploy/*.tf.json: the overrides, and files that add to the package
    (api_gateway.tf.json: throttling, the team's usage plan and key, the WAF association)."""
    return sorted(DEPLOY.glob("*.tf.json"))


STAGE = "rehearsal"
REGION = "us-east-1"
PACKAGE_LIMIT_BYTES = 15 * 1024 * 1024  # our budget; Lambda's limit is 50 MB zipped
# What Chalice packages from the project (everything else stays behind).
APP_FILES = ("app.py", "chalicelib", "vendor", "requirements.txt")

# Resources moto 5.2.5 creates but cannot delete in a way Terraform can wait for:
# - ElastiCache: DeleteCacheCluster leaves the cluster "deleting" forever, and
#   there is no DeleteCacheSubnetGroup at all;
# - MemoryDB: the provider waits a fixed 5 minutes after DeleteCluster before
#   polling; moto deletes at once, so the rehearsal deletes the cluster itself.
# They are removed from the state before `terraform destroy`, which then
# destroys everything else; moto's server is stopped at the end anyway.
EMULATOR_FORGETS = (
    "aws_elasticache_cluster.memcached",
    "aws_elasticache_subnet_group.memcached",
    "aws_memorydb_cluster.main",
)


class InfraError(Exception):
    """A failed step, with the tail of its output."""


Log = Callable[[str], None]


def _print(msg: str) -> None:
    print(msg, flush=True)


# --- terraform -------------------------------------------------------------------------


def terraform_bin() -> str | None:
    return shutil.which("terraform")


def plugin_dir() -> Path | None:
    """TF_PLUGIN_DIR if set (empty: none), else /opt/tf-plugins, else a find."""
    if "TF_PLUGIN_DIR" in os.environ:
        value = os.environ["TF_PLUGIN_DIR"].strip()
        return Path(value) if value else None
    default = Path("/opt/tf-plugins")
    if default.is_dir():
        return default
    try:
        found = subprocess.run(
            ["find", "/", "-maxdepth", "2", "-type", "d", "-name", "tf-plugins"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        found = []
    return Path(found[0]) if found else None


def init_args(backend: bool = True) -> list[str]:
    args = ["init", "-input=false", "-no-color"]
    if not backend:
        args.append("-backend=false")
    pdir = plugin_dir()
    if pdir is not None:
        args.append(f"-plugin-dir={pdir}")
    return args


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without the app's settings or any real AWS identity/endpoint."""
    drop_prefixes = ("AWS_", "PULSE_", "REDIS_", "LEADERBOARD_", "INGEST_", "QR_")
    drop = {"MEMCACHED_SERVERS", "QR_BUCKET", "QR_TABLE", "EVENT_BUS_NAME",
            "CLICK_STREAM_NAME", "X_BEARER_TOKEN", "X_BEARER_TOKEN_SECRET_ARN"}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop_prefixes) and k not in drop}
    env.update({"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
    env.update(extra or {})
    return env


def emulator_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def run(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(map(str, cmd)), cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{' '.join(map(str, cmd))}: no answer after {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise InfraError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{tail}")
    return proc


def terraform(args: Sequence[str], *, cwd: Path, data_dir: Path, env: dict[str, str] | None = None,
              timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    tf = terraform_bin()
    if tf is None:
        raise InfraError("terraform is not on PATH")
    full_env = clean_env({"TF_DATA_DIR": str(data_dir), **(env or {})})
    return run([tf, *args], cwd=cwd, env=full_env, timeout=timeout, check=check)


def copy_infra(dest: Path, rehearsal: bool = False) -> Path:
    """A fresh copy of infra/'s configuration (no state, data dir or lock file); with
    rehearsal, deploy/rehearsal/*.tf beside it."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(INFRA, dest, ignore=shutil.ignore_patterns(
        ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "*.md", "*.mk",
        "*.tfvars", "requirements-*.txt", "__pycache__"))
    if rehearsal:
        for tf in REHEARSAL.glob("*.tf"):
            shutil.copy2(tf, dest / tf.name)
    return dest


def rehearsal_vars(endpoint: str) -> list[str]:
    return [f"-var-file={REHEARSAL_VARS}", f"-var=emulator_endpoint={endpoint}"]


# --- check: fmt, validate, checkov --------------------------------------------------------


def checkov_bin() -> str | None:
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"]
    local = REPO / ".venv-checkov" / "bin" / "checkov"
    if local.exists():
        return str(local)
    return shutil.which("checkov")


def fmt_check() -> subprocess.CompletedProcess:
    # fmt -check only reads; it never rewrites infra/ or deploy/rehearsal/.
    return terraform(["fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA),
                      str(REHEARSAL)],
                     cwd=REPO, data_dir=LOCAL / "infra-check" / "tfdata", check=False)


def validate(rehearsal: bool = False) -> subprocess.CompletedProcess:
    """terraform validate of infra/ as it is applied to AWS or, with rehearsal, as the
    rehearsal applies it (deploy/rehearsal/*.tf beside it)."""
    base = LOCAL / ("rehearsal-check" if rehearsal else "infra-check")
    work = copy_infra(base / "tf", rehearsal=rehearsal)
    data = base / "tfdata"
    terraform(init_args(backend=False), cwd=work, data_dir=data, timeout=300)
    return terraform(["validate", "-no-color"], cwd=work, data_dir=data, check=False)


def checkov() -> subprocess.CompletedProcess:
    binary = checkov_bin()
    if binary is None:
        raise InfraError("checkov not found: run `make checkov-venv` (installs .venv-checkov "
                         "from infra/requirements-checkov.txt) or set CHECKOV")
    # --skip-download: no calls to the vendor's platform (offline here).
    return run([binary, "-d", str(INFRA), "--quiet", "--compact", "--skip-download"],
               cwd=REPO, env=clean_env(), timeout=600, check=False)


def check(log: Log = _print) -> None:
    failures = []
    for name, step in (("terraform fmt -check", fmt_check), ("terraform validate", validate),
                       ("terraform validate, rehearsal", lambda: validate(rehearsal=True)),
                       ("checkov -d infra", checkov)):
        t0 = time.monotonic()
        proc = step()
        ok = proc.returncode == 0
        log(f"{name}: {'ok' if ok else 'FAILED'} ({time.monotonic() - t0:.1f} s)")
        if not ok:
            failures.append(f"{name}:\n{(proc.stdout + proc.stderr).strip()}")
    if failures:
        raise InfraError("\n\n".join(failures))


# --- moto server --------------------------------------------------------------------------


@contextmanager
def moto_server(log_dir: Path, timeout: float = 60) -> Iterator[str]:
    """moto's server on a free loopback port, started as the local stack starts it."""
    from local import processes

    server = processes.moto_server(processes.free_port(), log_dir)
    server.env = clean_env(emulator_env())  # no real AWS identity or endpoint reaches it
    server.start(timeout=timeout)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def boto_client(service: str, endpoint: str):
    import boto3  # the dev venv's; only the rehearsal needs it

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


# --- the rehearsal --------------------------------------------------------------------


def chalice_bin() -> str:
    beside = Path(sys.executable).parent / "chalice"
    if beside.exists():
        return str(beside)
    found = shutil.which("chalice")
    if found is None:
        raise InfraError("chalice not found (it is in requirements-dev.txt)")
    return found


def copy_app(dest: Path) -> Path:
    """The files Chalice packages plus .chalice/config.json; keeps Chalice's cache."""
    (dest / ".chalice").mkdir(parents=True, exist_ok=True)
    for name in APP_FILES:
        src, dst = REPO / name, dest / name
        if dst.is_dir():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dst)
    for old in (dest / ".chalice").glob("policy-*.json"):
        old.unlink()
    shutil.copy2(REPO / ".chalice" / "config.json", dest / ".chalice" / "config.json")
    return dest


def stage_environment(config: dict, stage: str) -> dict:
    """What Chalice gives a function: top-level variables, then the stage's."""
    return {**config.get("environment_variables", {}),
            **config["stages"][stage].get("environment_variables", {})}


def deploy_environment(config: dict, stage: str, base: dict[str, str]) -> dict[str, str]:
    """The environment `chalice deploy` runs in: the caller's (AWS credentials) plus the
    stage's own variables, because app.py reads some settings at import (the schedule's
    rate, the QR events queue's name) and Chalice imports it to deploy."""
    return {**base, **stage_environment(config, stage)}


class StageNotConfigured(InfraError):
    """The stage lacks what `make configure` writes; the user runs that first (exit 2)."""


def configured_stage(app_dir: Path, stage: str) -> dict:
    """.chalice/config.json of app_dir, once the stage has what deploy/configure.py
    writes (its subnets and its IAM policy file): without them Chalice would deploy or
    package the functions outside the data tier, or stop with a traceback."""
    config_path = app_dir / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    stage_cfg = config.get("stages", {}).get(stage)
    policy = (stage_cfg or {}).get("iam_policy_file")
    if stage_cfg is None:
        missing = "no such stage in .chalice/config.json"
    elif not stage_cfg.get("subnet_ids"):
        missing = "no subnet_ids in .chalice/config.json"
    elif policy and not (config_path.parent / policy).exists():
        missing = f"no .chalice/{policy}"
    else:
        return config
    raise StageNotConfigured(f"stage {stage!r} is not configured ({missing}): "
                             f"run `make configure STAGE={stage}` first")


def chalice_deploy(stage: str) -> int:
    """`chalice deploy` of the stage, then its API's guard (apply_api_gateway)."""
    config = configured_stage(REPO, stage)
    code = subprocess.run([chalice_bin(), "deploy", "--stage", stage], cwd=REPO,
                          env=deploy_environment(config, stage, dict(os.environ)),
                          check=False).returncode
    if code != 0:
        return code
    guard = apply_api_gateway(REPO, stage, caller_aws_env())
    print(f"API guard applied: usage plan {guard['usage_plan']} (the team's key: "
          f"terraform -chdir={guard['dir'].relative_to(REPO)} output -raw team_api_key), "
          f"stage throttling, WAF web ACL {guard['web_acl']}")
    return 0


def chalice_delete(stage: str) -> int:
    """The API's guard first (its usage plan holds the stage), then `chalice delete`."""
    destroy_api_gateway(REPO, stage, caller_aws_env())
    return subprocess.run([chalice_bin(), "delete", "--stage", stage], cwd=REPO,
                          check=False).returncode


def caller_aws_env() -> dict[str, str]:
    """The caller's AWS identity, region and profile for Terraform (clean_env drops them)."""
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


# What `make deploy` adds to the stage `chalice deploy` made: api_gateway.tf.json
# beside deployed_api.tf.json, which names the API from .chalice/deployed/<stage>.json.
API_GATEWAY_FOR_DEPLOY = DEPLOY / "api_gateway_for_deploy"


def api_gateway_dir(app_dir: Path, stage: str) -> Path:
    """Where the stage's guard is applied from and its state kept (git-ignored)."""
    return app_dir / ".chalice" / "api-gateway" / stage


def deployed_api(app_dir: Path, stage: str) -> dict[str, str]:
    """The REST API, stage and API function that `chalice deploy` made for the stage."""
    path = app_dir / ".chalice" / "deployed" / f"{stage}.json"
    try:
        resources = json.loads(path.read_text())["resources"]
    except (OSError, ValueError, KeyError) as exc:
        raise InfraError(f"no deployment of stage {stage!r} recorded in {path}: {exc}") from exc
    by_name = {r.get("name"): r for r in resources}
    api, handler = by_name.get("rest_api"), by_name.get("api_handler")
    if not api or not handler:
        raise InfraError(f"{path} has no rest_api or api_handler: the stage has no routes?")
    # rest_api_url is https://<id>.execute-api.<region>.<domain>/<stage>/
    stage_name = api["rest_api_url"].rstrip("/").rsplit("/", 1)[1]
    return {"rest_api_id": api["rest_api_id"], "stage_name": stage_name,
            "api_function_name": handler["lambda_arn"].rsplit(":", 1)[1]}


def _api_gateway_module(app_dir: Path, stage: str, emulator: str | None) -> tuple[Path, list]:
    work = api_gateway_dir(app_dir, stage)
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.tf.json"):
        if not old.name.startswith("backend_override"):  # a team's own backend stays
            old.unlink()
    for src in [DEPLOY / "api_gateway.tf.json", *API_GATEWAY_FOR_DEPLOY.glob("*.tf.json")]:
        shutil.copy2(src, work / src.name)
    if emulator:
        (work / "emulator_override.tf.json").write_text(json.dumps({"provider": {"aws": {
            "skip_credentials_validation": True, "skip_requesting_account_id": True,
            "skip_metadata_api_check": True,
            "endpoints": [{s: emulator for s in ("apigateway", "wafv2", "sts")}]}}}, indent=2))
    variables = [f"-var={k}={v}" for k, v in deployed_api(app_dir, stage).items()]
    return work, variables


def _api_gateway_terraform(action: str, app_dir: Path, stage: str, env: dict[str, str],
                           emulator: str | None) -> Path:
    """terraform init, then apply or destroy, of the stage's guard module."""
    work, variables = _api_gateway_module(app_dir, stage, emulator)
    data = work / ".terraform"
    terraform(init_args(), cwd=work, data_dir=data, env=env, timeout=300)
    terraform([action, "-auto-approve", "-no-color", *variables], cwd=work, data_dir=data,
              env=env, timeout=600)
    return work


def apply_api_gateway(app_dir: Path, stage: str, env: dict[str, str],
                      emulator: str | None = None) -> dict:
    """Terraform-apply api_gateway.tf.json to the API `chalice deploy` made for the stage:
    the team's key and usage plan, stage throttling, the WAF association.  The same file
    `make package` adds to a Terraform package, so both ways ship the same guard."""
    work = _api_gateway_terraform("apply", app_dir, stage, env, emulator)
    state = json.loads(terraform(["show", "-json", "-no-color"], cwd=work,
                                 data_dir=work / ".terraform", env=env).stdout)
    values = {r["address"]: r["values"] for r in state["values"]["root_module"]["resources"]}
    plan = values["aws_api_gateway_usage_plan.team"]
    return {"dir": work, "usage_plan": plan["name"], "usage_plan_id": plan["id"],
            "api_key_id": values["aws_api_gateway_api_key.team"]["id"],
            "web_acl": values["data.aws_wafv2_web_acl.api"]["name"]}


def destroy_api_gateway(app_dir: Path, stage: str, env: dict[str, str],
                        emulator: str | None = None) -> None:
    """Undo apply_api_gateway (nothing to do if it never ran for the stage)."""
    work = api_gateway_dir(app_dir, stage)
    if not (work / "terraform.tfstate").exists():
        return
    _api_gateway_terraform("destroy", app_dir, stage, env, emulator)


LOG_GROUPS_FILE = "log_groups.tf.json"


def package_for_terraform(app_dir: Path, stage: str, out: Path, log: Log = _print) -> dict:
    """`chalice package --pkg-format terraform` of one stage, made deployable as it is.

    Runs Chalice with the stage's environment variables (app.py reads some at
    import).  Adds every deploy/*_override.tf.json, and the stage's `log_retention_in_days`
    as one aws_cloudwatch_log_group per function in log_groups.tf.json: Chalice
    1.34's Terraform packager raises UnsupportedFeatureError(LogGroup) for that
    setting (only `chalice deploy` handles it), so it is taken out of the config
    for the packaging run and written as Terraform here.  Returns chalice.tf.json.
    """
    config_path = app_dir / ".chalice" / "config.json"
    config = configured_stage(app_dir, stage)
    original = config_path.read_text()
    stage_cfg = config["stages"][stage]
    retention = stage_cfg.pop("log_retention_in_days", config.pop("log_retention_in_days", None))
    if out.exists():
        shutil.rmtree(out)
    # Chalice runs app.py to package it: settings read at import time (the
    # schedule's rate, the QR events queue's name) must be the stage's own.
    package_env = {**emulator_env(), **stage_environment(config, stage)}
    try:
        config_path.write_text(json.dumps(config, indent=2))
        run([chalice_bin(), "package", "--stage", stage, "--pkg-format", "terraform", out],
            cwd=app_dir, env=clean_env(package_env), timeout=900)
    finally:
        config_path.write_text(original)
    for extra in package_files():
        shutil.copy2(extra, out / extra.name)
    chalice_tf = json.loads((out / "chalice.tf.json").read_text())
    if retention is not None:
        groups = {name: {"name": f"/aws/lambda/${{aws_lambda_function.{name}.function_name}}",
                         "retention_in_days": int(retention)}
                  for name in chalice_tf["resource"].get("aws_lambda_function", {})}
        (out / LOG_GROUPS_FILE).write_text(json.dumps(
            {"resource": {"aws_cloudwatch_log_group": groups}}, indent=2))
    return chalice_tf


# Resources whose name is scoped by another stage-specific resource, so two
# stages never clash on it: a role's inline policy, a function's permission; an
# event source mapping has no name at all (its `function_name` is the function's ARN).
SCOPED_NAMES = {"aws_iam_role_policy", "aws_lambda_permission", "aws_cloudwatch_event_target",
                "aws_lambda_event_source_mapping"}
_FUNCTION_NAME_REF = re.compile(r"\$\{aws_lambda_function\.([\w-]+)\.function_name\}")
_LOCAL_REF = re.compile(r"\$\{local\.(\w+)\}")


def merged_resources(package: Path) -> dict[str, dict]:
    """chalice.tf.json's resources with the other *.tf.json beside it merged in, as
    Terraform reads them: an override file's block replaces the arguments it gives (and
    must override a block the package has), any other file (log_groups.tf.json) adds."""
    resources = json.loads((package / "chalice.tf.json").read_text())["resource"]
    for extra in sorted(package.glob("*.tf.json")):
        if extra.name == "chalice.tf.json":
            continue
        override = extra.name.endswith("_override.tf.json")
        for rtype, blocks in json.loads(extra.read_text()).get("resource", {}).items():
            for rname, attrs in blocks.items():
                if override and rname not in resources.get(rtype, {}):
                    raise InfraError(f"{extra.name} overrides {rtype} {rname!r}, which the "
                                     f"package does not have: {sorted(resources.get(rtype, {}))}")
                resources.setdefault(rtype, {}).setdefault(rname, {}).update(attrs)
    return resources


def package_locals(package: Path) -> dict[str, str]:
    """Every local value the package's *.tf.json define, as written."""
    values = {}
    for extra in sorted(package.glob("*.tf.json")):
        values.update(json.loads(extra.read_text()).get("locals", {}))
    return values


def effective_names(package: Path) -> dict[tuple[str, str], str]:
    """(type, resource) -> the name AWS will see, after the override files, for every
    resource of the package that has an account-wide name."""
    resources = merged_resources(package)
    functions = {n: f["function_name"] for n, f in resources.get("aws_lambda_function", {}).items()}
    local_values = package_locals(package)
    names = {}
    for rtype, blocks in resources.items():
        if rtype in SCOPED_NAMES:
            continue
        for rname, attrs in blocks.items():
            name = attrs.get("function_name") or attrs.get("name")
            if not isinstance(name, str):
                continue
            name = _LOCAL_REF.sub(lambda m: local_values.get(m.group(1), m.group(0)), name)
            name = _FUNCTION_NAME_REF.sub(lambda m: functions[m.group(1)], name)
            if "${" in name:
                raise InfraError(f"{rtype}.{rname}: cannot evaluate the name {name!r}")
            names[(rtype, rname)] = name
    return names


def name_collisions(packages: dict[str, Path]) -> list[str]:
    """Names that two stages' packages would both create (they would overwrite each other)."""
    seen: dict[tuple[str, str], str] = {}
    clashes = []
    for stage, package in packages.items():
        for (rtype, rname), name in sorted(effective_names(package).items()):
            other = seen.setdefault((rtype, name), stage)
            if other != stage:
                clashes.append(f"{rtype} {name!r} ({rname}) in stages {other} and {stage}")
    return clashes


def check_chalice_tf(chalice_tf: dict, config: dict, policies: dict[str, dict],
                     stage: str) -> list[str]:
    """Every function has the stage's subnets, security groups and environment, its own
    role with its own policy (policies: {function: policy} as configure.py wrote them),
    and the reserved concurrency of its lambda_functions entry."""
    stage_cfg = config["stages"][stage]
    want_env = stage_environment(config, stage)
    functions = chalice_tf["resource"].get("aws_lambda_function", {})
    role_policies = chalice_tf["resource"].get("aws_iam_role_policy", {})
    per_function = stage_cfg.get("lambda_functions", {})
    if not functions:
        raise InfraError("chalice.tf.json has no aws_lambda_function")
    roles = set()
    for name, fn in functions.items():
        vpc = fn.get("vpc_config") or {}
        if vpc.get("subnet_ids") != stage_cfg["subnet_ids"]:
            raise InfraError(f"function {name}: subnet_ids {vpc.get('subnet_ids')}")
        if vpc.get("security_group_ids") != stage_cfg["security_group_ids"]:
            raise InfraError(f"function {name}: security_group_ids {vpc.get('security_group_ids')}")
        got_env = (fn.get("environment") or {}).get("variables")
        if got_env != want_env:
            raise InfraError(f"function {name}: environment {got_env} != {want_env}")
        if name not in policies:
            raise InfraError(f"function {name} has no policy of its own: add it to "
                             f"deploy/configure.py's FUNCTIONS and function_statements")
        role = re.fullmatch(r"\$\{aws_iam_role\.([\w-]+)\.arn\}", fn.get("role", ""))
        if role is None or role.group(1) not in role_policies:
            raise InfraError(f"function {name}: role {fn.get('role')!r} has no policy")
        roles.add(role.group(1))
        if json.loads(role_policies[role.group(1)]["policy"]) != policies[name]:
            raise InfraError(f"function {name}: its role's policy is not "
                             f".chalice/policy-{stage}-{name}.json")
        want = per_function.get(name, {}).get("reserved_concurrency")
        got = fn.get("reserved_concurrent_executions")
        if want is None or got != want:
            raise InfraError(f"function {name}: reserved concurrency {got}, stage says {want}")
    if len(roles) != len(functions):
        raise InfraError(f"{len(functions)} functions share {len(roles)} roles")
    return sorted(functions)


def app_secured_routes(app_dir: Path, env: dict[str, str]) -> list[str]:
    """'METHOD /path' of every route of app_dir's app.py with api_key_required, as
    the app decides it with env (the stage's settings)."""
    code = ("import json, app\n"
            "print(json.dumps(sorted(f'{m} {p}' for p, methods in app.app.routes.items()"
            " for m, r in methods.items() if r.api_key_required)))")
    proc = run([sys.executable, "-c", code], cwd=app_dir, env=clean_env(env), timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_api_gateway(package: Path, app_secured: list[str]) -> dict:
    """What API Gateway does before a function: the routes the swagger secures with
    the API key are the app's api_key_required routes, the team's usage plan serves the
    stage with a quota and holds the key, the stage is throttled per method, and the
    WAF web ACL of infra/api.tf is associated with the stage."""
    resources = merged_resources(package)
    chalice_tf = json.loads((package / "chalice.tf.json").read_text())
    swagger = json.loads(chalice_tf["locals"]["chalice_api_swagger"])
    secured = sorted(f"{method.upper()} {path}" for path, methods in swagger["paths"].items()
                     for method, op in methods.items()
                     if isinstance(op, dict) and {"api_key": []} in op.get("security", []))
    if secured != app_secured:
        raise InfraError(f"swagger secures {secured}, the app's api_key_required routes "
                         f"are {app_secured}")
    if secured and "api_key" not in swagger.get("securityDefinitions", {}):
        raise InfraError("secured routes but no api_key security definition")
    refs = package_locals(package)
    stage_ref, api_ref = "${local.api_stage_name}", "${local.api_rest_api_id}"
    want_refs = {"api_rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
                 "api_stage_name": "${aws_api_gateway_deployment.rest_api.stage_name}",
                 "api_function_name": "${aws_lambda_function.api_handler.function_name}"}
    if any(refs.get(name) != ref for name, ref in want_refs.items()) or not refs.get(
            "api_stage_arn", "").endswith("/restapis/${aws_api_gateway_rest_api.rest_api.id}"
                                         "/stages/${aws_api_gateway_deployment.rest_api.stage_name}"):
        raise InfraError(f"api_gateway.tf.json's API is not the package's: {refs}")
    plan = resources.get("aws_api_gateway_usage_plan", {}).get("team")
    if (not plan or plan["api_stages"] != [{"api_id": api_ref, "stage": stage_ref}]
            or not plan.get("quota_settings", {}).get("limit")):
        raise InfraError(f"no usage plan with a quota on the API's stage: {plan}")
    plan_key = resources.get("aws_api_gateway_usage_plan_key", {}).get("team", {})
    if (plan_key.get("usage_plan_id") != "${aws_api_gateway_usage_plan.team.id}"
            or plan_key.get("key_id") != "${aws_api_gateway_api_key.team.id}"):
        raise InfraError(f"the team's key is not in its usage plan: {plan_key}")
    throttling = resources.get("aws_api_gateway_method_settings", {}).get("throttling", {})
    settings = throttling.get("settings", {})
    if (throttling.get("stage_name") != stage_ref or throttling.get("rest_api_id") != api_ref
            or "throttling_rate_limit" not in settings
            or "throttling_burst_limit" not in settings):
        raise InfraError(f"no stage throttling: {throttling}")
    variables = json.loads((package / "api_gateway.tf.json").read_text())["variable"]
    per_method = variables["api_method_throttling"]["default"]
    if "*/*" not in per_method:
        raise InfraError(f"stage throttling does not cover every method: {per_method}")
    waf = resources.get("aws_wafv2_web_acl_association", {}).get("api", {})
    if not (waf.get("resource_arn") == "${local.api_stage_arn}"
            and waf.get("web_acl_arn") == "${data.aws_wafv2_web_acl.api.arn}"):
        raise InfraError(f"the WAF web ACL is not associated with the stage: {waf}")
    return {"secured_routes": secured, "quota_per_day": variables["team_quota_per_day"]["default"],
            "method_throttling": per_method, "waf_association": waf,
            "stage_arn": refs["api_stage_arn"]}


def check_qr_event_wiring(chalice_tf: dict, outputs: dict, endpoint: str) -> dict:
    """`qr.created` reaches the handler: the rule on the app's bus (applied from
    infra/qr.tf) targets the queue, the queue redrives to its DLQ, and the package
    subscribes the `qr_created` function to that queue (an SQS event source mapping)."""
    out = {k: v["value"] for k, v in outputs.items()}
    queue_name, queue_arn = out["qr_events_queue_name"], out["qr_events_queue_arn"]
    rule_arn, bus = out["qr_created_rule_arn"], out["event_bus_name"]
    rule_name = rule_arn.rsplit("/", 1)[1]
    events = boto_client("events", endpoint)
    rule = events.describe_rule(Name=rule_name, EventBusName=bus)
    pattern = json.loads(rule["EventPattern"])
    if pattern.get("detail-type") != ["qr.created"] or rule.get("State") != "ENABLED":
        raise InfraError(f"rule {rule_name}: pattern {pattern}, state {rule.get('State')}")
    targets = [t["Arn"] for t in
               events.list_targets_by_rule(Rule=rule_name, EventBusName=bus)["Targets"]]
    if targets != [queue_arn]:
        raise InfraError(f"rule {rule_name} targets {targets}, not the queue {queue_arn}")
    sqs = boto_client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    if redrive["deadLetterTargetArn"] != out["qr_events_dlq_arn"]:
        raise InfraError(f"queue {queue_name} redrives to {redrive}, not the DLQ")
    mappings = chalice_tf["resource"].get("aws_lambda_event_source_mapping", {})
    triggers = {name: m for name, m in mappings.items()
                if m["event_source_arn"].endswith(f":sqs:${{data.aws_region.chalice.name}}:"
                                                  f"${{data.aws_caller_identity.chalice"
                                                  f".account_id}}:{queue_name}")
                or m["event_source_arn"] == queue_arn}
    if len(triggers) != 1:
        raise InfraError(f"no single SQS trigger on {queue_name} in the package: {mappings}")
    (trigger_name, trigger), = triggers.items()
    if "aws_lambda_function.qr_created." not in trigger["function_name"]:
        raise InfraError(f"{trigger_name} triggers {trigger['function_name']}, not qr_created")
    return {"rule": rule_name, "pattern": pattern, "bus": bus, "targets": targets,
            "dlq": redrive["deadLetterTargetArn"],
            "max_receive_count": int(redrive["maxReceiveCount"]),
            "trigger": {"name": trigger_name, **trigger}}


# API Gateway's own answers and the status each must have (deploy/gateway_responses.tf.json);
# DEFAULT_4XX/5XX keep the status API Gateway chose.
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": "404", "RESOURCE_NOT_FOUND": "404",
    "INVALID_API_KEY": "403", "WAF_FILTERED": "403", "THROTTLED": "429",
    "QUOTA_EXCEEDED": "429", "REQUEST_TOO_LARGE": "413", "INTEGRATION_TIMEOUT": "504",
    "INTEGRATION_FAILURE": "502", "DEFAULT_4XX": None, "DEFAULT_5XX": None,
}
# What API Gateway puts for the $context variables of a template, for the check.
_CONTEXT_SAMPLES = {"$context.error.messageString": '"Missing Authentication Token"',
                    "$context.httpMethod": "GET", "$context.path": "/api/nowhere"}


def check_gateway_responses(package: Path) -> dict[str, dict]:
    """Every gateway response of GATEWAY_RESPONSES is in the package with its status and
    a JSON body in the app's error shape, and the deployment waits for them."""
    resources = merged_resources(package)
    found = {r["response_type"]: r for r in
             resources.get("aws_api_gateway_gateway_response", {}).values()}
    if set(found) != set(GATEWAY_RESPONSES):
        raise InfraError(f"gateway responses {sorted(found)}, want {sorted(GATEWAY_RESPONSES)}")
    shown = {}
    for rtype, status in GATEWAY_RESPONSES.items():
        response = found[rtype]
        if response.get("status_code") != status:
            raise InfraError(f"{rtype}: status {response.get('status_code')}, want {status}")
        template = response["response_templates"]["application/json"]
        text = template
        for variable, sample in _CONTEXT_SAMPLES.items():
            text = text.replace(variable, sample)
        if "$" in text:
            raise InfraError(f"{rtype}: a template variable the check does not know: {template}")
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise InfraError(f"{rtype}: the body is not JSON: {template}") from exc
        if set(body) != {"error", "message"} or not all(isinstance(v, str) and v
                                                        for v in body.values()):
            raise InfraError(f"{rtype}: the body is not the app's error shape: {body}")
        shown[rtype] = {"status": status, "body": body}
    description = resources["aws_api_gateway_deployment"]["rest_api"]["stage_description"]
    waits = set(re.findall(r"aws_api_gateway_gateway_response\.(\w+)", description))
    if waits != set(resources["aws_api_gateway_gateway_response"]):
        raise InfraError(f"the stage's deployment does not follow the gateway responses: "
                         f"{description}")
    return shown


def validate_package(package: Path) -> str:
    """terraform validate where the package's providers install; else say why not."""
    data = WORK / "package-tfdata"
    init = terraform(init_args(backend=False), cwd=package, data_dir=data, timeout=300,
                     check=False)
    text = init.stdout + init.stderr
    if init.returncode == 0:
        terraform(["validate", "-no-color"], cwd=package, data_dir=data)
        return "terraform validate passed"
    if "Unsupported Terraform Core version" in text:
        raise InfraError("the override did not lift chalice.tf.json's required_version:\n" + text)
    missing = "hashicorp/null" in text and ("not found" in text or "no available releases" in text)
    if not missing:
        raise InfraError("terraform init of the Chalice package failed:\n" + text)
    if 'hashicorp/aws versions matching ">= 5.100.0, < 6.0.0"' not in text:
        raise InfraError("the override's hashicorp/aws constraint was not used:\n" + text)
    return ("terraform init stops at hashicorp/null, absent from the provider mirror (the "
            "override's required_version and aws >= 5.100 were accepted); chalice.tf.json "
            "asserted instead")


KINESIS_MAPPING_SUFFIX = "-kinesis-event-source"  # Chalice's name for a Kinesis mapping


def packaged_event_source_mappings(package: Path) -> dict[str, dict]:
    """chalice.tf.json's event source mappings with the override files merged over them."""
    return merged_resources(package).get("aws_lambda_event_source_mapping", {})


def check_event_source_mappings(mappings: dict[str, dict]) -> None:
    """A Kinesis mapping must not retry a failing batch until its records expire
    (Lambda's default): bounded retries, bisection, an on-failure destination."""
    for name, args in mappings.items():
        if not name.endswith(KINESIS_MAPPING_SUFFIX):
            continue
        retries = args.get("maximum_retry_attempts")
        if not isinstance(retries, int) or not 0 <= retries <= 10000:
            raise InfraError(f"{name}: maximum_retry_attempts {retries!r} (unbounded)")
        if args.get("bisect_batch_on_function_error") is not True:
            raise InfraError(f"{name}: bisect_batch_on_function_error is not true")
        destination = (args.get("destination_config") or {}).get("on_failure") or {}
        if not destination.get("destination_arn"):
            raise InfraError(f"{name}: no on_failure destination")


def copy_for_deploy(app_dir: Path) -> Path:
    """A copy of app_dir (its config and Chalice's cache) for deploy_with_chalice, so the
    deploy can run beside the packaging of the same app.  Taken by the caller before the
    packaging goes on: packaging rewrites .chalice/config.json in place, and a copy taken
    meanwhile could read it half written."""
    work = WORK / "deploy-app"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(app_dir, work, ignore=shutil.ignore_patterns("deployed", "__pycache__"))
    return work


def deploy_with_chalice(work: Path, stage: str, endpoint: str, log: Log = _print) -> dict:
    """`chalice deploy` of a configured copy of the app (copy_for_deploy) to moto's server,
    as `make deploy` runs it (the stage's environment over the caller's), a check of what
    it created, then `chalice delete`."""
    config = configured_stage(work, stage)
    env = clean_env(deploy_environment(config, stage, {**emulator_env(),
                                                       "AWS_ENDPOINT_URL": endpoint}))
    timings = {}
    t0 = time.monotonic()
    run([chalice_bin(), "deploy", "--stage", stage], cwd=work, env=env, timeout=900)
    timings["chalice deploy"] = round(time.monotonic() - t0, 1)
    try:
        created = check_deployed(work, config, stage, endpoint)
        t0 = time.monotonic()
        guard = apply_api_gateway(work, stage, emulator_env(), emulator=endpoint)
        timings["API guard apply"] = round(time.monotonic() - t0, 1)
        created["api_guard"] = check_api_guard(guard, deployed_api(work, stage), endpoint)
    finally:
        t0 = time.monotonic()
        destroy_api_gateway(work, stage, emulator_env(), emulator=endpoint)
        run([chalice_bin(), "delete", "--stage", stage], cwd=work, env=env, timeout=600)
        timings["chalice delete"] = round(time.monotonic() - t0, 1)
    left = [f["FunctionName"] for f in boto_client("lambda", endpoint).list_functions()[
        "Functions"] if f["FunctionName"].startswith(f"pulse-{stage}")]
    apigw = boto_client("apigateway", endpoint)
    apis = [a["name"] for a in apigw.get_rest_apis()["items"]]
    plans = [p["name"] for p in apigw.get_usage_plans()["items"]]
    keys = [k["name"] for k in apigw.get_api_keys()["items"]]
    if left or apis or plans or keys:
        raise InfraError(f"left after chalice delete: functions {left}, REST APIs {apis}, "
                         f"usage plans {plans}, API keys {keys}")
    log(f"rehearse: chalice deploy {timings['chalice deploy']} s, its API guard "
        f"{timings['API guard apply']} s, delete {timings['chalice delete']} s")
    return {**created, "timings": timings, "deleted": True}


def check_api_guard(guard: dict, api: dict[str, str], endpoint: str) -> dict:
    """What apply_api_gateway must have made on the deployed API's stage: the team's
    usage plan on it with a quota, the team's key in that plan, throttling for every
    method, the WAF web ACL of infra/api.tf associated."""
    apigw, waf = boto_client("apigateway", endpoint), boto_client("wafv2", endpoint)
    plan = apigw.get_usage_plan(usagePlanId=guard["usage_plan_id"])
    if plan.get("apiStages") != [{"apiId": api["rest_api_id"], "stage": api["stage_name"]}] \
            or not plan.get("quota", {}).get("limit"):
        raise InfraError(f"the team's usage plan is not on the deployed stage {api}: {plan}")
    keys = [k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]]
    if keys != [guard["api_key_id"]]:
        raise InfraError(f"the usage plan's keys {keys}, want the team's {guard['api_key_id']}")
    stage = apigw.get_stage(restApiId=api["rest_api_id"], stageName=api["stage_name"])
    settings = stage.get("methodSettings", {})
    every = settings.get("*/*", {})
    if not every.get("throttlingRateLimit") or not every.get("throttlingBurstLimit"):
        raise InfraError(f"the deployed stage is not throttled: {settings}")
    arn = (f"arn:aws:apigateway:{REGION}::/restapis/{api['rest_api_id']}/stages/"
           f"{api['stage_name']}")
    acl = waf.get_web_acl_for_resource(ResourceArn=arn).get("WebACL", {})
    if acl.get("Name") != guard["web_acl"]:
        raise InfraError(f"the deployed stage's WAF web ACL is {acl.get('Name')}, "
                         f"want {guard['web_acl']}")
    return {"usage_plan": plan["name"], "quota": plan["quota"], "throttle": plan["throttle"],
            "method_settings": {path: (m.get("throttlingRateLimit"), m.get("throttlingBurstLimit"))
                                for path, m in settings.items()},
            "web_acl": acl["Name"]}


def check_deployed(app_dir: Path, config: dict, stage: str, endpoint: str) -> dict:
    """What `chalice deploy` must have made: each function with the stage's environment,
    subnets and its own role with its own policy, the schedule rule targeting the ingest,
    the SQS and Kinesis event source mappings, the REST API with every route of the
    swagger and the binary media types."""
    deployed = json.loads((app_dir / ".chalice" / "deployed" / f"{stage}.json").read_text())
    by_type: dict[str, list[dict]] = {}
    for resource in deployed["resources"]:
        by_type.setdefault(resource["resource_type"], []).append(resource)
    lam, iam = boto_client("lambda", endpoint), boto_client("iam", endpoint)
    want_env = stage_environment(config, stage)
    stage_cfg = config["stages"][stage]
    functions, roles = {}, set()
    for resource in by_type.get("lambda_function", []):
        fn = lam.get_function(FunctionName=resource["lambda_arn"])["Configuration"]
        name = fn["FunctionName"]
        if fn.get("Environment", {}).get("Variables") != want_env:
            raise InfraError(f"deployed {name}: environment {fn.get('Environment')}")
        if sorted(fn.get("VpcConfig", {}).get("SubnetIds", [])) != sorted(stage_cfg["subnet_ids"]):
            raise InfraError(f"deployed {name}: subnets {fn.get('VpcConfig')}")
        role_name = fn["Role"].rsplit("/", 1)[1]
        policies = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        documents = [iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]
                     for p in policies]
        short = resource["name"]
        own = json.loads((app_dir / ".chalice" / configure.policy_file(stage, short)).read_text())
        if documents != [own]:
            raise InfraError(f"deployed {name}: role {role_name} has {documents}, not "
                             f"policy-{stage}-{short}.json")
        roles.add(role_name)
        concurrency = lam.get_function_concurrency(FunctionName=name).get(
            "ReservedConcurrentExecutions")
        want = stage_cfg["lambda_functions"][short]["reserved_concurrency"]
        if concurrency != want:
            raise InfraError(f"deployed {name}: reserved concurrency {concurrency}, want {want}")
        functions[short] = {"name": name, "role": role_name, "reserved_concurrency": concurrency}
    if len(roles) != len(functions) or not functions:
        raise InfraError(f"{len(functions)} deployed functions share {len(roles)} roles")
    events = boto_client("events", endpoint)
    rules = {}
    for resource in by_type.get("cloudwatch_event", []):
        rule = resource["rule_name"]
        targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
        rules[rule] = {"schedule": events.describe_rule(Name=rule).get("ScheduleExpression"),
                       "targets": targets}
    if not any(t.endswith(":function:" + functions["ingest_hashtags"]["name"])
               for r in rules.values() for t in r["targets"]):
        raise InfraError(f"no schedule rule targets the ingest: {rules}")
    mappings = {}
    for m in lam.list_event_source_mappings()["EventSourceMappings"]:
        source = m["EventSourceArn"].split(":")[2]
        mappings.setdefault(source, []).append(m["FunctionArn"].rsplit(":", 1)[1])
    if not {"sqs", "kinesis"} <= set(mappings):
        raise InfraError(f"event source mappings: {mappings}")
    apigw = boto_client("apigateway", endpoint)
    (api,) = [a for a in apigw.get_rest_apis()["items"]
              if a["id"] == by_type["rest_api"][0]["rest_api_id"]]
    paths = {r["path"]: sorted(r.get("resourceMethods", {}))
             for r in apigw.get_resources(restApiId=api["id"], limit=500)["items"]}
    routes = app_routes(app_dir, {**emulator_env(), **want_env})
    missing = sorted(f"{m} {p}" for p, methods in routes.items() for m in methods
                     if m not in paths.get(p, []))
    if missing:
        raise InfraError(f"the deployed REST API lacks {missing}")
    binary = api.get("binaryMediaTypes", [])
    if "image/png" not in binary:
        raise InfraError(f"the deployed REST API's binary media types: {binary}")
    return {"functions": functions, "rules": rules, "event_source_mappings": mappings,
            "rest_api": {"name": api["name"], "routes": sum(map(len, routes.values())),
                         "binary_media_types": binary}}


def app_routes(app_dir: Path, env: dict[str, str]) -> dict[str, list[str]]:
    """path -> methods of app_dir's app.py as the stage's settings make it."""
    code = ("import json, app\n"
            "print(json.dumps({p: sorted(m) for p, m in app.app.routes.items()}))")
    proc = run([sys.executable, "-c", code], cwd=app_dir, env=clean_env(env), timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def package_sizes(package: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(package.glob("*.zip"))}


def check_in_emulator(endpoint: str, outputs: dict, stage_cfg: dict) -> dict:
    """The ids in the config are real moto resources of the applied VPC."""
    ec2 = boto_client("ec2", endpoint)
    vpc_id = outputs["vpc_id"]["value"]
    subnets = ec2.describe_subnets(SubnetIds=stage_cfg["subnet_ids"])["Subnets"]
    sgs = ec2.describe_security_groups(GroupIds=stage_cfg["security_group_ids"])["SecurityGroups"]
    if {s["VpcId"] for s in subnets} != {vpc_id} or {g["VpcId"] for g in sgs} != {vpc_id}:
        raise InfraError("config subnets/security groups are not in the applied VPC")
    azs = sorted(s["AvailabilityZone"] for s in subnets)
    if len(set(azs)) != 2:
        raise InfraError(f"private subnets are not in two AZs: {azs}")
    nats = ec2.describe_nat_gateways(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}]
    )["NatGateways"]
    nat_subnets = {n["SubnetId"] for n in nats}
    nat_azs = sorted(s["AvailabilityZone"] for s in
                     ec2.describe_subnets(SubnetIds=sorted(nat_subnets))["Subnets"])
    if len(nats) != 2 or len(set(nat_azs)) != 2:
        raise InfraError(f"expected one NAT gateway per AZ, found {len(nats)} in {nat_azs}")
    cloudwatch = boto_client("cloudwatch", endpoint)
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"pulse-{STAGE}-")["MetricAlarms"]
    topic = outputs["alarm_topic_arn"]["value"]
    names = {a["AlarmName"] for a in alarms}
    missing = sorted(set(outputs["alarm_names"]["value"]) - names)
    silent = sorted(a["AlarmName"] for a in alarms if a["AlarmActions"] != [topic])
    if missing or silent:
        raise InfraError(f"alarms missing in the emulator {missing}, not publishing to "
                         f"{topic}: {silent}")
    body = json.loads(cloudwatch.get_dashboard(
        DashboardName=outputs["dashboard_name"]["value"])["DashboardBody"])
    shown = json.dumps(body)
    app_metrics = [n for names_ in outputs["app_metric_names"]["value"].values()
                   for n in names_]
    unshown = [n for n in app_metrics if f'MetricName=\\"{n}\\"' not in shown]
    aws = {ns: ns in shown for ns in ("AWS/Lambda", "AWS/ApiGateway", "AWS/Kinesis", "AWS/SQS",
                                      "AWS/DynamoDB", "AWS/MemoryDB", "AWS/ElastiCache")}
    if unshown or not all(aws.values()):
        raise InfraError(f"dashboard lacks app metrics {unshown} or namespaces {aws}")
    return {"subnets": {s["SubnetId"]: s["AvailabilityZone"] for s in subnets},
            "security_groups": [g["GroupId"] for g in sgs], "nat_gateway_azs": nat_azs,
            "alarms": {a["AlarmName"]: (a["Namespace"], a["MetricName"], a["AlarmActions"])
                       for a in alarms},
            "dashboard": {"name": outputs["dashboard_name"]["value"],
                          "widgets": [w["properties"]["title"] for w in body["widgets"]],
                          "app_metrics": app_metrics}}


# --- the upgrade check -----------------------------------------------------------------

# The revision of infra/ an existing deployment is upgraded from: the last flat
# layout (per-AZ resources by count index, the emulator's switches as variables).
UPGRADE_FROM = "ca6429a893f05fcb54ca4ee3ba0e471785a74880"
# Resources that hold data or that data lives in: an upgrade must neither destroy
# nor replace one of them.
STATEFUL_TYPES = (
    "aws_s3_bucket", "aws_dynamodb_table", "aws_kinesis_stream", "aws_memorydb_cluster",
    "aws_elasticache_cluster", "aws_sqs_queue", "aws_secretsmanager_secret", "aws_kms_key",
    "aws_cloudwatch_event_bus", "aws_subnet", "aws_vpc",
)


def is_stateful(resource_type: str) -> bool:
    return resource_type in STATEFUL_TYPES or resource_type.startswith("aws_s3_bucket")


def export_infra(rev: str, dest: Path) -> list[str]:
    """infra/ as it was at rev, in dest, ready for the rehearsal; returns the variable
    arguments for an emulator at {endpoint}. A revision with deploy/rehearsal/ gets
    those files beside it; an older one had the emulator's switches in infra/ itself
    (aws_endpoint_url, infra/rehearsal.tfvars)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    git = shutil.which("git")
    if git is None:
        raise InfraError("git is not on PATH (the upgrade check reads an earlier infra/)")
    listed = run([git, "ls-tree", "-r", "--name-only", rev, "--", "infra", "deploy/rehearsal"],
                 cwd=REPO, env=clean_env()).stdout.split()
    for name in listed:
        path = Path(name)
        if path.suffix not in (".tf", ".tfvars"):
            continue
        text = run([git, "show", f"{rev}:{name}"], cwd=REPO, env=clean_env()).stdout
        (dest / ("rehearsal.tfvars" if path.suffix == ".tfvars" else path.name)).write_text(text)
    if not (dest / "rehearsal.tfvars").exists():
        raise InfraError(f"{rev}: no rehearsal.tfvars in infra/ or deploy/rehearsal/")
    endpoint_var = ("emulator_endpoint" if any("deploy/rehearsal/" in n for n in listed)
                    else "aws_endpoint_url")
    return [f"-var-file={dest / 'rehearsal.tfvars'}", f"-var={endpoint_var}={{endpoint}}"]


def plan_changes(plan: dict) -> list[dict]:
    """Each resource change of `terraform show -json` of a plan, in short."""
    return [{"address": c["address"], "previous_address": c.get("previous_address"),
             "type": c["type"], "actions": c["change"]["actions"]}
            for c in plan.get("resource_changes", []) if c.get("mode") == "managed"]


def saved_plan(tf_dir: Path, data_dir: Path, args: Sequence[str], env: dict[str, str]) -> dict:
    """`terraform plan -out` then `terraform show -json` of that plan."""
    plan_file = data_dir / "saved.tfplan"
    terraform(["plan", "-no-color", f"-out={plan_file}", *args], cwd=tf_dir, data_dir=data_dir,
              env=env, timeout=900)
    return json.loads(terraform(["show", "-json", "-no-color", str(plan_file)], cwd=tf_dir,
                                data_dir=data_dir, env=env).stdout)


def upgrade_check(rev: str = UPGRADE_FROM, log: Log = _print) -> dict:
    """Apply infra/ of rev to a fresh moto server, then plan today's infra/ against that
    state, and rev's own infra/ too: what rev's plan shows is the emulator's drift
    (attributes moto reports back differently), what only today's shows is the upgrade.

    Returns the upgrade's changes, `moved` (old address -> new), `lost` (stateful
    resources it would destroy or replace: must be empty) and `beyond_drift` (changes
    that rev's own plan does not have)."""
    work = LOCAL / "upgrade"
    work.mkdir(parents=True, exist_ok=True)
    state = work / "terraform.tfstate"
    for old in work.glob("terraform.tfstate*"):
        old.unlink()
    old_dir, new_dir = work / "old", copy_infra(work / "new", rehearsal=True)
    old_vars = export_infra(rev, old_dir)
    data = {d: work / f"{d.name}-tfdata" for d in (old_dir, new_dir)}
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    for tf_dir in (old_dir, new_dir):
        terraform(init_args(), cwd=tf_dir, data_dir=data[tf_dir], timeout=300)
    timings["init"] = round(time.monotonic() - t0, 1)
    with moto_server(work) as endpoint:
        env = emulator_env()
        old_args = [f"-state={state}", *(v.format(endpoint=endpoint) for v in old_vars)]
        log(f"upgrade: apply infra/ of {rev[:12]} ...")
        t0 = time.monotonic()
        terraform(["apply", "-auto-approve", "-no-color", *old_args],
                  cwd=old_dir, data_dir=data[old_dir], env=env, timeout=900)
        timings["apply old"] = round(time.monotonic() - t0, 1)
        log("upgrade: plan today's infra/ and the old one against that state ...")
        t0 = time.monotonic()
        changes = plan_changes(saved_plan(new_dir, data[new_dir],
                                          [f"-state={state}", *rehearsal_vars(endpoint)], env))
        drift = plan_changes(saved_plan(old_dir, data[old_dir], old_args, env))
        timings["plan both"] = round(time.monotonic() - t0, 1)
    moved = {c["previous_address"]: c["address"] for c in changes if c["previous_address"]}
    drifted = {(moved.get(c["address"], c["address"]), tuple(c["actions"])) for c in drift}
    result = {
        "from": rev, "changes": changes, "moved": moved, "timings": timings,
        "lost": [f"{c['address']}: {'/'.join(c['actions'])}" for c in changes
                 if is_stateful(c["type"]) and "delete" in c["actions"]],
        "beyond_drift": [c for c in changes if c["actions"] != ["no-op"]
                         and (c["address"], tuple(c["actions"])) not in drifted],
    }
    (work / "upgrade.json").write_text(json.dumps(result, indent=2))
    log(f"upgrade: {len(moved)} moved, {len(result['lost'])} stateful lost, "
        f"{len(result['beyond_drift'])} changes beyond the emulator's drift "
        f"({sum(c['actions'] != ['no-op'] for c in drift)} drift)")
    return result


def rehearse(log: Log = _print, upgrade_from: str | None = UPGRADE_FROM) -> dict:
    """The rehearsal of a fresh deployment and, beside it (its own moto server, at the
    same time: both mostly wait on the emulator), the upgrade check from upgrade_from,
    whose result is under "upgrade"."""
    if upgrade_from is None:
        return rehearse_fresh(log)
    with ThreadPoolExecutor(max_workers=1) as pool:
        upgrade = pool.submit(upgrade_check, upgrade_from, log)
        result = rehearse_fresh(log)
        result["upgrade"] = upgrade.result()
    return result


def rehearse_fresh(log: Log = _print) -> dict:
    """Apply, configure, package, check, destroy. Returns what was seen and timed."""
    WORK.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    result: dict = {"timings": timings}
    t_all = time.monotonic()

    def step(name: str):
        @contextmanager
        def timer():
            t0 = time.monotonic()
            log(f"rehearse: {name} ...")
            yield
            timings[name] = round(time.monotonic() - t0, 1)
            log(f"rehearse: {name} done in {timings[name]} s")
        return timer()

    tf_dir = copy_infra(WORK / "tf", rehearsal=True)
    data = WORK / "tfdata"
    state = WORK / "terraform.tfstate"
    for old in WORK.glob("terraform.tfstate*"):  # a previous run's moto is gone
        old.unlink()

    with step("terraform init"):
        terraform(init_args(), cwd=tf_dir, data_dir=data, timeout=300)

    with moto_server(WORK) as endpoint:
        env = emulator_env()
        tf_vars = [f"-state={state}", *rehearsal_vars(endpoint)]
        applied = False
        deployed = None  # the chalice deploy running beside the packaging
        try:
            with step("terraform apply"):
                applied = True  # a partial apply still needs a destroy
                terraform(["apply", "-auto-approve", "-no-color", *tf_vars],
                          cwd=tf_dir, data_dir=data, env=env, timeout=900)
            outputs = json.loads(terraform(["output", "-json", "-no-color", f"-state={state}"],
                                           cwd=tf_dir, data_dir=data, env=env).stdout)
            (WORK / "outputs.json").write_text(json.dumps(outputs, indent=2))
            result["outputs"] = {k: v["value"] for k, v in outputs.items()}

            with step("configure"):
                app_dir = copy_app(WORK / "app")
                config_path = app_dir / ".chalice" / "config.json"
                # moto has no ElastiCache cache-node data, so MEMCACHED_SERVERS
                # comes out empty here (never in AWS, where configure refuses it).
                proc = run([sys.executable, REPO / "deploy" / "configure.py", "--stage", STAGE,
                            "--outputs-file", WORK / "outputs.json", "--config", config_path,
                            "--allow-empty", "MEMCACHED_SERVERS"],
                           cwd=REPO, env=clean_env())
                log(proc.stdout.strip())
                config = json.loads(config_path.read_text())
                policy_files = {name: config_path.parent / configure.policy_file(STAGE, name)
                                for name in ("", *configure.FUNCTIONS)}
                policies = {name: json.loads(path.read_text())
                            for name, path in policy_files.items()}
                result["stage_config"] = config["stages"][STAGE]
                result["stage_environment"] = stage_environment(config, STAGE)
                result["policies"] = policies

            with step("emulator checks"):
                result["emulator"] = check_in_emulator(endpoint, outputs, config["stages"][STAGE])
                # The generated MemoryDB password must reach neither outputs nor config.
                password = boto_client("secretsmanager", endpoint).get_secret_value(
                    SecretId=outputs["memorydb_password_secret_arn"]["value"])["SecretString"]
                written = [WORK / "outputs.json", config_path, *policy_files.values()]
                leaks = [str(p) for p in written if password in p.read_text()]
                if len(password) < 16 or leaks:
                    raise InfraError(f"MemoryDB password found in {leaks}")
                result["secret_checked_in"] = [p.name for p in written]

            with step("chalice package"):
                package = WORK / "package"
                chalice_tf = package_for_terraform(app_dir, STAGE, package, log)
                result["overrides"] = [p.name for p in override_files()]
                result["package_files"] = [p.name for p in package_files()]
                chalice_text = (package / "chalice.tf.json").read_text()
                if password in chalice_text:
                    raise InfraError("MemoryDB password found in chalice.tf.json")
                result["secret_checked_in"].append("chalice.tf.json")
                result["chalice_required_version"] = chalice_tf["terraform"]["required_version"]
                result["functions"] = check_chalice_tf(chalice_tf, config, policies, STAGE)
                result["api_gateway"] = check_api_gateway(package, app_secured_routes(
                    app_dir, {**emulator_env(), **result["stage_environment"]}))
                result["gateway_responses"] = check_gateway_responses(package)
                mappings = packaged_event_source_mappings(package)
                check_event_source_mappings(mappings)
                result["event_source_mappings"] = mappings
                result["qr_event_wiring"] = check_qr_event_wiring(chalice_tf, outputs, endpoint)
                result["package_sizes"] = sizes = package_sizes(package)
                total = sum(sizes.values())
                if not sizes or total >= PACKAGE_LIMIT_BYTES:
                    raise InfraError(f"package is {total} bytes zipped: {sizes}")
                log_groups = package / LOG_GROUPS_FILE
                result["log_groups"] = (json.loads(log_groups.read_text())["resource"]
                                        ["aws_cloudwatch_log_group"] if log_groups.exists() else {})

            # chalice deploy to the same emulator, on its own copy of the app, while
            # the second stage is packaged (both mostly wait on Chalice and moto).
            deploy_pool = ThreadPoolExecutor(max_workers=1)
            deployed = deploy_pool.submit(deploy_with_chalice, copy_for_deploy(app_dir),
                                          STAGE, endpoint, log)
            deploy_pool.shutdown(wait=False)

            with step("second stage package"):
                # dev and prod in one account: a second stage of the same app,
                # packaged beside the first, must not share a single name with it.
                second = "dev"  # a real stage: PULSE_STAGE accepts only the app's stages
                both = json.loads(config_path.read_text())
                both["stages"][second] = json.loads(json.dumps(both["stages"][STAGE]))
                both["stages"][second]["environment_variables"]["PULSE_STAGE"] = second
                config_path.write_text(json.dumps(both, indent=2))
                package_for_terraform(app_dir, second, WORK / "package-b", log)
                packages = {STAGE: package, second: WORK / "package-b"}
                result["stage_names"] = {s: sorted(effective_names(p).values())
                                         for s, p in packages.items()}
                clashes = name_collisions(packages)
                if clashes:
                    raise InfraError("two stages would overwrite each other's resources:\n"
                                     + "\n".join(clashes))

            with step("package validate"):
                result["package_validation"] = validate_package(package)

            with step("chalice deploy and delete"):
                result["chalice_deploy"] = deployed.result()
        finally:
            if deployed is not None and not deployed.done():
                wait([deployed])  # its functions use the subnets destroyed below
            if applied:
                with step("terraform destroy"):
                    listed = terraform(["state", "list", f"-state={state}"], cwd=tf_dir,
                                       data_dir=data, env=env, check=False).stdout.split()
                    forget = [r for r in EMULATOR_FORGETS if r in listed]
                    if forget:
                        terraform(["state", "rm", f"-state={state}", *forget],
                                  cwd=tf_dir, data_dir=data, env=env)
                    if "aws_memorydb_cluster.main" in forget:
                        memorydb = boto_client("memorydb", endpoint)
                        for cluster in memorydb.describe_clusters()["Clusters"]:
                            memorydb.delete_cluster(ClusterName=cluster["Name"])
                    try:
                        terraform(["destroy", "-auto-approve", "-no-color", *tf_vars],
                                  cwd=tf_dir, data_dir=data, env=env, timeout=900)
                    except InfraError as exc:
                        # moto sometimes drops a gateway endpoint's prefix-list
                        # route before DeleteVpcEndpoints, which then answers
                        # InvalidRoute.NotFound; real AWS does not.  Forget the
                        # endpoints and destroy the rest once more.
                        if "InvalidRoute.NotFound" not in str(exc):
                            raise
                        listed = terraform(["state", "list", f"-state={state}"], cwd=tf_dir,
                                           data_dir=data, env=env, check=False).stdout.split()
                        endpoints = [r for r in listed if "aws_vpc_endpoint" in r]
                        if endpoints:
                            terraform(["state", "rm", f"-state={state}", *endpoints],
                                      cwd=tf_dir, data_dir=data, env=env)
                        result["forgotten_for_moto_route_bug"] = endpoints
                        terraform(["destroy", "-auto-approve", "-no-color", *tf_vars],
                                  cwd=tf_dir, data_dir=data, env=env, timeout=900)
                    left = terraform(["state", "list", f"-state={state}"], cwd=tf_dir,
                                     data_dir=data, env=env, check=False).stdout.split()
                    if left:
                        raise InfraError(f"left in the state after destroy: {left}")
                    result["forgotten_before_destroy"] = forget
    timings["total"] = round(time.monotonic() - t_all, 1)
    return result


def report_upgrade(result: dict) -> None:
    """Print the upgrade check's outcome; InfraError if it would lose a stateful resource."""
    print(f"upgrade from {result['from'][:12]}: {len(result['moved'])} resources moved, "
          f"{len(result['beyond_drift'])} changes beyond the emulator's drift, "
          f"timings (s) {result['timings']}")
    if result["lost"]:
        raise InfraError(f"upgrading from {result['from'][:12]} would destroy or replace:\n"
                         + "\n".join(result["lost"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "rehearse", "upgrade", "package", "deploy",
                                            "undeploy"])
    parser.add_argument("--stage", help="package, deploy, undeploy: the Chalice stage")
    parser.add_argument("--out", type=Path, default=REPO / "out", help="package: output folder")
    parser.add_argument("--from", dest="rev", default=UPGRADE_FROM,
                        help="upgrade: the git revision of infra/ to upgrade from")
    args = parser.parse_args(argv)
    if args.command in ("deploy", "undeploy"):
        if not args.stage:
            parser.error(f"{args.command} needs --stage")
        try:
            return (chalice_deploy if args.command == "deploy" else chalice_delete)(args.stage)
        except InfraError as exc:
            print(f"infra {args.command}: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, StageNotConfigured) else 1
    if args.command == "package":
        if not args.stage:
            parser.error("package needs --stage")
        try:
            package_for_terraform(REPO, args.stage, args.out)
        except InfraError as exc:
            print(f"infra package: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, StageNotConfigured) else 1
        print(f"package: {args.out} (chalice.tf.json, deployment.zip, "
              + ", ".join(p.name for p in sorted(args.out.glob("*.tf.json"))
                          if p.name != "chalice.tf.json") + "): terraform -chdir=... apply")
        return 0
    if terraform_bin() is None:
        print("infra: terraform is not on PATH", file=sys.stderr)
        return 1
    try:
        if args.command == "check":
            check()
        elif args.command == "upgrade":
            report_upgrade(upgrade_check(args.rev))
        else:
            result = rehearse()
            sizes = result["package_sizes"]
            print(f"rehearse: functions {result['functions']}, package "
                  + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items())
                  + f" (total {sum(sizes.values()) / 1e6:.2f} MB zipped)")
            wiring = result["qr_event_wiring"]
            print(f"rehearse: qr.created: rule {wiring['rule']} on {wiring['bus']} -> "
                  f"{wiring['targets']} (DLQ after {wiring['max_receive_count']} receives) -> "
                  f"{wiring['trigger']['name']} -> {wiring['trigger']['function_name']}")
            dashboard = result["emulator"]["dashboard"]
            print(f"rehearse: dashboard {dashboard['name']}: {len(dashboard['widgets'])} widgets "
                  f"({'; '.join(dashboard['widgets'])}), app metrics "
                  + ", ".join(dashboard["app_metrics"]))
            alarms = result["emulator"]["alarms"]
            topics = sorted({t for *_, actions in alarms.values() for t in actions})
            print(f"rehearse: {len(alarms)} alarms -> SNS {topics}: " + ", ".join(sorted(alarms)))
            api = result["api_gateway"]
            print(f"rehearse: API key on {api['secured_routes']}, usage plan quota "
                  f"{api['quota_per_day']}/day, stage throttling {api['method_throttling']}, "
                  f"WAF association {api['stage_arn']}")
            print("rehearse: gateway responses " + ", ".join(
                f"{t} {r['status'] or 'as is'}" for t, r in result["gateway_responses"].items()))
            print(f"rehearse: {result['package_validation']}")
            deployed = result["chalice_deploy"]
            print(f"rehearse: chalice deploy created {sorted(deployed['functions'])} (one role "
                  f"each), rules {sorted(deployed['rules'])}, event source mappings "
                  f"{deployed['event_source_mappings']}, REST API {deployed['rest_api']}; "
                  f"its guard {deployed['api_guard']}; "
                  f"chalice delete removed them ({deployed['timings']})")
            print(f"rehearse: timings (s) {result['timings']}")
            report_upgrade(result["upgrade"])
    except InfraError as exc:
        print(f"infra {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
