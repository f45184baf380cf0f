"""Under CI=true a missing ../shared fails the run instead of skipping a third of it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def run_pytest_in_a_clone_without_shared(tmp_path, ci: str) -> subprocess.CompletedProcess:
    clone = tmp_path / "clone" / "pulse"  # no "shared" beside it
    shutil.copytree(ROOT / "tests", clone / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("chalicelib", "local"):
        shutil.copytree(ROOT / name, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", clone / "pyproject.toml")
    env = {**os.environ, "CI": ci}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_hashtags_sample.py"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=120)


def test_ci_fails_when_shared_is_absent(tmp_path):
    proc = run_pytest_in_a_clone_without_shared(tmp_path, "true")
    assert proc.returncode != 0
    assert "CI=true but" in proc.stdout + proc.stderr


def test_a_developer_without_shared_gets_skips(tmp_path):
    proc = run_pytest_in_a_clone_without_shared(tmp_path, "")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped" in proc.stdout
