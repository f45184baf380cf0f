"""Where a board lives in Redis: the names of its keys, and how tags and tweet ids map to them.

Every key carries the hash tag ``{<name>}``, so all of a board lives in one cluster slot
and a script may touch any of it (DESIGN.md lists the keys and what they hold).
"""
from __future__ import annotations

import math

from chalicelib.leaderboard import RISING_BASELINE, WINDOWS
from chalicelib.leaderboard.hashtags import without_hash_sign

# dedupe markers are grouped by the hour of the tweet id's snowflake time
MARKER_GROUP_MS = 3_600_000
# the most ids one marker set holds: Redis's (and MemoryDB's) default
# set-max-intset-entries, up to which a set of integers is a compact intset
MARKER_SET_MAX = 512
# the most tags one key of a time bucket holds: the default hash-max-listpack-entries,
# up to which a hash is a compact listpack
BUCKET_SHARD_MAX = 128
_HASH_PRIME, _HASH_MULTIPLIER = 2147483629, 2654435  # lua/shards.lua's HP, HA


def marker_hash(tweet_id: int) -> int:
    """What lua/shards.lua's id_hash gives for the decimal id: the same IEEE operations."""
    return int(math.fmod(math.fmod(float(tweet_id), _HASH_PRIME) * _HASH_MULTIPLIER,
                         _HASH_PRIME))


def tag_key(hashtag: str) -> str:
    """The key a tag is counted under: without its '#', case-folded (`str.casefold`:
    "Großbritannien" and "GROSSBRITANNIEN" are one tag)."""
    return without_hash_sign(str(hashtag)).casefold()


class BoardKeys:
    """The key names of the board `name`."""

    def __init__(self, name: str):
        if not name or "{" in name or "}" in name:
            raise ValueError(f"a board name is non-empty without braces, got {name!r}")
        self.name = name
        self.prefix = p = f"pulse:lb:{{{name}}}:"
        self.key_meta = p + "meta"
        self.key_window = {w: f"{p}z:{w}" for w in WINDOWS}
        self.key_variants = p + "variants"  # tag -> its other spellings, tab-separated
        self.key_spellings = p + "spellings"  # spelling other than its tag -> count
        self.key_rising = {w: f"{p}rising:{w}" for w in RISING_BASELINE}  # writer's order
        self.key_rising_stamps = p + "rising"
        self.key_sources = p + "sources"  # source name -> tweets it contributed
        self.key_progress = p + "progress"
        self.key_schedule = p + "schedule"
        self.key_imports = p + "imports"  # archive SHA-256 -> {"path", "at"}

    def bucket_key(self, start: int) -> str:
        """The first key of the time bucket starting at `start` (see lua/shards.lua)."""
        return f"{self.prefix}b:{start}"

    def marker_key(self, tweet_id: int) -> str:
        """The first key of the dedupe marker group of a tweet id."""
        return f"{self.prefix}seen:{(tweet_id >> 22) // MARKER_GROUP_MS}"
