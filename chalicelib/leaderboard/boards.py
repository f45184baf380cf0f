"""Boards: one deployment follows several campaigns, each a board with its own search query.

LEADERBOARD_BOARDS is a JSON object {"board name": "search query", ...}; the first board
is the default everywhere.  A board's name is its Redis hash tag ({name}), so all of a
board's keys live in one cluster slot and boards spread over MemoryDB's shards.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chalicelib.settings import Settings

# letters, digits and -_. : safe in a URL, a key's {hash tag} and a log line
BOARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class BoardsConfigError(ValueError):
    """LEADERBOARD_BOARDS cannot be used; the message says why."""


def boards_from_settings(settings: Settings) -> dict[str, str]:
    """{board name: search query}, in the configured order (the first is the default)."""
    raw = settings.leaderboard_boards.strip()
    if not raw:
        return {settings.leaderboard_name: settings.leaderboard_query}
    try:
        boards = json.loads(raw)
    except ValueError as exc:
        raise BoardsConfigError(f"LEADERBOARD_BOARDS is not valid JSON: {exc}") from None
    if not isinstance(boards, dict) or not boards:
        raise BoardsConfigError('LEADERBOARD_BOARDS must be a non-empty JSON object '
                                '{"board name": "search query", ...}')
    for name, query in boards.items():
        if not BOARD_NAME.fullmatch(name):
            raise BoardsConfigError(f"board name {name[:70]!r}: 1-64 letters, digits, '-', '_' "
                                    "or '.', starting with a letter or digit")
        if not isinstance(query, str) or not query.strip():
            raise BoardsConfigError(f"board {name!r}: the search query must be a non-empty "
                                    "string")
    return boards
