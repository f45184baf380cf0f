"""The ingest's notes in a board's keys: its checkpoint, the scheduler's notes, the
archives imported.  Counts are not involved, so plain commands do (the checkpoint itself
moves inside the record script, with the counts of its page: see ingest.py)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class IngestBookkeeping:
    """Mixed into the board (store.Leaderboard), so the ingest asks the board it writes;
    uses its `redis`, `clock` and key names (keys.BoardKeys)."""

    redis: Any
    clock: Any
    key_progress: str
    key_schedule: str
    key_imports: str

    def progress(self) -> dict[str, str]:
        """The ingest-progress hash (since_id and whatever else the orchestrator keeps)."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.key_progress).items()}

    def schedule(self) -> dict[str, str]:
        """The scheduler's notes on this board (when it was last served, rate limits)."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.key_schedule).items()}

    def set_schedule(self, fields: Mapping[str, str | None]) -> None:
        """Set (None: delete) fields of the scheduler's notes."""
        drop = [k for k, v in fields.items() if v is None]
        keep = {k: v for k, v in fields.items() if v is not None}
        if drop:
            self.redis.hdel(self.key_schedule, *drop)
        if keep:
            self.redis.hset(self.key_schedule, mapping=keep)

    def imported(self, digests: set[str]) -> set[str]:
        """Which of these archive content hashes were imported into this board."""
        names = sorted(digests)
        if not names:
            return set()
        there = self.redis.hmget(self.key_imports, names)
        return {d for d, v in zip(names, there, strict=True) if v is not None}

    def mark_imported(self, digest: str, path: str) -> None:
        """Remember an archive's content hash (for good: a few bytes a file)."""
        self.redis.hset(self.key_imports, digest,
                        json.dumps({"path": str(path), "at": self.clock()},
                                   ensure_ascii=False, separators=(",", ":")))
