"""The API's one timestamp format: RFC 3339 in UTC with a `Z`, as every route answers it."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def iso_z(epoch_seconds: float) -> str: ...
@overload
def iso_z(epoch_seconds: None) -> None: ...


def iso_z(epoch_seconds: float | None) -> str | None:
    """1700000000.5 -> "2023-11-14T22:13:20.500000Z" (whole seconds without a fraction);
    None (no such time) stays None, a JSON null."""
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")
