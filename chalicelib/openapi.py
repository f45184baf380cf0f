"""The API contract: an OpenAPI 3.1 document of every route, served at GET /openapi.json.

Each feature's API module states its own part (`openapi_part()`: its paths and the schemas
they name), built from the constants its routes check, so a limit is stated in one place.
app.py hands the parts to `document`, which adds the common pieces: the error shape, the
index page, /health, /openapi.json and the 415 every operation can answer.  The helpers
below build the parameters and answers the parts have in common.  tests/test_openapi.py
checks that the document names exactly the app's routes and runs Schemathesis against
the live app.  Imported by the /openapi.json handler only (not by app.py at import time).
"""
from __future__ import annotations

from collections.abc import Iterable

from chalicelib import web

VERSION = "1"
JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
BAD_REQUEST = "the input is refused: `field` names what to fix"
UNAVAILABLE = "a backing service (Redis, memcached, AWS) failed or timed out: try again"
UNSUPPORTED = ("a Content-Type other than `application/json` (Chalice's check of every "
               "route, in the one error shape)")


def anchored(pattern: str) -> str:
    """A Python regex used with fullmatch/^...$, as a JSON Schema pattern (a search)."""
    return pattern if pattern.startswith("^") else f"^(?:{pattern})$"


def bounded_int(bounds: tuple[int, int, int]) -> dict:
    """An integer parameter from a route's (default, minimum, maximum)."""
    default, lo, hi = bounds
    return {"type": "integer", "default": default, "minimum": lo, "maximum": hi}


def enum(choices, default: str | None = None) -> dict:
    schema = {"type": "string", "enum": list(choices)}
    return schema if default is None else {**schema, "default": default}


def query(name: str, schema: dict, description: str, required: bool = False) -> dict:
    """A query parameter; an optional one sent empty (`?n=`) is its default, as absent."""
    param = {"name": name, "in": "query", "required": required, "schema": schema,
             "description": description}
    return param if required else {**param, "allowEmptyValue": True}


def path(name: str, schema: dict, description: str, example: str | None = None) -> dict:
    param = {"name": name, "in": "path", "required": True, "schema": schema,
             "description": description}
    return param if example is None else {**param, "example": example}


def json_answer(schema: dict, description: str, headers: dict | None = None) -> dict:
    out = {"description": description, "content": {JSON: {"schema": schema}}}
    return out if not headers else {**out, "headers": headers}


def error(description: str, headers: dict | None = None) -> dict:
    return json_answer(ERROR, description, headers)


def header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


def obj(properties: dict, required=None, extra: bool = False) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else list(required),
            "additionalProperties": extra}


def array(items: dict, **bounds) -> dict:
    return {"type": "array", "items": items, **bounds}


def ref(schema: str) -> dict:
    return {"$ref": f"#/components/schemas/{schema}"}


def page(description: str) -> dict:
    """A feature's HTML page."""
    return {"get": {"summary": description, "tags": ["pages"],
                    "responses": {"200": {"description": "the page",
                                          "content": {"text/html": {"schema": STRING}}}}}}


def _common_paths() -> dict:
    return {
        "/": page("the index of the feature pages"),
        "/ui/assets/{name}": {"get": {
            "summary": "a stylesheet, script or icon of the pages", "tags": ["pages"],
            "parameters": [path("name", enum(sorted(web.asset_names())),
                                "a file of the pages' assets", "pulse.css")],
            "responses": {
                "200": {"description": "the file (cached for five minutes)",
                        "content": {t.split(";")[0]: {"schema": STRING}
                                    for t in sorted(set(web.ASSET_TYPES.values()))}},
                "404": error("no asset of that name")}}},
        "/favicon.ico": {"get": {
            "summary": "the pages' icon (SVG)", "tags": ["pages"],
            "responses": {"200": {"description": "the icon",
                                  "content": {"image/svg+xml": {"schema": STRING}}}}}},
        "/openapi.json": {"get": {
            "summary": "this document", "tags": ["contract"],
            "responses": {"200": json_answer({"type": "object",
                                              "required": ["openapi", "paths"]},
                                             "the OpenAPI 3.1 document of every route")}}},
        "/health": _health("ok or degraded, and which dependency fails, within 2 s",
                           "PublicHealth"),
        "/health/details": _health(
            "each dependency's check in detail (the team's route), within 2 s", "Health"),
    }


def _health(summary: str, schema: str) -> dict:
    """A health route: 200 when every dependency is ok, 503 naming the failing ones."""
    return {"get": {
        "summary": summary, "tags": ["health"],
        "responses": {
            "200": json_answer(ref(schema), "every dependency ok"),
            "503": json_answer(ref(schema), "some dependency failing: `failing` names them")}}}


def _common_schemas() -> dict:
    return {
        "Error": {
            "type": "object", "required": ["error", "message"],
            "description": "every refusal and failure of a JSON route (chalicelib/errors.py); "
                           "more members name the details (field, limit, board, upstream...)",
            "properties": {"error": {"type": "string", "minLength": 1},
                           "message": {"type": "string", "minLength": 1},
                           "field": STRING},
            "additionalProperties": True,
        },
        "PublicHealth": obj({
            "status": enum(("ok", "degraded")),
            "failing": array(STRING),
            "dependencies": {"type": "object", "additionalProperties": obj({
                "status": enum(("ok", "error", "timeout"))})},
        }),
        "Health": obj({
            "status": enum(("ok", "degraded")),
            "failing": array(STRING),
            "dependencies": {"type": "object", "additionalProperties": obj({
                "status": enum(("ok", "error", "timeout")), "detail": STRING,
                "ms": {"type": "number", "minimum": 0}})},
        }),
    }


def _merged(into: dict, more: dict, what: str) -> None:
    twice = sorted(set(into) & set(more))
    if twice:
        raise ValueError(f"two parts of the OpenAPI document state the {what} {twice}")
    into.update(more)


def _with_415(paths: dict) -> dict:
    """Chalice refuses a request whose Content-Type is not JSON on every route, GETs
    included (as in AWS): each operation says so."""
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"].setdefault("415", error(UNSUPPORTED))
    return paths


def _with_head(paths: dict) -> dict:
    """Every GET answers HEAD too (chalicelib.http.answer_head_where_get): the same
    parameters, statuses and headers, no body."""
    for operations in paths.values():
        get = operations.get("get")
        if get is None:
            continue
        responses = {code: {k: v for k, v in answer.items() if k != "content"}
                     for code, answer in get["responses"].items()}
        operations["head"] = {**{k: v for k, v in get.items() if k != "responses"},
                              "summary": f"as GET ({get['summary']}), without the body",
                              "responses": responses}
    return paths


TEAM_KEY = "team_key"


def _with_team_key(paths: dict, keyed: Iterable[tuple[str, str]]) -> dict:
    """The operations that need the team's API key say so, and the 403 of its absence."""
    for method, route in keyed:
        operation = paths[route][method.lower()]
        operation["security"] = [{TEAM_KEY: []}]
        operation["responses"].setdefault("403", error(
            "no API key, or not the team's (API Gateway's refusal)"))
    return paths


def document(parts: Iterable[dict], keyed: Iterable[tuple[str, str]] = ()) -> dict:
    """The OpenAPI 3.1 document from the features' parts ({"paths", "schemas"}), in the
    order given; a path or schema stated by two parts is a ValueError.  `keyed`: the
    (method, path) of the routes that require the team's API key on this stage."""
    paths, schemas = _common_paths(), _common_schemas()
    for part in parts:
        _merged(paths, part["paths"], "paths")
        _merged(schemas, part.get("schemas", {}), "schemas")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pulse", "version": VERSION,
                 "description": "Hashtag leaderboard, QR codes, click hotspots and a "
                                "read-through cache. Every refusal of a JSON route is an "
                                "`Error` object; a method a path does not list gets a 405 "
                                "`Error` with an `Allow` header. Query names an operation "
                                "does not list are accepted and ignored (cache busters, "
                                "trackers); a listed name given twice is a 400. Text that "
                                "is not Unicode anywhere in a request is a 400 naming "
                                "the field."},
        # relative to where this document is served: / locally, the API Gateway stage
        # (/api/) in AWS
        "servers": [{"url": ".", "description": "where this document is served"}],
        "paths": _with_head(_with_team_key(_with_415(paths), keyed)),
        "components": {"schemas": schemas, "securitySchemes": {TEAM_KEY: {
            "type": "apiKey", "in": "header", "name": "x-api-key",
            "description": "the campaign team's API Gateway key (not on the local stage)"}}},
    }
