"""Cold starts: importing app.py must not import a client library or the metrics library."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("boto3", "botocore", "tweepy", "qrcode", "PIL", "redis", "pymemcache",
         "aws_lambda_powertools")


@pytest.mark.parametrize("code", [
    "import app",
    # GET /openapi.json imports and builds the contract in its handler: cheap too
    "import app; app.api_document()",
])
def test_importing_app_imports_no_client_library(code):
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT,
                         capture_output=True, text=True, check=True).stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.splitlines()
                if line.startswith("import time:")}
    assert "chalice" in imported  # the measurement itself works
    assert not imported & set(HEAVY), f"app.py imports {sorted(imported & set(HEAVY))}"
