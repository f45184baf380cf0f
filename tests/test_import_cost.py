"""Cold starts: importing app.py must not import a client library (issue #2)."""
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("boto3", "botocore", "tweepy", "qrcode", "PIL", "redis", "pymemcache")


def test_importing_app_imports_no_client_library():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.splitlines()
                if line.startswith("import time:")}
    assert "chalice" in imported  # the measurement itself works
    assert not imported & set(HEAVY), f"app.py imports {sorted(imported & set(HEAVY))}"
