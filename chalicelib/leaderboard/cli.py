"""The leaderboard's command line, with the app's settings (REDIS_URL etc.; by default the
stack `make run` started).

    python -m chalicelib.leaderboard.cli ingest [--max-pages N] [--json]
    python -m chalicelib.leaderboard.cli import-archive PATH... [--batch-size N] [--no-progress]
    python -m chalicelib.leaderboard.cli leaderboard [--window all|1h|24h|7d] [--order top|rising]
        [--n N] [--offset N] [--board NAME] [--json]    (--json: GET /leaderboard's answer)

Expected failures (an unknown board, a missing or bad archive file, a bad setting, Redis
unreachable, no X token, an X API error) end with one line on stderr and exit code 2, not
a traceback; a bad argument is argparse's usage line and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chalicelib.cli_support import run_command
from chalicelib.leaderboard import WINDOWS


class CliError(Exception):
    """A failure the user can act on, said in one line."""


def _settings():
    from chalicelib.settings import get_settings

    return get_settings()


def _redis():
    from chalicelib.clients import make_redis

    # Batches of ~1000 tweets are one script each: allow more than the API's 1 s.
    return make_redis(read_timeout=max(_settings().read_timeout, 10.0))


def _board(name: str | None):
    """The named board (default: the first configured one); unknown: exit 2."""
    from chalicelib.leaderboard.wiring import board_names, new_board

    names = board_names()
    if name is not None and name not in names:
        raise CliError(f"no board {name!r}: the boards are {', '.join(names)}")
    return new_board(name or names[0], redis=_redis())


def _print_json(obj: Any) -> None:
    import json

    print(json.dumps(obj, ensure_ascii=False, indent=2))


# --- commands -------------------------------------------------------------------------

def cmd_ingest(args: argparse.Namespace) -> int:
    from chalicelib.leaderboard.ingest import run_scheduled_ingest

    results = run_scheduled_ingest(_settings(), redis=_redis(), max_pages=args.max_pages,
                                   boards=[args.board] if args.board else None)
    if args.json:
        _print_json({board: result.to_dict() for board, result in results.items()})
    else:
        for board, result in results.items():
            print(f"board {board}: ingest from {result.source}: {result.summary()}")
    return 0


def cmd_import_archive(args: argparse.Namespace) -> int:
    from chalicelib.leaderboard.ingest import import_archive
    from chalicelib.leaderboard.sources import ArchiveSource, retweets_from_settings

    retweets = retweets_from_settings(_settings())
    source = ArchiveSource(args.paths)
    try:
        total = source.total_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    board = _board(args.board)
    board.progress()  # reach Redis before reading a large file
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (CI, pipes)
        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                   desc="import", disable=None, file=sys.stderr)
    try:
        result = import_archive(board, source, batch_size=args.batch_size,
                                on_bytes=bar.update if bar is not None else None,
                                retweets=retweets)
        if bar is not None:
            bar.update(total - bar.n)  # blank lines carry no page
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        _print_json({"tweets_read": result.tweets_read, "tweets_counted": result.tweets_counted,
                     "duplicates": result.duplicates, "pages": result.pages,
                     "skipped_files": result.skipped_files,
                     "files": result.per_file, "seconds": round(result.seconds, 3)})
    else:
        print(result.summary())
    return 0


def _width(text: str) -> int:
    import unicodedata

    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from chalicelib.leaderboard import api

    # the route's own answer: `--json` prints exactly what GET /leaderboard returns
    body = api.top({"window": args.window or "", "n": str(args.n), "offset": str(args.offset),
                    "board": args.board or "", "order": args.order}, _board(args.board))
    if args.json:
        _print_json(body)
        return 0
    entries, window = body["items"], body["window"]
    if body["order"] == "rising":
        print(f"Rising hashtags on board {body['board']}, window {window}: "
              f"{body['candidates']} tags scored"
              + (f", updated {body['updated_at']}" if body["updated_at"] else ""))
    else:
        print(f"Top hashtags, window {window}: {body['total']} tags"
              + (f", updated {body['updated_at']}" if body["updated_at"] else ""))
    if not entries:
        if window == "all" and args.offset == 0:
            print("(no hashtags counted yet: run `python -m chalicelib.leaderboard.cli ingest` or "
                  "`import-archive`)")
        else:
            print(f"(no hashtags in window {window} from rank {args.offset + 1})")
        return 0
    columns = ["rank", "hashtag", "score"] + (["rising"] if body["order"] == "rising" else [])
    rows = [[str(e["rank"]), "#" + e["hashtag"], str(e["score"])]
            + ([f"{e['rising']:.1f}"] if body["order"] == "rising" else []) for e in entries]
    widths = [max(_width(c), *(_width(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells):
        return "  ".join(cell + " " * (w - _width(cell)) if i == 1
                         else " " * (w - _width(cell)) + cell
                         for i, (cell, w) in enumerate(zip(cells, widths, strict=True)))

    print(line(columns).rstrip())
    for row in rows:
        print(line(row).rstrip())
    return 0


# --- parsing and errors ------------------------------------------------------------------

def _whole_number(minimum: int, requirement: str):
    """An argparse type: a whole number of at least `minimum` (`requirement` says so)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {value}")
        return value

    return parse


_positive = _whole_number(1, "at least 1")
_non_negative = _whole_number(0, "0 or more")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.leaderboard.cli",
        description="Pulse hashtag leaderboard: ingest, import archives, show the board.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="one scheduled ingest run now (LEADERBOARD_SOURCE)")
    p.add_argument("--max-pages", type=_positive, default=None,
                   help="page cap for this run (default: INGEST_MAX_PAGES)")
    p.add_argument("--board", help="only this board (default: every board)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("import-archive", help="count the tweets of twarc2 JSONL files")
    p.add_argument("paths", nargs="+", metavar="PATH", help="twarc2 JSONL file(s)")
    p.add_argument("--batch-size", type=_positive, default=1000,
                   help="tweets per atomic write (default 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--board", help="the board to count into (default: the first)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_import_archive)

    p = sub.add_parser("leaderboard", help="show the top hashtags")
    p.add_argument("--window", choices=WINDOWS, default=None,
                   help="default: all (1h with --order rising)")
    p.add_argument("--order", choices=("top", "rising"), default="top")
    p.add_argument("--n", type=_positive, default=10, help="how many (default 10)")
    p.add_argument("--offset", type=_non_negative, default=0)
    p.add_argument("--board", help="the board to show (default: the first)")
    p.add_argument("--json", action="store_true", help="print JSON like GET /leaderboard")
    p.set_defaults(func=cmd_leaderboard)
    return parser


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _expected_error(exc: BaseException) -> str | None:
    """The one-line message for a failure the user can act on (exit code 2); None for bugs."""
    from chalicelib.leaderboard.boards import BoardsConfigError
    from chalicelib.leaderboard.sources import ArchiveError, SourceConfigError
    from chalicelib.settings import SettingsError

    if isinstance(exc, CliError | ArchiveError | SourceConfigError | BoardsConfigError
                  | SettingsError):
        return str(exc)
    from chalicelib.errors import PulseError

    if isinstance(exc, PulseError):  # the API's own checks (a bad board, n, window...)
        return exc.message
    if "redis" in sys.modules:
        from redis import exceptions as rx

        where = _redacted(_settings().redis_url)
        unreachable = (rx.ConnectionError, rx.TimeoutError, rx.ClusterDownError,
                       rx.RedisClusterException, rx.AuthenticationError)
        if isinstance(exc, unreachable):
            hint = " (is `make run` running?)" if _settings().stage == "local" else ""
            detail = " ".join(str(exc).split()) or type(exc).__name__
            return f"cannot reach Redis at {where}{hint}: {detail}"
        if isinstance(exc, rx.RedisError):
            return f"Redis error at {where}: {' '.join(str(exc).split())}"
    if "tweepy" in sys.modules:
        import tweepy

        if isinstance(exc, tweepy.TweepyException):
            return f"X API error: {' '.join(str(exc).split())}"
    if "requests" in sys.modules:
        import requests

        if isinstance(exc, requests.RequestException):
            return f"cannot reach the X API: {type(exc).__name__}"
    return None


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv), _expected_error)


if __name__ == "__main__":
    sys.exit(main())
