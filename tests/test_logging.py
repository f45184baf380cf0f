"""Logs reach CloudWatch: after `import app`, chalicelib's INFO lines and the
app's own `app.log.info(...)` are written (Chalice alone sets the `pulse`
logger to ERROR and drops them), at the level LOG_LEVEL names."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from tests.conftest import ROOT

EMIT = """
import logging
import app
logging.getLogger("pulse.leaderboard.sources").info("info-from-chalicelib")
logging.getLogger("pulse.leaderboard.ingest").warning("warning-from-chalicelib")
app.app.log.debug("debug-from-app")
"""


def run_with_log_level(level: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
    if level is not None:
        env["LOG_LEVEL"] = level
    proc = subprocess.run([sys.executable, "-c", EMIT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return proc.stdout  # Chalice's handler writes to stdout, which Lambda sends to CloudWatch


def test_info_from_chalicelib_reaches_the_output_after_import_app():
    out = run_with_log_level("INFO")
    lines = [json.loads(line) for line in out.splitlines()]  # one JSON object per line
    assert {"logger": "pulse.leaderboard.sources", "level": "INFO",
            "message": "info-from-chalicelib"}.items() <= lines[0].items()
    assert "warning-from-chalicelib" in out
    assert "debug-from-app" not in out


def test_log_level_names_the_level():
    warning_only = run_with_log_level("warning")
    assert "info-from-chalicelib" not in warning_only
    assert "warning-from-chalicelib" in warning_only
    assert "debug-from-app" in run_with_log_level("DEBUG")


def test_unset_level_means_info_and_an_unknown_one_stops_the_import():
    assert "info-from-chalicelib" in run_with_log_level(None)
    env = {**os.environ, "LOG_LEVEL": "chatty"}
    proc = subprocess.run([sys.executable, "-c", EMIT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "SettingsError: LOG_LEVEL must be one of DEBUG, INFO" in proc.stderr


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_the_scheduled_ingest_writes_its_summary(pulse_env):
    from chalice.test import Client

    import app as pulse_app
    from tests.test_ingest_handler import scheduled_event

    records = _Records()
    pulse_app.app.log.addHandler(records)  # sees exactly what the logger lets through
    try:
        with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
            client.lambda_.invoke("ingest_hashtags", scheduled_event(client))
    finally:
        pulse_app.app.log.removeHandler(records)
    assert any(line.startswith("ingest: ") for line in records.lines), records.lines


def test_every_deployed_stage_keeps_its_logs_for_a_bounded_time():
    import json

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage in ("dev", "prod"):
        days = config["stages"][stage].get("log_retention_in_days")
        assert isinstance(days, int) and days > 0, stage
    assert config["stages"]["dev"]["environment_variables"].get(
        "LOG_LEVEL", config["environment_variables"]["LOG_LEVEL"]) == "INFO"
