"""What the features' command lines share: run the chosen subcommand and turn the failures a
user can act on into one line on stderr and exit code 2 instead of a traceback."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def run_command(args: argparse.Namespace,
                expected_error: Callable[[BaseException], str | None]) -> int:
    """args.func(args)'s exit code; Ctrl-C is 130; an exception expected_error names (its
    one-line message) is 2; any other exception (a bug) propagates with its traceback."""
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("pulse: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = expected_error(exc)
        if message is None:
            raise
        print(f"pulse: {message}", file=sys.stderr)
        return 2
