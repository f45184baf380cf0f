"""What the QR routes answer: parse the untrusted body and path, call the service, shape JSON."""
from __future__ import annotations

from collections.abc import Mapping

from chalicelib.errors import InvalidInput
from chalicelib.http import json_object_body, query_choice
from chalicelib.qr import dynamic, wiring
from chalicelib.qr.spec import QrSpec, SpecError, check_id, spec_from_dict
from chalicelib.timestamps import iso_z

MAX_BODY_BYTES = 8 * 1024
# Served by GET /qr/{id}: Chalice base64-encodes these for API Gateway, which
# decodes them for a caller whose Accept names them (or */*).
BINARY_TYPES = ("image/png", "image/svg+xml")
TOP_BOUNDS = (10, 1, 100)  # GET /qr?top=: (default, minimum, maximum)
REDIRECT_CHOICES = ("0", "1")  # GET /qr/{id}?redirect=


def _invalid(exc: SpecError) -> InvalidInput:
    return InvalidInput(exc.message, field=exc.field)


def _no_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidInput(f"field {key[:40]!r} appears twice", field=key)
        seen[key] = value
    return seen


def parse_body(raw: bytes | None) -> QrSpec:
    body = json_object_body(raw, MAX_BODY_BYTES, object_pairs_hook=_no_duplicate_keys)
    try:
        return spec_from_dict(body)
    except SpecError as exc:
        raise _invalid(exc) from None


def create(raw_body: bytes | None, service=None, codes=None,
           origin: str | None = None) -> tuple[dict, int]:
    """POST /qr: (answer, status): 201 when this request made the code, 200 from the cache.
    With `"dynamic": true`, a dynamic code (always new: 201) whose short link is on
    PUBLIC_BASE_URL, or else on `origin`, where this request reached the API."""
    body = json_object_body(raw_body, MAX_BODY_BYTES, object_pairs_hook=_no_duplicate_keys)
    is_dynamic = body.pop("dynamic", False)
    if not isinstance(is_dynamic, bool):
        raise InvalidInput("'dynamic' must be true or false", field="dynamic")
    if is_dynamic:
        return create_dynamic(body, codes, origin)
    if "rules" in body:
        raise InvalidInput("'rules' are for dynamic codes: add \"dynamic\": true",
                           field="rules")
    try:
        spec = spec_from_dict(body)
    except SpecError as exc:
        raise _invalid(exc) from None
    service = service or wiring.get_service()
    try:
        outcome = service.get_or_create(spec)
    except SpecError as exc:  # the URL does not fit a QR code at this level
        raise _invalid(exc) from None
    entry = outcome.entry
    return {"id": entry.id, "url": entry.url, "format": entry.format, **spec.options(),
            "image_url": outcome.image_url, "cached": not outcome.created,
            "created_at": iso_z(entry.created_at), "expires_at": iso_z(entry.ttl),
            "image_url_expires_in": outcome.expires_in}, 201 if outcome.created else 200


def parse_id(raw: str) -> str:
    try:
        return check_id(raw)
    except SpecError as exc:
        raise _invalid(exc) from None


def image(raw_id: str, params: Mapping[str, str] | None, service=None):
    """GET /qr/{id}: the image bytes, or a 302 to its presigned URL with ?redirect=1."""
    from chalice import Response

    if dynamic.is_code(raw_id):
        return dynamic_image(raw_id, params)
    qr_id = parse_id(raw_id)
    redirect = query_choice(params, "redirect", REDIRECT_CHOICES[0], REDIRECT_CHOICES) == "1"
    service = service or wiring.get_service()
    if redirect:
        return Response(body="", status_code=302,
                        headers={"Location": service.image_url(qr_id), "Cache-Control": "no-store"})
    entry, body = service.image(qr_id)
    return Response(body=body, status_code=200, headers={
        "Content-Type": entry.content_type, "Cache-Control": "private, max-age=300",
        "Content-Disposition": f'inline; filename="qr-{qr_id}.{entry.format}"'})


# --- dynamic codes ---
SCAN_DAYS = (7, 1, 90)  # GET /qr/{id}/scans?days=: (default, minimum, maximum)


def _record_body(record, codes) -> dict:
    return {"id": record.code, "code": record.code, "dynamic": True,
            "short_url": record.spec.url, "target": record.target,
            "rules": [r.to_dict() for r in record.rules], "format": record.spec.format,
            **{k: v for k, v in record.spec.options().items() if k != "format"},
            "image_url": codes.presign(record, _presign_seconds()),
            "created_at": iso_z(record.created_at), "updated_at": iso_z(record.updated_at),
            "deleted_at": iso_z(record.deleted_at) if record.deleted_at else None}


def _presign_seconds() -> int:
    from chalicelib.settings import get_settings

    return get_settings().qr_presign_seconds


def create_dynamic(body: dict, codes=None, origin: str | None = None) -> tuple[dict, int]:
    """POST /qr with "dynamic": true: `url` is the target; `rules` optional."""
    raw_rules = body.pop("rules", [])
    try:
        spec = spec_from_dict(body)
        rules = dynamic.parse_rules(raw_rules)
    except SpecError as exc:
        raise _invalid(exc) from None
    codes = codes or wiring.get_dynamic_codes()
    record = codes.create(spec.url, rules, spec, origin)
    return _record_body(record, codes), 201


def parse_code(raw: str) -> str:
    try:
        return dynamic.check_code(raw)
    except SpecError as exc:
        raise _invalid(exc) from None


def change(raw_id: str, raw_body: bytes | None, codes=None, lookup=None) -> dict:
    """PATCH /qr/{id}: a new target, new rules, or both; the copy the redirect reads is
    replaced before the answer."""
    code = parse_code(raw_id)
    body = json_object_body(raw_body, MAX_BODY_BYTES, object_pairs_hook=_no_duplicate_keys)
    try:
        patch = dynamic.parse_patch(body)
    except SpecError as exc:
        raise _invalid(exc) from None
    codes = codes or wiring.get_dynamic_codes()
    record = codes.update(code, patch)
    (lookup or wiring.get_cached_codes(codes)).replace(record.redirect())
    return _record_body(record, codes)


def retire(raw_id: str, codes=None, lookup=None) -> dict:
    """DELETE /qr/{id}: the short link answers 410 from now on."""
    code = parse_code(raw_id)
    codes = codes or wiring.get_dynamic_codes()
    record = codes.retire(code)
    (lookup or wiring.get_cached_codes(codes)).replace(record.redirect())
    return _record_body(record, codes)


def scans(raw_id: str, params: Mapping[str, str] | None, codes=None, reader=None) -> dict:
    """GET /qr/{id}/scans?days=N: per day and in total (see chalicelib.qr.scans)."""
    from chalicelib.http import query_int

    code = parse_code(raw_id)
    days = query_int(params, "days", *SCAN_DAYS)
    record = (codes or wiring.get_dynamic_codes()).existing(code)
    sender = wiring.get_scan_counter()
    if sender is not None:
        sender.flush(1.0)  # this container's queued scans first: a team sees its own test
    report = (reader or wiring.get_scan_reader()).report(code, days)
    return {"id": code, "code": code, "short_url": record.spec.url, "target": record.target,
            "deleted": record.deleted_at is not None, **report}


def dynamic_image(code: str, params: Mapping[str, str] | None, codes=None):
    """GET /qr/{code}: a dynamic code's image (rendered again if its object expired)."""
    from chalice import Response

    redirect = query_choice(params, "redirect", REDIRECT_CHOICES[0], REDIRECT_CHOICES) == "1"
    codes = codes or wiring.get_dynamic_codes()
    record = codes.existing(code)
    if redirect:
        codes.image(record)  # the object exists before its URL is handed out
        return Response(body="", status_code=302, headers={
            "Location": codes.presign(record, _presign_seconds()), "Cache-Control": "no-store"})
    return Response(body=codes.image(record), status_code=200, headers={
        "Content-Type": record.spec.content_type, "Cache-Control": "private, max-age=300",
        "Content-Disposition": f'inline; filename="qr-{code}.{record.spec.format}"'})


def scan(code: str, request, lookup=None, counter=None):
    """GET /r/{code}: a 302 to the target (the scan counted), or a 404/410 page: JSON
    for an Accept naming application/json, a small HTML page otherwise."""
    from chalice import Response

    from chalicelib.http import json_api
    from chalicelib.qr import redirect

    headers = request.headers
    params = request.query_params
    query = [(k, v) for k in params for v in params.getlist(k)] if params else []
    identity = (request.context or {}).get("identity") or {}

    @json_api
    def answer():
        location = redirect.redirect(
            redirect.Scan(code=code, query=query, user_agent=headers.get("user-agent", ""),
                          accept_language=headers.get("accept-language"),
                          address=identity.get("sourceIp") or ""),
            lookup or wiring.get_cached_codes(),
            counter if counter is not None else wiring.get_scan_counter())
        return Response(body="", status_code=302,
                        headers={"Location": location, **redirect.REDIRECT_HEADERS})

    response = answer()
    if response.status_code >= 400:
        response.headers.update(redirect.REDIRECT_HEADERS)
        if not redirect.wants_json(headers.get("accept")):
            import json

            response.body = redirect.error_page(response.status_code, json.loads(response.body))
            response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def stats(params: Mapping[str, str] | None, log=None) -> dict:
    """GET /qr: per-domain creation counts and the recent creations (from the event handler),
    without the URLs people made codes for."""
    from chalicelib.http import query_int

    top = query_int(params, "top", *TOP_BOUNDS)
    answer = (log or wiring.get_creation_log()).stats(top)
    for creation in answer.get("recent", ()):  # epoch seconds as kept -> ISO Z, as POST /qr
        if isinstance(creation.get("created_at"), int | float):
            creation["created_at"] = iso_z(creation["created_at"])
    return answer


def on_created_messages(bodies, log=None) -> dict:
    """The `qr.created` SQS handler's work: see chalicelib.qr.creations."""
    return (log or wiring.get_creation_log()).record_messages(bodies)


# The contract's pattern of `url`: http(s), host labels as spec._HOST_LABELS with no
# "xn--" (punycode must decode: not stated here), a port, then path, query and fragment of
# URI characters.
_LABEL = "[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_URI_CHARS = "A-Za-z0-9._~!$&'()*+,;=:@%/"
URL_PATTERN = (f"^https?://(?![^/?#:]*xn--){_LABEL}(?:\\.{_LABEL}){{0,2}}(?::[0-9]{{1,4}})?"
               f"(?:/[{_URI_CHARS}-]*)?(?:\\?[{_URI_CHARS}?-]*)?(?:#[{_URI_CHARS}?-]*)?$")
# A URL tests/test_openapi.py makes a code of before its run, so GET /qr/{id} reaches a 200.
EXAMPLE_URL = "https://example.com/"
# The dynamic code the examples name (tests seed one with it).
EXAMPLE_CODE = "abcdefghij"


def openapi_part() -> dict:
    """QR's paths and schemas of the API contract (chalicelib.openapi)."""
    from chalicelib import openapi as oa
    from chalicelib.qr import scans as scans_module
    from chalicelib.qr import spec

    options = {
        "format": oa.enum(spec.FORMATS),
        "size": {"type": "integer", "minimum": spec.SIZE_RANGE[0],
                 "maximum": spec.SIZE_RANGE[1]},
        "border": {"type": "integer", "minimum": spec.BORDER_RANGE[0],
                   "maximum": spec.BORDER_RANGE[1]},
        "error_correction": oa.enum(spec.ERROR_CORRECTION),
        "fg": {"type": "string", "pattern": spec.COLOUR_PATTERN.pattern},
        "bg": {"type": "string", "pattern": spec.COLOUR_PATTERN.pattern},
    }
    qr_id = {"type": "string", "pattern": spec.ID_PATTERN.pattern}
    code = {"type": "string", "pattern": dynamic.CODE_PATTERN.pattern}
    any_id = {"type": "string", "pattern": f"^(?:{spec.ID_PATTERN.pattern[1:-1]}|"
                                           f"{dynamic.CODE_PATTERN.pattern[1:-1]})$"}
    target = {"type": "string", "minLength": 1, "maxLength": spec.MAX_URL_LENGTH,
              "pattern": URL_PATTERN, "description": "an http or https URL, as `url`"}
    rules = oa.array({
        "type": "object", "required": ["target"], "additionalProperties": False,
        "anyOf": [{"required": ["device"]}, {"required": ["language"]}],
        "properties": {"device": oa.enum(dynamic.DEVICES),
                       "language": {"type": "string",
                                    "pattern": dynamic.LANGUAGE_PATTERN.pattern},
                       "target": target}}, maxItems=dynamic.MAX_RULES)
    id_param = oa.path("qr_id", code, "a dynamic code, as POST /qr answered it", EXAMPLE_CODE)
    team = "the team's route (an API key outside the local stage)"
    defaults = spec.QrSpec(url="")
    paths = {
        "/qr": {
            "post": {
                "summary": "a QR code for a URL (the same input gives the same code)",
                "tags": ["qr"],
                "requestBody": {"required": True, "content": {oa.JSON: {
                    "schema": oa.ref("QrRequest"), "example": {"url": EXAMPLE_URL}}},
                    "description": f"at most {MAX_BODY_BYTES} bytes, each field at most once"},
                "responses": {
                    "200": oa.json_answer(oa.ref("QrCode"), "the code existed (from the cache)"),
                    "201": oa.json_answer({"anyOf": [oa.ref("QrCode"), oa.ref("DynamicQrCode")]},
                                          "this request made the code (a dynamic one is "
                                          "always new)"),
                    "400": oa.error(oa.BAD_REQUEST), "503": oa.error(oa.UNAVAILABLE)}},
            "get": {
                "summary": "per-domain creation counts and the recent creations",
                "tags": ["qr"],
                "parameters": [oa.query("top", oa.bounded_int(TOP_BOUNDS), "how many domains")],
                "responses": {
                    "200": oa.json_answer(oa.ref("QrStats"), "the counts"),
                    "400": oa.error(oa.BAD_REQUEST), "503": oa.error(oa.UNAVAILABLE)}}},
        "/qr/{qr_id}": {"get": {
            "summary": "a code's image, or a 302 to its presigned URL", "tags": ["qr"],
            "parameters": [
                oa.path("qr_id", any_id, "a code's id, as POST /qr answered it",
                        spec.QrSpec(url=EXAMPLE_URL).id),
                oa.query("redirect", oa.enum(REDIRECT_CHOICES, REDIRECT_CHOICES[0]),
                         "1: a 302 to a presigned S3 URL instead of the bytes")],
            "responses": {
                "200": {"description": "the image (send an Accept naming its type, or */*)",
                        "headers": {"Cache-Control": oa.header("private, max-age=300")},
                        "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                    for t in BINARY_TYPES}},
                "302": {"description": "redirect=1: the image's presigned URL",
                        "headers": {"Location": oa.header("the presigned S3 URL",
                                                          {"type": "string",
                                                           "format": "uri"})}},
                "400": oa.error(oa.BAD_REQUEST + "; or an Accept that names neither image type"),
                "404": oa.error("no code of that id (or it expired)"),
                "503": oa.error(oa.UNAVAILABLE)}},
            "patch": {
                "summary": f"change a dynamic code's target and rules; {team}", "tags": ["qr"],
                "parameters": [id_param],
                "requestBody": {"required": True, "content": {oa.JSON: {
                    "schema": {"type": "object", "additionalProperties": False,
                               "minProperties": 1,
                               "properties": {"target": target, "rules": rules}},
                    "example": {"target": EXAMPLE_URL}}}},
                "responses": {
                    "200": oa.json_answer(oa.ref("DynamicQrCode"), "the code as changed"),
                    "400": oa.error(oa.BAD_REQUEST), "404": oa.error("no such dynamic code"),
                    "410": oa.error("the code was deleted"),
                    "503": oa.error(oa.UNAVAILABLE)}},
            "delete": {
                "summary": f"retire a dynamic code (its short link answers 410); {team}",
                "tags": ["qr"], "parameters": [id_param],
                "responses": {
                    "200": oa.json_answer(oa.ref("DynamicQrCode"), "the code, retired"),
                    "400": oa.error(oa.BAD_REQUEST), "404": oa.error("no such dynamic code"),
                    "410": oa.error("the code was already deleted"),
                    "503": oa.error(oa.UNAVAILABLE)}}},
        "/qr/{qr_id}/scans": {"get": {
            "summary": f"a dynamic code's scans per day: humans, bots, unique visitors, "
                       f"devices; {team}", "tags": ["qr"],
            "parameters": [id_param, oa.query("days", oa.bounded_int(SCAN_DAYS),
                                              "how many days, today first")],
            "responses": {
                "200": oa.json_answer(oa.ref("QrScans"), "the counts"),
                "400": oa.error(oa.BAD_REQUEST), "404": oa.error("no such dynamic code"),
                "503": oa.error(oa.UNAVAILABLE)}}},
        "/r/{code}": {"get": {
            "summary": "a dynamic code's short link: a 302 to its target (the scan counted)",
            "tags": ["qr"],
            "parameters": [oa.path("code", {"type": "string"}, "the short code",
                                   EXAMPLE_CODE)],
            "responses": {
                "302": {"description": "to the first matching rule's target, else the "
                                       "code's; the scan's query parameters merged in",
                        "headers": {
                            "Location": oa.header("the target", {"type": "string",
                                                                 "format": "uri"}),
                            "Cache-Control": oa.header("private, no-store")}},
                **{status: {"description": what, "content": {
                    oa.JSON: {"schema": oa.ERROR}, "text/html": {"schema": oa.STRING}}}
                   for status, what in (
                       ("404", "no such short link (JSON for an Accept naming "
                               "application/json, else a small HTML page)"),
                       ("410", "the code was deleted (JSON or HTML, as for 404)"))},
                "503": oa.error(oa.UNAVAILABLE)}}},
        "/ui/qr": oa.page("the QR page"),
    }
    count = {"type": "integer", "minimum": 0}
    counts = {"humans": count, "bots": count, "unique_visitors": count,
              "devices": oa.obj(dict.fromkeys(scans_module.DEVICE_CLASSES, count))}
    schemas = {
        "QrRequest": {
            "type": "object", "required": ["url"], "additionalProperties": False,
            "description": f"fg and bg must contrast at least {spec.MIN_CONTRAST:.0f}:1 (WCAG)",
            "properties": {
                "url": {"type": "string", "minLength": 1, "maxLength": spec.MAX_URL_LENGTH,
                        "pattern": URL_PATTERN,
                        "description": "an http or https URL without credentials, spaces or "
                                       "control characters (the pattern states its ASCII "
                                       "form; international host names and IPv6 literals "
                                       "are taken too); too long for a QR code at the "
                                       "chosen error correction: 400 `url`; a dynamic "
                                       "code's target"},
                "dynamic": {"type": "boolean", "default": False,
                            "description": "a dynamic code: a short link whose target changes"},
                "rules": {**rules, "description": "a dynamic code's redirect rules, first "
                                                  "match wins (with `dynamic: true` only)"},
                **{name: {**schema, "default": getattr(defaults, name)}
                   for name, schema in options.items()}},
        },
        "QrCode": oa.obj({
            "id": qr_id, "url": oa.STRING, **options,
            "image_url": {"type": "string", "format": "uri"}, "cached": {"type": "boolean"},
            "created_at": oa.TIME, "expires_at": oa.TIME,
            "image_url_expires_in": {"type": "integer", "minimum": 0}}),
        "DynamicQrCode": oa.obj({
            "id": code, "code": code, "dynamic": {"const": True},
            "short_url": {"type": "string", "format": "uri"}, "target": oa.STRING,
            "rules": rules, **options, "image_url": {"type": "string", "format": "uri"},
            "created_at": oa.TIME, "updated_at": oa.TIME, "deleted_at": oa.TIME_OR_NULL}),
        "QrScans": oa.obj({
            "id": code, "code": code, "short_url": oa.STRING, "target": oa.STRING,
            "deleted": {"type": "boolean"},
            "days": oa.array(oa.obj({"date": {"type": "string", "format": "date"},
                                     **counts})),
            "totals": oa.obj(counts)}),
        "QrStats": oa.obj({
            "domains": oa.array(oa.obj({"domain": oa.STRING,
                                        "count": {"type": "integer", "minimum": 1}})),
            "recent": oa.array(oa.obj({"domain": oa.STRING,
                                       "format": oa.enum(spec.FORMATS),
                                       "created_at": oa.TIME}))}),
    }
    return {"paths": paths, "schemas": schemas}
