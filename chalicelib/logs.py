"""Log levels for the app's loggers, from LOG_LEVEL.

`Chalice(app_name="pulse")` gives the `pulse` logger a stdout handler (what
Lambda ships to CloudWatch), level ERROR and propagate=False; every
`pulse.*` logger in chalicelib inherits that level, so without this INFO and
WARNING lines from chalicelib and `app.log.info(...)` are dropped silently.
"""
from __future__ import annotations

import logging

DEFAULT_LEVEL = "INFO"


def configure_app_logging(app_log: logging.Logger, level_name: str | None) -> int:
    """Give the app's logger, and so chalicelib's `pulse.*` loggers, the configured level,
    and its handlers one JSON object per line (chalicelib.telemetry.JsonLines)."""
    from chalicelib.telemetry import use_json_lines

    use_json_lines(app_log)
    wanted = (level_name or DEFAULT_LEVEL).strip().upper()
    level = logging.getLevelName(wanted)
    if not isinstance(level, int):  # getLevelName answers "Level X" for unknown names
        level = logging.getLevelName(DEFAULT_LEVEL)
        app_log.setLevel(level)
        app_log.warning("LOG_LEVEL=%r is not a level name; using %s", level_name, DEFAULT_LEVEL)
        return level
    app_log.setLevel(level)
    return level
