"""HTTP helpers shared by the routes: JSON answers and query-string parsing."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from chalicelib.errors import InvalidInput

JSON_HEADERS = {"Content-Type": "application/json"}
_INTEGER = re.compile(r"-?[0-9]+")  # a query integer as the API contract states it


def json_response(body, status_code: int = 200, headers: Mapping[str, str] | None = None):
    from chalice import Response

    return Response(
        body=json.dumps(body, default=str),
        status_code=status_code,
        headers={**JSON_HEADERS, **(headers or {})},
    )


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match (RFC 9110): "*" or a list of tags, weak ones compared weakly."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


def cached_json_response(body, request_headers: Mapping[str, str] | None, max_age: int):
    """A JSON answer that caches: a strong ETag (a hash of the body) and
    `Cache-Control: max-age`; a 304 without a body when If-None-Match names the ETag."""
    import hashlib

    from chalice import Response

    payload = json.dumps(body, default=str)
    etag = f'"{hashlib.sha256(payload.encode()).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": f"max-age={max_age}"}
    if _etag_matches((request_headers or {}).get("if-none-match"), etag):
        return Response(body="", status_code=304, headers=headers)
    return Response(body=payload, status_code=200, headers={**JSON_HEADERS, **headers})


def json_object_body(raw: bytes | str | None, max_bytes: int, **loads_kwargs) -> dict:
    """An untrusted HTTP body as a JSON object, or an InvalidInput naming `body`: not
    empty, at most `max_bytes`, UTF-8 JSON (any nesting depth: a 400, never a
    RecursionError's 500), an object.  `loads_kwargs` go to json.loads (e.g.
    object_pairs_hook, parse_constant); an InvalidInput they raise passes through."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not raw:
        raise InvalidInput("the body is empty: send a JSON object", field="body")
    if len(raw) > max_bytes:
        raise InvalidInput(f"the body has at most {max_bytes} bytes, got {len(raw)}",
                           field="body", limit=max_bytes)
    try:
        body = json.loads(raw.decode("utf-8"), **loads_kwargs)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidInput(f"the body is not valid UTF-8 JSON ({type(exc).__name__})",
                           field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return body


def query_value(params: Mapping[str, str] | None, name: str) -> str | None:
    """The value of a query parameter, None when absent.  A name given more than once
    (`?n=5&n=50`, Chalice's MultiDict) is an InvalidInput: which value was meant is not
    ours to guess (Chalice alone would answer with the last)."""
    getlist = getattr(params, "getlist", None)
    if getlist is not None:
        try:
            count = len(getlist(name))
        except KeyError:
            return None
        if count > 1:
            raise InvalidInput(f"'{name}' appears {count} times in the query: give it once",
                               field=name)
    return (params or {}).get(name)


def query_int(params: Mapping[str, str] | None, name: str, default: int,
              minimum: int, maximum: int) -> int:
    raw = query_value(params, name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: int() alone also reads " 5\r", "+5", "1_0" and "٣" (an Arabic 3)
    try:
        if not _INTEGER.fullmatch(raw):
            raise ValueError(raw)
        value = int(raw)
    except ValueError:  # not digits, or more than int() reads (4300)
        raise InvalidInput(f"'{name}' must be an integer, got {raw[:40]!r}", field=name) from None
    if not minimum <= value <= maximum:
        raise InvalidInput(f"'{name}' must be between {minimum} and {maximum}, got {value}",
                           field=name)
    return value


def query_choice(params: Mapping[str, str] | None, name: str, default: str,
                 choices: Iterable[str]) -> str:
    raw = query_value(params, name)
    if raw is None or raw == "":
        return default
    allowed = list(choices)
    if raw not in allowed:
        raise InvalidInput(f"'{name}' must be one of {', '.join(allowed)}, got {raw[:40]!r}",
                           field=name)
    return raw


def one_error_shape(event, get_response):
    """Chalice's own refusals, made before a view runs (405 method, 415 media type, 400
    for a binary answer without a matching Accept, 500), in the one error shape of
    chalicelib/errors.py, `{"error", "message"}`, instead of Chalice's
    `{"Code", "Message"}`: an `http` middleware, so it sees every route's answer."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code",
                                                                               "Message"}:
        response.body = json.dumps({"error": body["Code"], "message": body["Message"]})
        response.headers["Content-Type"] = "application/json"
    return response


def json_api(view):
    """Turn our errors and dependency failures into JSON answers.

    Chalice converts any exception raised by a view into a bare 500 before
    middleware sees it, so the mapping has to sit on the view itself.
    """
    import functools
    import logging

    from chalicelib import telemetry
    from chalicelib.budget import aws_budget
    from chalicelib.errors import (
        PulseError,
        aws_call_of,
        aws_error_code,
        dependency_of,
        is_dependency_failure,
    )
    from chalicelib.settings import get_settings

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            # Every AWS call of this request shares one budget (chalicelib.budget).
            with aws_budget(get_settings().aws_budget):
                return view(*args, **kwargs)
        except PulseError as exc:
            retry = None
            if exc.status_code == 503:
                retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
                telemetry.count_unavailable(exc.details.get("dependency"))
            return json_response(exc.to_body(), exc.status_code, headers=retry)
        except Exception as exc:
            if not is_dependency_failure(exc):
                if dependency_of(exc) == "aws":  # AccessDenied, a missing table: a 500
                    logging.getLogger("pulse").error(
                        "aws error in %s: %s %s", view.__name__, aws_call_of(exc),
                        aws_error_code(exc) or type(exc).__name__)
                raise
            logging.getLogger("pulse").warning("dependency failure in %s: %r",
                                               view.__name__, exc)
            telemetry.count_unavailable(dependency_of(exc))
            return json_response(*_unavailable(exc, dependency_of(exc)),
                                 headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    return wrapper


# What a dependency 503 asks a caller to wait: long enough for a throttled AWS call's
# retry budget or a failed-over node, short enough for a page's retry loop.
RETRY_AFTER_SECONDS = 1


def _unavailable(exc: BaseException, dependency: str | None) -> tuple[dict, int]:
    """The 503 of a dependency failure, naming the dependency (and the AWS call) when known."""
    from chalicelib.errors import DependencyUnavailable, aws_call_of, aws_error_code

    cause = aws_error_code(exc) or type(exc).__name__
    call = aws_call_of(exc)  # "dynamodb GetItem"
    if call:
        cause = f"{call}: {cause}"
    if dependency is None:
        err = DependencyUnavailable(
            f"a backing service is unavailable ({cause}); try again shortly")
    else:
        err = DependencyUnavailable(f"{dependency} is unavailable ({cause}); try again shortly",
                                    dependency=dependency)
    return err.to_body(), err.status_code
