"""What the QR routes answer: parse the untrusted body and path, call the service, shape JSON."""
from __future__ import annotations

from collections.abc import Mapping

from chalicelib.errors import InvalidInput
from chalicelib.http import json_object_body, query_choice
from chalicelib.qr import wiring
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


def create(raw_body: bytes | None, service=None) -> tuple[dict, int]:
    """POST /qr: (answer, status): 201 when this request made the code, 200 from the cache."""
    spec = parse_body(raw_body)
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


def openapi_part() -> dict:
    """QR's paths and schemas of the API contract (chalicelib.openapi)."""
    from chalicelib import openapi as oa
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
                    "201": oa.json_answer(oa.ref("QrCode"), "this request made the code"),
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
                oa.path("qr_id", qr_id, "a code's id, as POST /qr answered it",
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
                "503": oa.error(oa.UNAVAILABLE)}}},
        "/ui/qr": oa.page("the QR page"),
    }
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
                                       "chosen error correction: 400 `url`"},
                **{name: {**schema, "default": getattr(defaults, name)}
                   for name, schema in options.items()}},
        },
        "QrCode": oa.obj({
            "id": qr_id, "url": oa.STRING, **options,
            "image_url": {"type": "string", "format": "uri"}, "cached": {"type": "boolean"},
            "created_at": oa.TIME, "expires_at": oa.TIME,
            "image_url_expires_in": {"type": "integer", "minimum": 0}}),
        "QrStats": oa.obj({
            "domains": oa.array(oa.obj({"domain": oa.STRING,
                                        "count": {"type": "integer", "minimum": 1}})),
            "recent": oa.array(oa.obj({"domain": oa.STRING,
                                       "format": oa.enum(spec.FORMATS),
                                       "created_at": oa.TIME}))}),
    }
    return {"paths": paths, "schemas": schemas}
