"""The board's Lua scripts: read from lua/*.lua once per process, run by EVALSHA.

A script is the concatenation of its parts (Redis has no include): the shared helpers
first, its own body last.  Each part documents its KEYS and ARGV at its top.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

FOLDER = Path(__file__).with_name("lua")
PARTS = {
    "record": ("shards", "write", "record"),
    "query": ("shards", "read", "rising", "query"),
    "refresh_rising": ("shards", "read", "rising", "refresh_rising"),
}


@cache
def source(*parts: str) -> str:
    """The text of these parts, in order."""
    return "".join((FOLDER / f"{part}.lua").read_text(encoding="utf-8") for part in parts)


def register(redis, name: str):
    """A redis-py Script for the named script: EVALSHA, loading it when the server lacks
    it (a new node, a SCRIPT FLUSH)."""
    return redis.register_script(source(*PARTS[name]))
