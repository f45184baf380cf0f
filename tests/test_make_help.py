"""`make help` lists every target the README tells a user to run, and each is a target."""
from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT


def readme_targets() -> set[str]:
    """The X of each `make X` in the README's code: inline spans and ```sh blocks."""
    text = (ROOT / "README.md").read_text()
    code = re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
    return {m for chunk in code for m in re.findall(r"(?:^|\s)make ([a-z][a-z-]*)", chunk,
                                                    re.M)}


def help_targets() -> set[str]:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return set(re.findall(r"^make ([a-z][a-z-]*)", out, re.M))


def test_make_help_lists_every_target_the_readme_names():
    named = readme_targets()
    assert {"run", "test", "test-fast", "configure", "package", "rehearse", "infra-check",
            "deploy"} <= named
    listed = help_targets()
    assert named <= listed, f"not in `make help`: {sorted(named - listed)}"
    assert {"clean"} <= listed


def test_every_target_help_lists_exists():
    for target in sorted(help_targets()):
        dry = subprocess.run(["make", "-n", target, "STAGE=prod"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
        assert "No rule to make target" not in dry.stderr, (target, dry.stderr)
        assert dry.returncode == 0, (target, dry.stderr)
