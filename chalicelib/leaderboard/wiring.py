"""Where the leaderboard feature builds its objects: the ingest, the API and the CLI get
their boards here.  Light to import: the store and the clients load on first use."""
from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache


def new_board(name: str | None = None, *, redis=None, clock: Callable[[], float] = time.time):
    """A board (store.Leaderboard) named `name` (default: the first configured board) on
    `redis` (default: the app's shared client)."""
    from chalicelib.leaderboard.store import Leaderboard

    if redis is None:
        from chalicelib.clients import get_redis

        redis = get_redis()
    return Leaderboard(redis, name or board_names()[0], clock=clock)


def get_board(name: str | None = None):
    """The board `name` on the app's shared client, built once per client: after
    `reset_clients()` the next call builds it on the new client."""
    from chalicelib.clients import get_redis

    return _board_on(get_redis(), name)


@lru_cache(maxsize=64)
def _board_on(redis, name: str | None):
    return new_board(name, redis=redis)


get_board.cache_clear = _board_on.cache_clear


def board_names() -> list[str]:
    """The configured boards' names, the default first (LEADERBOARD_BOARDS or
    LEADERBOARD_NAME)."""
    from chalicelib.leaderboard.boards import boards_from_settings
    from chalicelib.settings import get_settings

    return list(boards_from_settings(get_settings()))
