"""The scheduled ingest inside one Lambda invocation: how much of its time it may use."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chalicelib.leaderboard.ingest import IngestResult

# Stop between pages once less than this share of the invocation's time is left: the
# board's last page and its rolling fit in the rest, and the next run resumes the range.
STOP_SHARE = 1 / 3


def ingest_within(remaining_ms: Callable[[], float], **options) -> dict[str, IngestResult]:
    """run_scheduled_ingest (with `options`), stopping between pages when the invocation
    (`remaining_ms`: the Lambda context's get_remaining_time_in_millis) is running out."""
    from chalicelib.leaderboard.ingest import run_scheduled_ingest

    margin_ms = remaining_ms() * STOP_SHARE
    return run_scheduled_ingest(should_stop=lambda: remaining_ms() < margin_ms, **options)
