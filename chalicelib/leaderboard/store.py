"""The hashtag leaderboard in Redis: exactly-once counting, rolling windows, ranks.

How it works, and why, is in DESIGN.md beside this file; the scripts are in lua/.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.leaderboard import (
    RISING_BASELINE,
    RISING_DECIMALS,
    WINDOW_SECONDS,
    WINDOWS,
    scripts,
)
from chalicelib.leaderboard.bookkeeping import IngestBookkeeping
from chalicelib.leaderboard.keys import (
    BUCKET_SHARD_MAX,
    MARKER_SET_MAX,
    BoardKeys,
    marker_hash,
    tag_key,
)
from chalicelib.leaderboard.model import Entry, Page, Riser, RisingPage, Standing

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chalicelib.leaderboard.model import Tweet

__all__ = ["Entry", "Leaderboard", "Page", "Riser", "RisingPage", "Standing", "WINDOWS"]


def _json_dumps(obj: Any) -> bytes:
    # "replace": a lone surrogate (json.loads lets "\ud800" through) becomes "?"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


try:  # orjson when installed (dev, benchmarks): ~10x faster on a batch's payload
    import orjson

    def _dumps(obj: Any) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError:  # orjson.JSONEncodeError: text that is not valid UTF-8
            return _json_dumps(obj)
except ImportError:  # pragma: no cover - depends on the environment
    _dumps = _json_dumps


ROLLING = WINDOWS[1:]
ROLL_STEP = 64  # buckets subtracted per window per script call (bounded work)
HOURLY_SECONDS = 86400  # a tag's hourly counts reach back 24 h
# Rising: see lua/rising.lua for the score.  The smoothing keeps a tag from 0 to 2
# (score 0.6) below one from 500 to 2,000 an hour (score 67).
RISING_CANDIDATES = 200  # the window's highest tags that get a score (bounded work)
RISING_SMOOTHING = 10
_LONGEST = WINDOW_SECONDS["7d"]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _score(value: Any) -> int:
    return int(float(value))


@dataclass
class _Plan:
    """One bounded roll of the windows, as lua/write.lua's roll takes it."""
    expected: list[str]  # meta h1h, h24h, h7d, cur as last seen ("" = absent)
    new: list[int]  # after this roll
    roll: list[int]  # per window: -1 delete, n >= 0 leaving buckets
    leaving: list[str]  # their first keys, window by window
    complete: bool  # False: more buckets to roll than ROLL_STEP allows

    def as_args(self) -> dict[str, Any]:
        return {"expected_heads": self.expected, "new_heads": [str(v) for v in self.new],
                "roll": self.roll, "leaving": len(self.leaving)}

    @property
    def moves(self) -> bool:
        return self.expected != [str(v) for v in self.new]


class Leaderboard(BoardKeys, IngestBookkeeping):
    """Hashtag counts of one board: all time and rolling 1h, 24h and 7d windows.

    Works with `redis.Redis` and `redis.cluster.RedisCluster`, with or without
    decode_responses.  Methods are named after what a user asks (as in agoragames'
    leaderboard-python): `top`, `rank_for`, `around_me`, `size`.
    """

    def __init__(self, redis, name: str = "default", *, bucket_seconds: int = 300,
                 marker_ttl: int = 8 * 86400, clock: Callable[[], float] = time.time):
        super().__init__(name)
        if bucket_seconds <= 0 or 3600 % bucket_seconds:
            raise ValueError(f"bucket_seconds must divide 3600, got {bucket_seconds}")
        if marker_ttl <= 0:
            raise ValueError(f"marker_ttl must be positive, got {marker_ttl}")
        self.redis = redis
        self.bucket_seconds = int(bucket_seconds)
        self.marker_ttl = int(marker_ttl)
        self.clock = clock
        self._record_script = scripts.register(redis, "record")
        self._read_script = scripts.register(redis, "query")
        self._rising_script = scripts.register(redis, "refresh_rising")
        self._state: list[int | None] | None = None  # cached meta h1h, h24h, h7d, cur

    def keys(self) -> list[str]:
        """Every key of this board that exists now (SCAN on every node of a cluster)."""
        match = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + "*"
        return sorted({_text(k) for k in self.redis.scan_iter(match=match, count=1000)})

    # --- rolling -------------------------------------------------------------------
    @staticmethod
    def _check_window(window: str) -> str:
        if window not in WINDOWS:
            raise ValueError(f"unknown window {window!r}: one of {', '.join(WINDOWS)}")
        return window

    def _bucket_of(self, ts: float) -> int:
        return int(ts // self.bucket_seconds) * self.bucket_seconds

    def _remember(self, fields: Sequence[Any]) -> None:
        values = [_text(v) for v in fields]
        self._state = [int(v) if v not in (None, "") else None for v in values]

    def _load_state(self) -> list[int | None]:
        if self._state is None:
            self._remember(self.redis.hmget(self.key_meta, "h1h", "h24h", "h7d", "cur"))
        return self._state

    def _plan(self, now: float) -> _Plan:
        state = self._load_state()
        *heads, cur = state
        target_cur = self._bucket_of(now)
        new_cur = target_cur if cur is None else max(cur, target_cur)
        bs = self.bucket_seconds
        new, modes, leaving, complete = [], [], [], True
        for head, window in zip(heads, ROLLING, strict=True):
            target = new_cur - WINDOW_SECONDS[window]
            if head is None or head >= target:  # a new board, or nothing left yet
                new.append(target if head is None else head)
                modes.append(0)
            elif cur is None or target > cur:  # everything it holds has left
                new.append(target)
                modes.append(-1)
            else:
                steps = min((target - head) // bs, ROLL_STEP)
                leaving.extend(self.bucket_key(head + i * bs) for i in range(steps))
                new.append(head + steps * bs)
                modes.append(steps)
                complete = complete and new[-1] == target
        new.append(new_cur)
        expected = ["" if v is None else str(v) for v in state]
        return _Plan(expected, new, modes, leaving, complete)

    def _record_keys(self) -> list[str]:
        return [self.key_meta, *(self.key_window[w] for w in ROLLING), self.key_window["all"],
                self.key_variants, self.key_spellings, self.key_progress, self.key_sources]

    def _run_record(self, plan: _Plan, args: dict[str, Any], keys: Sequence[str]) -> list:
        res = self._record_script(keys=[*self._record_keys(), *plan.leaving, *keys],
                                  args=[_dumps({**plan.as_args(), **args})], client=self.redis)
        self._remember(res[2:6])
        return res

    def _roll_step(self, plan: _Plan) -> None:
        """One bounded roll (the record script with no tweets); a stale plan writes nothing."""
        self._run_record(plan, {
            "bucket_starts": [], "bucket_ttls": [], "marker_groups": 0, "tweets": [],
            "id_hashes": [], "folded": {}, "marker_ttl": 1, "marker_set_max": MARKER_SET_MAX,
            "bucket_shard_max": BUCKET_SHARD_MAX, "progress_set": [], "progress_delete": [],
            "source": "", "updated_at": "", "touch": 0}, [])

    def _catch_up(self, now: float) -> _Plan:
        """Roll in bounded steps until one last step is left; returns that step's plan."""
        while True:
            plan = self._plan(now)
            if plan.complete:
                return plan
            self._roll_step(plan)

    def roll(self) -> None:
        """Move the windows to the clock, in bounded steps: the writer's job (the scheduled
        ingest calls it every run, and `record` rolls too), so that reads never write."""
        now = self.clock()
        while True:
            plan = self._plan(now)
            if not plan.moves:
                return
            self._roll_step(plan)

    # --- counting ------------------------------------------------------------------
    def record(self, tweets: Sequence[Tweet], *,
               progress: Mapping[str, str | None] | None = None, source: str = "") -> int:
        """Count the tweets not counted before, in one atomic script; returns how many.

        `progress` fields are set (None: deleted) in the ingest-progress hash by the
        same script, so a checkpoint never moves without its counts.  `source` names
        where the tweets came from: the board keeps how many each source contributed.
        An edited tweet counts once: it is keyed by its first version's id.  Pass batches
        of up to a few thousand tweets: one script blocks the server while it runs.
        """
        progress = progress or {}
        progress_set = [str(x) for k, v in progress.items() if v is not None for x in (k, v)]
        progress_delete = [str(k) for k, v in progress.items() if v is None]
        now = self.clock()
        spellings = {s for t in tweets for s in t.hashtags}
        folded = {s: low for s in spellings if (low := s.casefold()) != s}
        # marker groups: one per hour of tweet ids (every version of an edited tweet: one)
        groups: dict[str, int] = {}
        group_of: list[int] = []
        ids: list[str] = []
        for t in tweets:
            tid = int(t.first_id or t.id)
            group_of.append(groups.setdefault(self.marker_key(tid), len(groups) + 1))
            ids.append(str(tid))
        id_hashes = [marker_hash(int(i)) for i in ids]
        bs = self.bucket_seconds
        while True:
            plan = self._catch_up(now)
            oldest, cur = plan.new[2], plan.new[3]  # older than 7d: counts all time only
            index: dict[int, int] = {}
            rows = []
            for t, g, tid in zip(tweets, group_of, ids, strict=True):
                b = min(int(t.created_at // bs) * bs, cur)
                k = index.setdefault(b, len(index) + 1) if b >= oldest else 0
                rows.append([k, g, tid, *t.hashtags])
            starts = list(index)
            # needed until a window rolls past it, at most 2 x 7d after its start
            ttls = [max(1, int(b + 2 * _LONGEST + 2 * bs + 3600 - now)) for b in starts]
            res = self._run_record(plan, {
                "bucket_starts": starts, "bucket_ttls": ttls, "marker_groups": len(groups),
                "tweets": rows, "id_hashes": id_hashes, "folded": folded,
                "marker_ttl": self.marker_ttl, "marker_set_max": MARKER_SET_MAX,
                "bucket_shard_max": BUCKET_SHARD_MAX, "progress_set": progress_set,
                "progress_delete": progress_delete, "source": source,
                "updated_at": repr(float(now)), "touch": 1},
                [*map(self.bucket_key, starts), *groups])
            if int(res[0]) == 1:
                return int(res[1])
            # stale view of the heads: nothing was written; plan again

    # --- reads ---------------------------------------------------------------------
    def _read(self, window: str, question: str, *args: Any,
              extra: Sequence[str] = ()) -> tuple[float | None, list]:
        """One read script call: (updated_at, the answer)."""
        self._check_window(window)
        head = ("" if window == "all"
                else str(self._bucket_of(self.clock()) - WINDOW_SECONDS[window]))
        res = self._read_script(keys=self._window_keys(window, extra),
                                args=[head, question, *args], client=self.redis)
        updated = None if res[0] is None else float(_text(res[0]))
        return updated, res[1:]

    def _window_keys(self, window: str, extra: Sequence[str] = ()) -> list[str]:
        return [self.key_window[window], self.key_window["all"], self.key_variants,
                self.key_spellings, self.key_meta, *extra]

    @staticmethod
    def _entries(flat: Sequence, spellings: Sequence) -> list[Entry]:
        """Entries from the script's {tag, score, rank, ...} and their spellings."""
        return [Entry(int(flat[i + 2]), _text(spellings[i // 3]), _score(flat[i + 1]))
                for i in range(0, len(flat), 3)]

    @staticmethod
    def _sources(flat: Sequence) -> dict[str, int]:
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def page(self, window: str = "all", n: int = 10, offset: int = 0) -> Page:
        """The n highest tags of a window from position `offset` (0-based) in ranked order
        (ties share a rank and are listed alphabetically), with the window's size,
        updated_at and the board's sources, from one consistent read."""
        if n < 0 or offset < 0:
            raise ValueError(f"n and offset must be >= 0, got n={n}, offset={offset}")
        first, last = (offset, offset + n - 1) if n else (1, 0)  # 1..0: none
        updated, (size, flat, spellings, sources) = self._read(
            window, "top", first, last, extra=[self.key_sources])
        return Page(self._entries(flat, spellings), int(size), updated,
                    self._sources(sources))

    def hours(self) -> list[int]:
        """Start times of the 24 hours of a tag's hourly counts, oldest first (the last
        is the current hour, so far)."""
        now_hour = int(self.clock() // 3600) * 3600
        return [now_hour - 3600 * i for i in range(HOURLY_SECONDS // 3600 - 1, -1, -1)]

    def standing(self, hashtag: str, window: str = "all", n: int = 2, *,
                 hourly: bool = True) -> Standing | None:
        """One tag (any spelling, '#' optional) with up to n neighbours above and below it
        and (unless `hourly` is False) its counts per hour over the last 24 h, summed from
        the time buckets, from one consistent read; None when it has no count in the
        window."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        hours = self.hours() if hourly else []
        updated, res = self._read(window, "tag", tag_key(hashtag), n, len(hours),
                                  hours[0] if hours else 0, self.bucket_seconds,
                                  extra=[self.bucket_key(hours[0] if hours else 0)])
        if res[0] is None:
            return None
        position, start, flat, spellings, hourly = res
        around = self._entries(flat, spellings)
        me = int(position) - int(start)
        return Standing(around[me], around[:me], around[me + 1:], updated,
                        [(h, _score(c)) for h, c in zip(hours, hourly, strict=True)])

    def rising(self, window: str = "1h", n: int = 10, offset: int = 0,
               candidates: int = RISING_CANDIDATES) -> RisingPage:
        """The tags taking off in a window (1h or 24h), most surprising first: see
        lua/rising.lua for the score.  Bounded work: only the window's `candidates`
        highest tags are scored (one ZMSCORE on the baseline)."""
        if window not in RISING_BASELINE:
            raise ValueError(f"rising needs window 1h or 24h, got {window!r}")
        if n < 0 or offset < 0 or candidates < 1:
            raise ValueError(f"n, offset >= 0 and candidates >= 1, got {n}, {offset}, "
                             f"{candidates}")
        # Ties share a rank (the shown scores, RISING_DECIMALS): a page is read from one
        # place earlier, further back while that place ties the page's first tag, so the
        # first tag's rank counts the tags before the page that tie it.
        start = offset
        while True:
            start = max(0, start - max(n, 1))
            updated, (total, flat, spellings, sources) = self._read(
                window, "rising", *self._rising_args(window, candidates, start, offset - start
                                                     + n), extra=self._rising_keys(window))
            shown = [round(float(flat[i + 3]), RISING_DECIMALS) for i in range(0, len(flat), 4)]
            first = offset - start
            if start == 0 or first >= len(shown) or shown[0] != shown[first]:
                break
        ranks, rank = [], 0
        for j, score in enumerate(shown):
            if j == 0 or score != shown[j - 1]:
                rank = start + 1 + j
            ranks.append(rank)
        items = [Riser(ranks[i // 4], _text(spellings[i // 4]), _score(flat[i + 1]),
                       float(flat[i + 2]), float(flat[i + 3])) for i in range(0, len(flat), 4)]
        return RisingPage(items[offset - start:], int(total), updated, self._sources(sources))

    def _rising_keys(self, window: str) -> list[str]:
        return [self.key_window[RISING_BASELINE[window]], self.key_sources,
                self.key_rising[window], self.key_rising_stamps]

    @staticmethod
    def _rising_args(window: str, candidates: int, offset: int, n: int) -> list[Any]:
        return [candidates, offset, n, WINDOW_SECONDS[window],
                WINDOW_SECONDS[RISING_BASELINE[window]], RISING_SMOOTHING, window]

    def refresh_rising(self) -> int:
        """The writer's last step of an ingest or import: score each rising window's
        candidates and store their order, so that `rising` reads serve a page from it
        (about a top-10's cost) until the windows change again; before that, or when it
        was not called, a read scores the candidates itself (same answer, ~2 us a
        candidate more).  A no-op when the stored orders are current; returns how many
        windows it scored."""
        scored = 0
        for window in RISING_BASELINE:
            res = self._rising_script(
                keys=self._window_keys(window, self._rising_keys(window)),
                args=["", "", *self._rising_args(window, RISING_CANDIDATES, 0, 0)],
                client=self.redis)
            scored += int(res) >= 0  # -1: the stored order was current
        return scored

    def top(self, window: str = "all", n: int = 10, offset: int = 0) -> list[Entry]:
        """The n highest tags of a window from position `offset` (0-based); ranks 1-based."""
        return self.page(window, n, offset).entries

    def rank_for(self, hashtag: str, window: str = "all") -> Entry | None:
        """Rank and score of one tag (any spelling, '#' optional); None when it has no count."""
        found = self.standing(hashtag, window, 0, hourly=False)
        return None if found is None else found.entry

    def around_me(self, hashtag: str, window: str = "all", n: int = 2) -> list[Entry]:
        """The tag with up to n neighbours above and below it; [] when it has no count."""
        found = self.standing(hashtag, window, n, hourly=False)
        return [] if found is None else [*found.above, found.entry, *found.below]

    def size(self, window: str = "all") -> int:
        """The number of distinct tags with a count in the window."""
        return int(self._read(window, "size")[1][0])

    def updated_at(self) -> float | None:
        """Clock time of the last `record` call, None before the first."""
        value = self.redis.hget(self.key_meta, "updated_at")
        return None if value is None else float(_text(value))
