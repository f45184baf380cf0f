"""Static HTML pages served by the app (read once per container)."""
from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent


@cache
def page(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def html_response(name: str):
    from chalice import Response

    return Response(body=page(name), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8"})
