"""Cold-start import cost: `import app` against the client libraries it must not import.

Each figure is the median of N fresh interpreters (python -X importtime, the
top-level cumulative microseconds), measured side by side in one run.

    python -m bench.import_cost [N]
"""
from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The metrics library: what chalicelib.telemetry imports when an invocation's metrics are
# written (after the first invocation's answer is computed), never at `import app`.
EMF = "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch"
TARGETS = ["app", "boto3", "redis", "tweepy", "qrcode, PIL.Image", "pymemcache.client.hash", EMF]


def import_us(stmt: str) -> int:
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {stmt}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stderr
    total = 0
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and not parts[2].startswith("  ") and parts[1].strip().isdigit():
            total += int(parts[1])  # top-level modules only: their cumulative time
    return total


def main(n: int = 7) -> None:
    results = {t: statistics.median(import_us(t) for _ in range(n)) for t in TARGETS}
    base = results["app"]
    print(f"{'import':28} {'median ms':>10} {'x app':>7}")
    for target, us in results.items():
        label = "powertools EMF provider" if target == EMF else target
        print(f"{label:28} {us / 1000:10.1f} {us / base:7.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
