"""The hotspots feature's command line, with the app's settings (by default the stack
`make run` started).

    python -m chalicelib.hotspots.cli replay [--max-messages N] [--json]

`replay` applies again the click batches the consumer skipped, as the on-failure queue
describes them (replay.py): KINESIS_FAILURE_QUEUE, or the queue CLICK_FAILURE_QUEUE_ARN
names in AWS.  Exit code 0 when every batch was replayed (or there was none), 2 when a
batch could not be (its records are past the stream's retention) or on an expected
failure (a bad setting, AWS or Redis unreachable), said in one line.
"""
from __future__ import annotations

import argparse
import json
import sys

from chalicelib.cli_support import run_command


def _queue_url(sqs, settings) -> str:
    name = (settings.click_failure_queue_arn.rsplit(":", 1)[1]
            if settings.click_failure_queue_arn else settings.kinesis_failure_queue)
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def replay(args) -> int:
    from chalicelib.clients import get_aws_client
    from chalicelib.hotspots.replay import Replayer
    from chalicelib.hotspots.wiring import get_consumer
    from chalicelib.settings import get_settings

    settings = get_settings()
    sqs = get_aws_client("sqs", background=True)
    replayer = Replayer(sqs, _queue_url(sqs, settings),
                        get_aws_client("kinesis", background=True), get_consumer(),
                        log_line=(lambda line: None) if args.json else
                        (lambda line: print(f"replay: {line}")))
    result = replayer.run(max_messages=args.max_messages)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"replay: {len(result.batches)} batches, "
              f"{sum(b.applied for b in result.batches)} clicks applied, {result.lost} lost, "
              f"{result.unreadable} unreadable messages")
    return 2 if result.lost else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.hotspots.cli",
                                     description="Pulse click hotspots")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="apply again the click batches the consumer skipped")
    p.add_argument("--max-messages", type=int, default=1000,
                   help="on-failure queue messages to read at most (default 1000)")
    p.add_argument("--json", action="store_true", help="the result as one JSON object")
    p.set_defaults(func=replay)
    return parser


def _expected_error(exc: BaseException) -> str | None:
    """The one-line message for a failure the user can act on; None for bugs."""
    from chalicelib.errors import is_dependency_failure
    from chalicelib.settings import SettingsError

    if isinstance(exc, SettingsError) or is_dependency_failure(exc):
        return f"{type(exc).__name__}: {exc}"
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv), _expected_error)


if __name__ == "__main__":
    sys.exit(main())
