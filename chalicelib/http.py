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
    where = _first_invalid_text(body)
    if where is not None:
        raise InvalidInput(f"'{where}' is not valid Unicode text (a lone surrogate)",
                           field=where)
    return body


def _first_invalid_text(value, where: str = "") -> str | None:
    """Where in a loaded JSON value a string (key or value) holds a lone surrogate, as
    `url`, `clicks[2].page` or `body` for the top level; None when there is none."""
    if isinstance(value, str):
        return None if is_valid_text(value) else (where or "body")
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        if isinstance(key, str):
            if not is_valid_text(key):
                return where or "body"
            inner = f"{where}.{key}" if where else key
        else:
            inner = f"{where}[{key}]"
        found = _first_invalid_text(item, inner)
        if found is not None:
            return found
    return None


def public_origin(request) -> str | None:
    """The origin (with any path prefix) a request reached the API at, as API Gateway saw
    it: https://<requestContext.domainName> and what requestContext.path has before the
    route's path (the stage on an execute-api URL, a custom domain's base path).  API
    Gateway sets both, not the caller; None where they are missing (`chalice local`) or the
    route has path parameters."""
    context = request.context or {}
    domain, full = context.get("domainName"), context.get("path") or ""
    route = request.path
    if not domain or "{" in route or not full.endswith(route):
        return None
    return f"https://{domain}{full[:len(full) - len(route)]}"


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


# Headers of every answer the middleware sees (pages and assets set their own CSP and
# Referrer-Policy, chalicelib.web): no answer is sniffed into another type, none is
# cached unless it says so, a JSON answer loads nothing and is framed nowhere.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
DEFAULT_CACHE_CONTROL = "no-store"
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
REFERRER_POLICY = "no-referrer"
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_valid_text(value: str) -> bool:
    """A string that is Unicode text: no lone surrogate (JSON's "\\ud800", or bytes a
    decoder let through with surrogateescape), so it encodes to UTF-8 anywhere."""
    return _SURROGATE.search(value) is None


def _decodes(value: str) -> bool:
    """A path value whose %XX escapes, if any, are UTF-8 (no overlong form, no surrogate)."""
    from urllib.parse import unquote

    if "%" not in value:
        return True
    try:
        unquote(value, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def invalid_unicode(request) -> InvalidInput | None:
    """The first path parameter, query name or value, or body of `request` that is not
    Unicode text (lone surrogates, overlong or invalid UTF-8), as the 400 naming it."""
    for name, value in (request.uri_params or {}).items():
        if not (is_valid_text(value) and _decodes(value)):
            return InvalidInput(f"path parameter '{name}' is not valid UTF-8 text", field=name)
    params = request.query_params
    for name in (params or {}):
        if not is_valid_text(name):
            return InvalidInput("a query parameter's name is not valid UTF-8 text",
                                field="query")
        if not all(is_valid_text(v) for v in params.getlist(name)):
            return InvalidInput(f"query parameter '{name}' is not valid UTF-8 text",
                                field=name)
    if request.method in ("POST", "PUT", "PATCH"):
        raw = request.raw_body
        if isinstance(raw, bytes) and raw:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return InvalidInput(f"the body is not valid UTF-8 (byte {exc.start})",
                                    field="body")
    return None


def _with_answer_headers(response, method: str):
    """Cache-Control, nosniff, a Referrer-Policy on every answer, a CSP on every answer
    that is not a page; a HEAD's answer without its body."""
    headers = response.headers
    present = {k.lower() for k in headers}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"),
                        "application/json")
    wanted = {"Cache-Control": DEFAULT_CACHE_CONTROL, **NOSNIFF,
              "Referrer-Policy": REFERRER_POLICY}
    if not str(content_type).startswith("text/html"):
        wanted["Content-Security-Policy"] = JSON_CSP
    for name, value in wanted.items():
        if name.lower() not in present:
            headers[name] = value
    if method == "HEAD":
        response.body = b"" if isinstance(response.body, bytes) else ""
    return response


def one_error_shape(event, get_response):
    """The `http` middleware of every route: a request holding text that is not Unicode
    is refused (400 naming the field) before any view reads it; Chalice's own refusals,
    made before a view runs (405 method, 415 media type, 400 for a binary answer without
    a matching Accept, 500), come in the one error shape of chalicelib/errors.py,
    `{"error", "message"}`, instead of Chalice's `{"Code", "Message"}`; every answer gets
    the headers of `_with_answer_headers`."""
    refusal = invalid_unicode(event)
    if refusal is not None:
        return _with_answer_headers(json_response(refusal.to_body(), refusal.status_code),
                                    event.method)
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code",
                                                                               "Message"}:
        response.body = json.dumps({"error": body["Code"], "message": body["Message"]})
        response.headers["Content-Type"] = "application/json"
    return _with_answer_headers(response, event.method)


def answer_head_where_get(app) -> None:
    """Register HEAD beside GET on every route declared after this call (Chalice routes
    only the methods a route names; API Gateway does not map HEAD to GET): the GET's
    view answers, the middleware drops the body."""
    register = app._register_route

    def register_route(name, user_handler, kwargs, **unused):
        options = kwargs["kwargs"]
        methods = options.get("methods", ["GET"])
        if "GET" in methods and "HEAD" not in methods:
            options["methods"] = [*methods, "HEAD"]
        return register(name, user_handler, kwargs, **unused)

    app._register_route = register_route


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
