"""What a QR code is made of: the normalised URL plus its rendering options, and its id.

Pure functions, no I/O: the API parses untrusted input into a `QrSpec`; the id is
a hash of everything that changes the image, so the same input always names the
same S3 object and DynamoDB item, and ids spread evenly over DynamoDB partitions.

Normal form of a URL (what the code encodes and what `url` answers):
- scheme and host lower-case; the host in its ASCII (IDNA 2008, UTS #46) form;
  the default port dropped; an empty path is "/";
- path, query and fragment percent-encoded as UTF-8 where they hold characters a
  URI may not (existing %XX escapes are kept as they are).
An ASCII-only URI is what every scanner opens: a QR code's byte mode has no
declared character set, so non-ASCII bytes are read as Latin-1 by some readers.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from urllib.parse import quote, urlsplit, urlunsplit

MAX_URL_LENGTH = 2048
FORMATS = ("png", "svg")
ERROR_CORRECTION = ("L", "M", "Q", "H")
SIZE_RANGE = (1, 40)
BORDER_RANGE = (0, 16)
ID_LENGTH = 32  # base32 characters: 160 bits of sha256
ID_PATTERN = re.compile(rf"^[a-z2-7]{{{ID_LENGTH}}}$")
COLOUR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
# What one render may cost (chalicelib/qr/render.py checks both before drawing): QR
# versions up to MAX_VERSION (77 modules a side: URLs of up to 520 characters at error
# correction L, 412 at M, 292 at Q, 220 at H), since choosing the mask costs time
# growing with the module count squared; and images of up to MAX_PIXELS pixels
# ((modules + 2 x border) x size, squared).  Measured in BENCHMARKS.md ("Limits").
MAX_VERSION = 15
MAX_PIXELS = 3000 * 3000
# Lowest WCAG contrast ratio between fg and bg we accept: below it phone
# cameras stop telling dark modules from light ones.
MIN_CONTRAST = 3.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters kept as they are in each part (RFC 3986 unreserved + sub-delims +
# the part's own delimiters, and '%' so existing escapes survive).
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = _SAFE_PATH + "?"


class SpecError(ValueError):
    """Input that cannot make a QR code; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class QrSpec:
    url: str
    format: str = "png"
    size: int = 10
    border: int = 4
    error_correction: str = "M"
    fg: str = "#000000"
    bg: str = "#ffffff"

    @property
    def id(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).digest()
        return base64.b32encode(digest).decode().lower()[:ID_LENGTH]

    @property
    def content_type(self) -> str:
        return "image/png" if self.format == "png" else "image/svg+xml"

    @property
    def domain(self) -> str:
        return urlsplit(self.url).hostname or ""

    def options(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "url"}


_HOST_LABELS = re.compile(r"^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                          r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?$")


def _ascii_host(host: str) -> str:
    """The host as a URI carries it: lower-case ASCII, IDNA 2008 (UTS #46) for the rest."""
    if host.startswith("["):
        import ipaddress

        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SpecError("url", "'url' has an invalid IPv6 address") from None
        return host.lower()
    import idna  # IDNA 2008 + UTS #46 mapping (the stdlib codec is IDNA 2003)

    try:
        if not host.isascii():
            host = idna.encode(host, uts46=True).decode("ascii")
        elif "xn--" in host.lower():
            idna.decode(host.lower())  # a punycode label must decode to a valid name
    except idna.IDNAError as exc:
        raise SpecError("url", f"'url' has an invalid international host name: {exc}") from None
    host = host.lower()
    if len(host) > 253 or not _HOST_LABELS.match(host):
        raise SpecError("url", f"'url' has an invalid host name {host[:60]!r}")
    return host


def normalise_url(raw) -> str:
    """The normal form of an http(s) URL, or SpecError(field='url')."""
    if not isinstance(raw, str):
        raise SpecError("url", "'url' must be a string")
    url = raw.strip()
    if not url:
        raise SpecError("url", "'url' is empty")
    if len(url) > MAX_URL_LENGTH:
        raise SpecError("url", f"'url' has at most {MAX_URL_LENGTH} characters, got {len(url)}")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise SpecError("url", "'url' must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SpecError("url", f"'url' is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise SpecError("url", f"'url' must be an http or https URL, got {shown}")
    if "@" in parts.netloc:
        raise SpecError("url", "'url' must not carry credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise SpecError("url", "'url' has no host")
    if ":" in host:  # urlsplit strips the brackets of an IPv6 literal
        host = f"[{host}]"
    host = _ascii_host(host)
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((
        scheme, netloc,
        quote(parts.path, safe=_SAFE_PATH) or "/",
        quote(parts.query, safe=_SAFE_QUERY),
        quote(parts.fragment, safe=_SAFE_QUERY),
    ))


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(fg: str, bg: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1..21)."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _int_option(body: dict, name: str, default: int, bounds: tuple[int, int]) -> int:
    value = body.get(name, default)
    # 10.0 is the integer 10 (JSON Schema's `integer`, as the API contract states it)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # bool is an int in Python; `true` is not a size.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(name, f"'{name}' must be an integer")
    lo, hi = bounds
    if not lo <= value <= hi:
        raise SpecError(name, f"'{name}' must be between {lo} and {hi}, got {value}")
    return value


def _choice_option(body: dict, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = body.get(name, default)
    if value not in choices:
        shown = repr(value)[:40]
        raise SpecError(name, f"'{name}' must be one of {', '.join(choices)}, got {shown}")
    return value


def _colour_option(body: dict, name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not COLOUR_PATTERN.match(value):
        raise SpecError(name, f"'{name}' must be a colour written #rrggbb, got {repr(value)[:40]}")
    return value.lower()


FIELDS = ("url", "format", "size", "border", "error_correction", "fg", "bg")


def spec_from_dict(body: dict) -> QrSpec:
    """A QrSpec from a request body (a dict), validating every field."""
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise SpecError(unknown[0], f"unknown field {unknown[0][:40]!r}; allowed: "
                        f"{', '.join(FIELDS)}")
    if "url" not in body:
        raise SpecError("url", "'url' is required")
    defaults = QrSpec(url="")
    spec = QrSpec(
        url=normalise_url(body["url"]),
        format=_choice_option(body, "format", defaults.format, FORMATS),
        size=_int_option(body, "size", defaults.size, SIZE_RANGE),
        border=_int_option(body, "border", defaults.border, BORDER_RANGE),
        error_correction=_choice_option(body, "error_correction", defaults.error_correction,
                                        ERROR_CORRECTION),
        fg=_colour_option(body, "fg", defaults.fg),
        bg=_colour_option(body, "bg", defaults.bg),
    )
    ratio = contrast(spec.fg, spec.bg)
    if ratio < MIN_CONTRAST:
        raise SpecError("bg", f"'fg' and 'bg' contrast {ratio:.1f}:1; scanners need at least "
                        f"{MIN_CONTRAST:.0f}:1")
    return spec


def check_id(raw: str) -> str:
    if not isinstance(raw, str) or not ID_PATTERN.match(raw):
        raise SpecError("id", f"'id' must be {ID_LENGTH} characters a-z and 2-7")
    return raw
