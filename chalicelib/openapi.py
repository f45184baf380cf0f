"""The API contract: an OpenAPI 3.1 document of every route, served at GET /openapi.json.

Built from the constants the routes themselves check (windows, orders, bounds, patterns,
QR options...), so a limit is stated in one place; tests/test_openapi.py checks that the
document names exactly the app's routes and runs Schemathesis against the live app.
Imported by the /openapi.json handler only (not by app.py at import time).
"""
from __future__ import annotations

from functools import cache

from chalicelib import web
from chalicelib.cache import api as cache_api
from chalicelib.hotspots import api as hotspots_api
from chalicelib.leaderboard import WINDOWS
from chalicelib.leaderboard import api as leaderboard_api
from chalicelib.qr import api as qr_api
from chalicelib.qr import spec as qr_spec

VERSION = "1"
JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
# What the examples name; tests/test_openapi.py seeds the world with them, so the
# contract run reaches each route's 200 as well as its refusals.
EXAMPLE_TAG = "pulse"
EXAMPLE_PAGE = "home"
EXAMPLE_QR_URL = "https://example.com/"
EXAMPLE_UPSTREAM = "demo"
EXAMPLE_ITEM = "7"


def _anchored(pattern: str) -> str:
    """A Python regex used with fullmatch/^...$, as a JSON Schema pattern (a search)."""
    return pattern if pattern.startswith("^") else f"^(?:{pattern})$"


def _int(bounds: tuple[int, int, int]) -> dict:
    default, lo, hi = bounds
    return {"type": "integer", "default": default, "minimum": lo, "maximum": hi}


def _enum(choices, default: str | None = None) -> dict:
    schema = {"type": "string", "enum": list(choices)}
    return schema if default is None else {**schema, "default": default}


def _query(name: str, schema: dict, description: str, required: bool = False) -> dict:
    """A query parameter; an optional one sent empty (`?n=`) is its default, as absent."""
    param = {"name": name, "in": "query", "required": required, "schema": schema,
             "description": description}
    return param if required else {**param, "allowEmptyValue": True}


def _path(name: str, schema: dict, description: str, example: str | None = None) -> dict:
    param = {"name": name, "in": "path", "required": True, "schema": schema,
             "description": description}
    return param if example is None else {**param, "example": example}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    out = {"description": description, "content": {JSON: {"schema": schema}}}
    return out if not headers else {**out, "headers": headers}


def _error(description: str, headers: dict | None = None) -> dict:
    return _json(ERROR, description, headers)


def _header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


def _obj(properties: dict, required=None, extra: bool = False) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else list(required),
            "additionalProperties": extra}


def _array(items: dict, **bounds) -> dict:
    return {"type": "array", "items": items, **bounds}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
BAD_REQUEST = "the input is refused: `field` names what to fix"
UNAVAILABLE = "a backing service (Redis, memcached, AWS) failed or timed out: try again"
UNSUPPORTED = ("a Content-Type other than `application/json` (Chalice's check of every "
               "route, in the one error shape)")
ETAG_HEADERS = {
    "ETag": _header("a strong tag of the body: send it back as If-None-Match"),
    "Cache-Control": _header("`max-age=N`: LEADERBOARD_MAX_AGE seconds"),
}
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False,
                 "schema": STRING,
                 "description": "an ETag of an earlier answer: a 304 without a body when it "
                                "still names the answer"}


def _page(description: str) -> dict:
    return {"get": {"summary": description, "tags": ["pages"],
                    "responses": {"200": {"description": "the page",
                                          "content": {"text/html": {"schema": STRING}}}}}}


def _with_415(paths: dict) -> dict:
    """Chalice refuses a request whose Content-Type is not JSON on every route, GETs
    included (as in AWS): each operation says so."""
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"].setdefault("415", _error(UNSUPPORTED))
    return paths


def _schemas() -> dict:
    entry = _obj({"rank": {"type": "integer", "minimum": 1}, "hashtag": STRING,
                  "score": INTEGER})
    sources = {"type": "object", "additionalProperties": INTEGER,
               "description": "tweets each source (twitter, archive, synthetic) contributed"}
    head = {"board": STRING, "boards": _array(STRING, minItems=1),
            "n": {"type": "integer", "minimum": leaderboard_api.N_BOUNDS[1],
                  "maximum": leaderboard_api.N_BOUNDS[2]},
            "offset": {"type": "integer", "minimum": leaderboard_api.OFFSET_BOUNDS[1],
                       "maximum": leaderboard_api.OFFSET_BOUNDS[2]},
            "updated_at": TIME_OR_NULL, "sources": sources}
    qr_options = {
        "format": _enum(qr_spec.FORMATS),
        "size": {"type": "integer", "minimum": qr_spec.SIZE_RANGE[0],
                 "maximum": qr_spec.SIZE_RANGE[1]},
        "border": {"type": "integer", "minimum": qr_spec.BORDER_RANGE[0],
                   "maximum": qr_spec.BORDER_RANGE[1]},
        "error_correction": _enum(qr_spec.ERROR_CORRECTION),
        "fg": {"type": "string", "pattern": qr_spec.COLOUR_PATTERN.pattern},
        "bg": {"type": "string", "pattern": qr_spec.COLOUR_PATTERN.pattern},
    }
    qr_id = {"type": "string", "pattern": qr_spec.ID_PATTERN.pattern}
    unit = {"type": "number", "minimum": 0, "maximum": 1}
    page_id = {"type": "string", "pattern": _anchored(hotspots_api.PAGE_ID.pattern)}
    defaults = qr_spec.QrSpec(url="")
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
        "Health": _obj({
            "status": _enum(("ok", "degraded")),
            "failing": _array(STRING),
            "dependencies": {"type": "object", "additionalProperties": _obj({
                "status": _enum(("ok", "error", "timeout")), "detail": STRING,
                "ms": {"type": "number", "minimum": 0}})},
        }),
        "LeaderboardTop": _obj({
            **head, "order": {"const": "top"}, "window": _enum(WINDOWS),
            "items": _array({"$ref": "#/components/schemas/Entry"}),
            "total": {"type": "integer", "minimum": 0}}),
        "LeaderboardRising": _obj({
            **head, "order": {"const": "rising"},
            "window": _enum(leaderboard_api.RISING_WINDOWS),
            "items": _array(_obj({"rank": {"type": "integer", "minimum": 1},
                                  "hashtag": STRING, "score": INTEGER, "expected": NUMBER,
                                  "rising": NUMBER})),
            "candidates": {"type": "integer", "minimum": 0}}),
        "Entry": entry,
        "Standing": _obj({
            "board": STRING, "window": _enum(WINDOWS), **entry["properties"],
            "above": _array({"$ref": "#/components/schemas/Entry"}),
            "below": _array({"$ref": "#/components/schemas/Entry"}),
            "hourly": _array(_obj({"hour": TIME, "count": INTEGER})),
            "updated_at": TIME_OR_NULL}),
        "QrRequest": {
            "type": "object", "required": ["url"], "additionalProperties": False,
            "description": f"fg and bg must contrast at least {qr_spec.MIN_CONTRAST:.0f}:1 "
                           "(WCAG)",
            "properties": {
                "url": {"type": "string", "minLength": 1,
                        "maxLength": qr_spec.MAX_URL_LENGTH,
                        "description": "an http or https URL"},
                **{name: {**schema, "default": getattr(defaults, name)}
                   for name, schema in qr_options.items()}},
        },
        "QrCode": _obj({
            "id": qr_id, "url": STRING, **qr_options,
            "image_url": {"type": "string", "format": "uri"}, "cached": {"type": "boolean"},
            "created_at": TIME, "expires_at": TIME,
            "image_url_expires_in": {"type": "integer", "minimum": 0}}),
        "QrStats": _obj({
            "domains": _array(_obj({"domain": STRING, "count": {"type": "integer",
                                                                "minimum": 1}})),
            "recent": _array(_obj({"id": qr_id, "url": STRING, "domain": STRING,
                                   "format": _enum(qr_spec.FORMATS), "created_at": TIME}))}),
        "Clicks": {
            "type": "object", "required": ["page", "clicks"], "additionalProperties": True,
            "properties": {
                "page": page_id,
                "session": {"type": ["string", "null"],
                            "pattern": _anchored(hotspots_api.SESSION_ID.pattern),
                            "description": "the clicks' partition key: a client session "
                                           "keeps its clicks in order (null or absent: one "
                                           "key per request)"},
                "clicks": _array(_obj({"x": unit, "y": unit,
                                       "t": {"type": "integer", "minimum": 0,
                                             "maximum": hotspots_api.MAX_T - 1,
                                             "description": "epoch milliseconds"}},
                                      extra=True),
                                 minItems=1, maxItems=hotspots_api.MAX_CLICKS)},
        },
        "ClicksAccepted": _obj({"accepted": {"type": "integer", "minimum": 1},
                                "page": page_id}),
        "Hotspots": _obj({
            "page": page_id,
            "window": _obj({"clicks": {"type": "integer", "minimum": 0},
                            "max_clicks": INTEGER, "seconds": INTEGER,
                            "from": TIME_OR_NULL, "to": TIME_OR_NULL,
                            "scan_radius": NUMBER, "min_points": INTEGER}),
            "hotspots": _array(_obj({"density": NUMBER,
                                     "min": _array(unit, minItems=2, maxItems=2),
                                     "max": _array(unit, minItems=2, maxItems=2),
                                     "count": {"type": "integer", "minimum": 1}})),
            "computed_at": TIME}),
    }


def _paths() -> dict:
    lb = leaderboard_api
    board = _query("board", STRING, "the campaign's board (default: the first configured); "
                   "an unknown one is a 404 naming the boards")
    window = _query("window", _enum(WINDOWS, WINDOWS[0]),
                    f"the window; with order=rising one of {', '.join(lb.RISING_WINDOWS)} "
                    f"(default {lb.RISING_WINDOWS[0]})")
    not_found = "no such board, tag, code, page or upstream item"
    qr_id = _path("qr_id", {"type": "string", "pattern": qr_spec.ID_PATTERN.pattern},
                  "a code's id, as POST /qr answered it",
                  qr_spec.QrSpec(url=EXAMPLE_QR_URL).id)
    upstream_headers = {"X-Cache": _header("HIT, MISS, STALE, ... (the read-through cache)"),
                        "Age": _header("seconds since the answer was fetched",
                                       {"type": "string", "pattern": "^[0-9]+$"})}
    upstream_answers = {
        "200": {"description": "the upstream's answer, UTF-8 JSON or text, as it sent it",
                "headers": upstream_headers,
                "content": {JSON: {"schema": {}}, "text/*": {"schema": STRING}}},
        "400": _error(BAD_REQUEST),
        "404": _error("no upstream of that name, or the upstream has no such item",
                      upstream_headers),
        "502": _error("the upstream failed and no stale copy is kept"),
        "503": _error(UNAVAILABLE),
        "504": _error("the upstream did not answer in time and no stale copy is kept"),
    }
    upstream_name = _path("name", {"type": "string", "minLength": 1},
                          "an upstream API named in UPSTREAMS", EXAMPLE_UPSTREAM)
    return {
        "/": _page("the index of the feature pages"),
        "/ui/assets/{name}": {"get": {
            "summary": "a stylesheet, script or icon of the pages", "tags": ["pages"],
            "parameters": [_path("name", _enum(sorted(web.asset_names())),
                                 "a file of the pages' assets", "pulse.css")],
            "responses": {
                "200": {"description": "the file (cached for five minutes)",
                        "content": {t.split(";")[0]: {"schema": STRING}
                                    for t in sorted(set(web.ASSET_TYPES.values()))}},
                "404": _error("no asset of that name")}}},
        "/favicon.ico": {"get": {
            "summary": "the pages' icon (SVG)", "tags": ["pages"],
            "responses": {"200": {"description": "the icon",
                                  "content": {"image/svg+xml": {"schema": STRING}}}}}},
        "/openapi.json": {"get": {
            "summary": "this document", "tags": ["contract"],
            "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]},
                                       "the OpenAPI 3.1 document of every route")}}},
        "/health": {"get": {
            "summary": "the state of each dependency, within 2 s", "tags": ["health"],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Health"}, "every dependency ok"),
                "503": _json({"$ref": "#/components/schemas/Health"},
                             "some dependency failing: `failing` names them")}}},
        "/leaderboard": {"get": {
            "summary": "the top of a window (order=top) or what is taking off (order=rising)",
            "tags": ["leaderboard"],
            "parameters": [
                _query("order", _enum(lb.ORDERS, lb.ORDERS[0]), "top counts or rising tags"),
                window,
                _query("n", _int(lb.N_BOUNDS), "how many entries"),
                _query("offset", _int(lb.OFFSET_BOUNDS), "entries to skip"),
                board, IF_NONE_MATCH],
            "responses": {
                "200": _json({"oneOf": [{"$ref": "#/components/schemas/LeaderboardTop"},
                                        {"$ref": "#/components/schemas/LeaderboardRising"}]},
                             "one page of the board", ETAG_HEADERS),
                "304": {"description": "If-None-Match names this answer", "headers":
                        ETAG_HEADERS},
                "400": _error(BAD_REQUEST), "404": _error(not_found),
                "503": _error(UNAVAILABLE)}}},
        "/leaderboard/{hashtag}": {"get": {
            "summary": "one tag's standing: rank, neighbours, hourly counts",
            "tags": ["leaderboard"],
            "parameters": [
                _path("hashtag", {"type": "string", "minLength": 1,
                                  "maxLength": lb.MAX_TAG_LENGTH + 1},
                      f"a hashtag, with or without '#': at most {lb.MAX_TAG_LENGTH} letters, "
                      "digits, marks and '_', at least one letter", EXAMPLE_TAG),
                _query("window", _enum(WINDOWS, WINDOWS[0]), "the window"),
                _query("neighbours", _int(lb.NEIGHBOURS_BOUNDS),
                       "entries shown above and below"),
                board, IF_NONE_MATCH],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Standing"}, "the tag's standing",
                             ETAG_HEADERS),
                "304": {"description": "If-None-Match names this answer", "headers":
                        ETAG_HEADERS},
                "400": _error(BAD_REQUEST),
                "404": _error("no such board, or the tag has no count in the window"),
                "503": _error(UNAVAILABLE)}}},
        "/ui/leaderboard": _page("the leaderboard page"),
        "/qr": {
            "post": {
                "summary": "a QR code for a URL (the same input gives the same code)",
                "tags": ["qr"],
                "requestBody": {"required": True, "content": {JSON: {
                    "schema": {"$ref": "#/components/schemas/QrRequest"},
                    "example": {"url": EXAMPLE_QR_URL}}},
                    "description": f"at most {qr_api.MAX_BODY_BYTES} bytes, "
                                   "each field at most once"},
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/QrCode"},
                                 "the code existed (from the cache)"),
                    "201": _json({"$ref": "#/components/schemas/QrCode"},
                                 "this request made the code"),
                    "400": _error(BAD_REQUEST), "503": _error(UNAVAILABLE)}},
            "get": {
                "summary": "per-domain creation counts and the recent creations",
                "tags": ["qr"],
                "parameters": [_query("top", _int(qr_api.TOP_BOUNDS), "how many domains")],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/QrStats"}, "the counts"),
                    "400": _error(BAD_REQUEST), "503": _error(UNAVAILABLE)}}},
        "/qr/{qr_id}": {"get": {
            "summary": "a code's image, or a 302 to its presigned URL", "tags": ["qr"],
            "parameters": [
                qr_id,
                _query("redirect", _enum(qr_api.REDIRECT_CHOICES, qr_api.REDIRECT_CHOICES[0]),
                       "1: a 302 to a presigned S3 URL instead of the bytes")],
            "responses": {
                "200": {"description": "the image (send an Accept naming its type, or */*)",
                        "headers": {"Cache-Control": _header("private, max-age=300")},
                        "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                    for t in qr_api.BINARY_TYPES}},
                "302": {"description": "redirect=1: the image's presigned URL",
                        "headers": {"Location": _header("the presigned S3 URL",
                                                        {"type": "string",
                                                         "format": "uri"})}},
                "400": _error(BAD_REQUEST + "; or an Accept that names neither image type"),
                "404": _error("no code of that id (or it expired)"),
                "503": _error(UNAVAILABLE)}}},
        "/ui/qr": _page("the QR page"),
        "/upstream/{name}": {"get": {
            "summary": "an upstream API's list, through the read-through cache",
            "tags": ["cache"], "parameters": [upstream_name],
            "responses": upstream_answers}},
        "/upstream/{name}/{item}": {"get": {
            "summary": "one item of an upstream API, through the read-through cache",
            "tags": ["cache"],
            "parameters": [
                upstream_name,
                _path("item", {"type": "string",
                               "pattern": _anchored(cache_api.ITEM_RE.pattern)},
                      "one path segment of unreserved characters, not . or ..",
                      EXAMPLE_ITEM)],
            "responses": upstream_answers}},
        "/ui/cache": _page("the read-through cache page"),
        "/clicks": {"post": {
            "summary": "a batch of clicks on a page, into the click stream", "tags": ["hotspots"],
            "requestBody": {"required": True, "content": {JSON: {
                "schema": {"$ref": "#/components/schemas/Clicks"},
                "example": {"page": EXAMPLE_PAGE, "session": "s1",
                            "clicks": [{"x": 0.5, "y": 0.5, "t": 1_700_000_000_000}]}}},
                "description": f"at most {hotspots_api.MAX_BODY_BYTES} bytes"},
            "responses": {
                "202": _json({"$ref": "#/components/schemas/ClicksAccepted"},
                             "every click is in the stream"),
                "400": _error(BAD_REQUEST),
                "503": _error(UNAVAILABLE + "; `failed` lists the clicks to send again")}}},
        "/hotspots": {"get": {
            "summary": "the hot regions of a page's current window", "tags": ["hotspots"],
            "parameters": [_query("page", {"type": "string", "pattern": _anchored(
                hotspots_api.PAGE_ID.pattern), "example": EXAMPLE_PAGE},
                "the page id the clicks were sent with", required=True)],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Hotspots"}, "the hotspots"),
                "400": _error(BAD_REQUEST), "404": _error("the page has no clicks"),
                "503": _error(UNAVAILABLE)}}},
        "/ui/clicks": _page("the click hotspots page"),
    }


@cache
def document() -> dict:
    """The OpenAPI 3.1 document (built once per container; do not mutate it)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pulse", "version": VERSION,
                 "description": "Hashtag leaderboard, QR codes, click hotspots and a "
                                "read-through cache. Every refusal of a JSON route is an "
                                "`Error` object; a method a path does not list gets a 405 "
                                "`Error` with an `Allow` header."},
        # relative to where this document is served: / locally, the API Gateway stage
        # (/api/) in AWS
        "servers": [{"url": ".", "description": "where this document is served"}],
        "paths": _with_415(_paths()),
        "components": {"schemas": _schemas()},
    }
