"""Exactly-once ingest: pages from a source -> `Leaderboard.record`, with a resumable checkpoint.

Search returns the newest tweets first and pages back in time, so a run reads a
*range* of ids from the top down.  The checkpoint lives in the board's progress
hash, and every change to it is made by the same atomic `record` call that
counts the page it belongs to:

    since_id        every tweet with id <= since_id is counted
    pending_newest  the newest id of the range being read (set by its first page)
    pending_until   the oldest id counted so far in that range

A run starts a new range (since_id < id) or, when `pending_newest` is set,
resumes the unfinished one (since_id < id < pending_until).  Each page is counted
by one `record(tweets, progress=...)` that also moves `pending_until` down to
the page's oldest id; the page that ends the range (no `next_token`) sets
`since_id = pending_newest` and clears the pending fields in that same call.
A run that stops anywhere (rate limit, page cap, timeout, Redis error, kill)
therefore leaves exactly the uncounted part of the range to the next run, and
the per-tweet dedupe markers `record` keeps make any page read twice harmless.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalicelib import telemetry
from chalicelib.leaderboard.model import Tweet, check_retweets, tweets_from_page
from chalicelib.leaderboard.sources import ArchiveSource, RateLimited, Source, SourceConfigError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chalicelib.leaderboard.store import Leaderboard
    from chalicelib.settings import Settings

log = logging.getLogger("pulse.leaderboard.ingest")

SINCE_ID = "since_id"
PENDING_NEWEST = "pending_newest"
PENDING_UNTIL = "pending_until"


@dataclass(frozen=True)
class IngestResult:
    pages: int  # pages read
    tweets_seen: int  # tweets in those pages
    tweets_counted: int  # newly counted (not already counted by an earlier read)
    complete: bool  # the range was read to its end: nothing is pending
    rate_limited: bool
    checkpoint: dict[str, str]  # the progress fields after the run
    stopped: str = "complete"  # complete | page_cap | rate_limited | waiting | deadline
    rate_limit_reset: float | None = None  # epoch seconds, when the source said
    source: str = ""  # the source's name
    originals_missing: int = 0  # retweets counted with their own entities (see model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        reset = (datetime.fromtimestamp(self.rate_limit_reset, UTC).isoformat()
                 if self.rate_limit_reset else "an unknown time")
        state = {"complete": "range complete", "page_cap": "range pending (page cap)",
                 "rate_limited": f"rate limited until {reset}, range pending",
                 "waiting": f"rate limited until {reset}: the source was not asked",
                 "deadline": "out of time, range pending"}[self.stopped]
        marks = ", ".join(f"{k}={v}" for k, v in sorted(self.checkpoint.items())) or "none"
        missing = (f" ({self.originals_missing} retweets without their original: own tags "
                   "counted)" if self.originals_missing else "")
        return (f"{self.pages} pages, {self.tweets_seen} tweets seen, {self.tweets_counted} "
                f"counted{missing}; {state}; checkpoint {marks}")


def _apply(checkpoint: dict[str, str], update: Mapping[str, str | None]) -> None:
    for key, value in update.items():
        if value is None:
            checkpoint.pop(key, None)
        else:
            checkpoint[key] = value


def run_ingest(board: Leaderboard, source: Source, *, max_pages: int,
               should_stop: Callable[[], bool] | None = None,
               retweets: str = "original") -> IngestResult:
    """Read at most `max_pages` pages of the current range from `source` into `board`.

    `should_stop()` is asked before each page (e.g. the Lambda's remaining time);
    True ends the run cleanly with the range pending.  A rate limit ends it the
    same way.  Every other error (Redis, the API, a bad page) propagates: the run
    fails loudly, and what it committed before is exact.  `retweets` is the policy
    (model.RETWEET_POLICIES).
    """
    check_retweets(retweets)
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")
    # the single writer rolls the windows every run, even one the source fails: reads never do
    board.roll()
    checkpoint = dict(board.progress())
    since = checkpoint.get(SINCE_ID)
    newest = checkpoint.get(PENDING_NEWEST)  # set: resuming an unfinished range
    until = checkpoint.get(PENDING_UNTIL) if newest is not None else None
    log.info("ingest from %s: %s", source.name,
             f"resuming range ({since}, {until}) up to {newest}" if newest is not None
             else f"new range after {since}")
    pages = iter(source.pages(since_id=None if since is None else int(since),
                              until_id=None if until is None else int(until)))
    try:
        n_pages, seen, counted, stopped, reset_at, missing = _read_range(
            board, pages, checkpoint, newest, max_pages, should_stop, retweets, source.name)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:  # a generator left mid-range (page cap, rate limit, error)
            close()
    board.refresh_rising()  # reads serve rising from this until the next change
    result = IngestResult(n_pages, seen, counted, stopped == "complete",
                          stopped == "rate_limited", checkpoint, stopped, reset_at, source.name,
                          missing)
    log.info("ingest from %s: %s", source.name, result.summary())
    return result


def _read_range(board, pages, checkpoint, newest, max_pages, should_stop, retweets,
                source_name):
    n_pages = seen = counted = missing = 0
    stopped, reset_at = "complete", None
    newest_at: float | None = None  # the newest tweet read: how far the board is behind
    while True:
        if n_pages >= max_pages:
            stopped = "page_cap"
            break
        if should_stop is not None and should_stop():
            stopped = "deadline"
            break
        try:
            page = next(pages)
        except StopIteration:
            page = None  # the range ended without a final page: close it below
        except RateLimited as exc:
            stopped, reset_at = "rate_limited", exc.reset_at
            break
        tweets: list[Tweet] = []
        last = True
        if page is not None:
            n_pages += 1
            tweets = tweets_from_page(page, retweets)
            seen += len(tweets)
            _page_metrics(tweets)
            newest_at = max([newest_at or 0.0, *(t.created_at for t in tweets)])
            missing += sum(t.original_missing for t in tweets)
            last = not (page.get("meta") or {}).get("next_token")
            if tweets and newest is None:  # the first page of a new range
                newest = str(max(t.id for t in tweets))
        update: dict[str, str | None] | None = None
        if last:
            if newest is not None:  # close the range: all of it is now counted
                update = {SINCE_ID: newest, PENDING_NEWEST: None, PENDING_UNTIL: None}
        elif tweets:
            update = {PENDING_NEWEST: newest, PENDING_UNTIL: str(min(t.id for t in tweets))}
        if tweets or update:
            newly = board.record(tweets, progress=update, source=source_name)
            telemetry.count("leaderboard", "IngestTweetsCounted", newly)
            counted += newly
            _apply(checkpoint, update or {})
        if last:
            break
    if newest_at:
        telemetry.record("leaderboard", "IngestLagSeconds", max(0.0, time.time() - newest_at),
                         telemetry.SECONDS)
    return n_pages, seen, counted, stopped, reset_at, missing


def _page_metrics(tweets: list[Tweet]) -> None:
    """A page read: its tweets and hashtags."""
    telemetry.count("leaderboard", "IngestPages")
    telemetry.count("leaderboard", "IngestTweets", len(tweets))
    telemetry.count("leaderboard", "IngestHashtags", sum(len(t.hashtags) for t in tweets))


def _waiting(board: Leaderboard, source_name: str, until: float) -> IngestResult:
    """A board whose source said "not before `until`": rolled, the source not asked."""
    board.roll()
    board.refresh_rising()
    return IngestResult(0, 0, 0, False, True, board.progress(), "waiting", until, source_name)


def run_scheduled_ingest(settings: Settings | None = None, *, redis=None,
                         max_pages: int | None = None,
                         should_stop: Callable[[], bool] | None = None,
                         boards: list[str] | None = None,
                         make_source: Callable[[str, str], Source] | None = None,
                         clock: Callable[[], float] = time.time) -> dict[str, IngestResult]:
    """One scheduled run with the app's settings (LEADERBOARD_BOARDS or LEADERBOARD_NAME,
    LEADERBOARD_SOURCE, INGEST_MAX_PAGES): what `@app.schedule` and `cli ingest` do.

    Every board (or those named in `boards`) gets at most `max_pages` pages, least
    recently served first, so a board the deadline cut off goes first next time.  A
    board whose source answered "rate limited" is not asked again before the reset time
    it was given (kept in the board's schedule hash), and never holds up the others.
    `make_source(board, query)` builds a board's source (default: from the settings).
    Returns {board: result}, in the order served.
    """
    from chalicelib.leaderboard.boards import boards_from_settings
    from chalicelib.leaderboard.sources import retweets_from_settings, source_from_settings
    from chalicelib.leaderboard.wiring import new_board

    if settings is None:
        from chalicelib.settings import get_settings

        settings = get_settings()
    queries = boards_from_settings(settings)
    unknown = [name for name in boards or () if name not in queries]
    if unknown:
        raise SourceConfigError(f"no board {unknown[0]!r}: the boards are {', '.join(queries)}")
    retweets = retweets_from_settings(settings)
    if make_source is None:
        def make_source(name: str, query: str) -> Source:
            return source_from_settings(settings, board=name, query=query, clock=clock)

    served = {name: new_board(name, redis=redis, clock=clock) for name in boards or queries}
    notes = {name: board.schedule() for name, board in served.items()}
    order = sorted(served, key=lambda name: float(notes[name].get("served_at", 0)))
    results: dict[str, IngestResult] = {}
    for name in order:
        board, now = served[name], clock()
        source = make_source(name, queries[name])
        until = float(notes[name].get("rate_limited_until", 0))
        if until > now:
            results[name] = _waiting(board, source.name, until)
            continue
        if should_stop is not None and should_stop():
            board.roll()  # out of time: the next run serves this board first
            board.refresh_rising()
            continue
        result = run_ingest(board, source, max_pages=max_pages or settings.ingest_max_pages,
                            should_stop=should_stop, retweets=retweets)
        reset = result.rate_limit_reset if result.rate_limited else None
        board.set_schedule({"served_at": repr(now),
                            "rate_limited_until": None if reset is None else repr(reset)})
        results[name] = result
        remaining = getattr(source, "rate_limit_remaining", None)  # the X API's last answer
        if remaining is not None:
            telemetry.record("leaderboard", "XRateLimitRemaining", remaining, telemetry.COUNT)
    return results


# --- bulk import of twarc2 archives -----------------------------------------------------

@dataclass
class ImportResult:
    files: int = 0
    pages: int = 0
    tweets_read: int = 0
    tweets_counted: int = 0
    seconds: float = 0.0
    per_file: dict[str, int] = field(default_factory=dict)  # tweets read per file
    originals_missing: int = 0  # retweets counted with their own entities (see model)
    skipped_files: list[str] = field(default_factory=list)  # imported before (same content)

    @property
    def duplicates(self) -> int:
        """Tweets read that were already counted (earlier import, or twice in the files)."""
        return self.tweets_read - self.tweets_counted

    def summary(self) -> str:
        rate = self.tweets_read / self.seconds if self.seconds else 0.0
        return (f"{self.tweets_read} tweets read from {self.files} file(s), {self.pages} pages: "
                f"{self.tweets_counted} counted, {self.duplicates} skipped as duplicates "
                f"({self.seconds:.1f} s, {rate:,.0f} tweets/s)"
                + (f"; {self.originals_missing} retweets without their original: own tags "
                   "counted" if self.originals_missing else "")
                + (f"; {len(self.skipped_files)} file(s) imported before, skipped"
                   if self.skipped_files else ""))


def file_digest(path) -> str:
    """SHA-256 of a file's content: an archive is known by what it holds, not its name."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def import_archive(board: Leaderboard, source: ArchiveSource, *, batch_size: int = 1000,
                   on_bytes: Callable[[int], None] | None = None,
                   clock: Callable[[], float] = time.perf_counter,
                   retweets: str = "original") -> ImportResult:
    """Count every tweet of the archive files once: batches of ~`batch_size` tweets,
    one atomic `record` each; the dedupe markers skip tweets already counted (within
    the markers' TTL).  A file whose content was imported into the board before (its
    SHA-256 is remembered once its last tweet is counted) is skipped however much later,
    after its markers expired too.  It leaves the scheduled ingest's checkpoint alone."""
    check_retweets(retweets)
    started = clock()
    result = ImportResult(files=len(source.paths))
    digests = {str(path): file_digest(path) for path in source.paths}
    done = board.imported(set(digests.values()))
    todo = []
    for path, digest in digests.items():
        if digest in done:
            result.skipped_files.append(path)
            if on_bytes is not None:
                on_bytes(os.path.getsize(path))
        else:
            done.add(digest)  # the same content twice in one call: once
            todo.append(path)
    batch: list[Tweet] = []
    for path in todo:
        for archived in ArchiveSource([path]).read_pages():
            tweets = archived.tweets(retweets)
            result.originals_missing += sum(t.original_missing for t in tweets)
            result.pages += 1
            result.tweets_read += len(tweets)
            result.per_file[path] = result.per_file.get(path, 0) + len(tweets)
            batch.extend(tweets)
            if len(batch) >= batch_size:
                result.tweets_counted += board.record(batch, source=source.name)
                batch = []
            if on_bytes is not None:
                on_bytes(archived.nbytes)
        if batch:  # the file's last tweets, then the file is known
            result.tweets_counted += board.record(batch, source=source.name)
            batch = []
        board.mark_imported(digests[path], path)
    board.refresh_rising()
    result.seconds = clock() - started
    return result
