"""Dynamic QR codes: a short code of our own whose target and redirect rules can change.

Pure functions and the DynamoDB item, no HTTP.  A code is 10 characters drawn with
`secrets` from a 55-character alphabet (digits and letters without 0/O/1/l/I, which
people misread when they type a short link): 55**10 is about 2**57.8, so guessing a
live code among a million takes about 2**38 tries on average.

Table item (the QR table, partition key `pk`, no `ttl`: the code lives until deleted):

    pk          "dyn#<code>"
    target      the normalised http(s) URL scans go to
    rules       JSON list of {"device"?, "language"?, "target"}, first match wins
    format, size, border, error_correction, fg, bg    the image's options
    key         S3 key of the rendered image
    created_at, updated_at    epoch seconds
    deleted_at  epoch seconds, once retired (the short link then answers 410)
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field

from chalicelib.qr.spec import MAX_URL_LENGTH, SpecError, normalise_url

ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10
CODE_BITS = 57  # floor(10 * log2(55))
CODE_PATTERN = re.compile(rf"^[{ALPHABET}]{{{CODE_LENGTH}}}$")
DEVICES = ("ios", "android", "mobile", "desktop")
MAX_RULES = 10
RULE_FIELDS = ("device", "language", "target")
# A language range as Accept-Language carries one: "fr", "pt-BR", "zh-Hant".
LANGUAGE_PATTERN = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
PATCH_FIELDS = ("target", "rules")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def is_code(raw: str) -> bool:
    return isinstance(raw, str) and bool(CODE_PATTERN.match(raw))


def check_code(raw: str) -> str:
    if not is_code(raw):
        raise SpecError("id", f"'id' must be a dynamic code: {CODE_LENGTH} characters of "
                        "the short link alphabet")
    return raw


def short_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/r/{code}"


@dataclass(frozen=True)
class Rule:
    target: str
    device: str | None = None
    language: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in (("device", self.device), ("language", self.language),
                                  ("target", self.target)) if v is not None}


@dataclass(frozen=True)
class Code:
    """What the redirect needs of a code (kept in memcached as JSON)."""

    code: str
    target: str
    rules: tuple[Rule, ...] = ()
    deleted: bool = False

    def to_json(self) -> bytes:
        return json.dumps({"code": self.code, "target": self.target, "deleted": self.deleted,
                           "rules": [r.to_dict() for r in self.rules]},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Code:
        data = json.loads(raw)
        return cls(data["code"], data["target"], tuple(Rule(**r) for r in data["rules"]),
                   data["deleted"])


def parse_target(raw, name: str = "target") -> str:
    """`url`'s validation (http/https, no credentials, at most 2,048 characters), naming
    the field `name`."""
    try:
        return normalise_url(raw)
    except SpecError as exc:
        raise SpecError(name, exc.message.replace("'url'", f"'{name}'")) from None


def parse_rules(raw) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        raise SpecError("rules", "'rules' must be a list of {device?, language?, target}")
    if len(raw) > MAX_RULES:
        raise SpecError("rules", f"'rules' has at most {MAX_RULES} rules, got {len(raw)}")
    rules = []
    for i, item in enumerate(raw):
        where = f"rules[{i}]"
        if not isinstance(item, dict):
            raise SpecError(where, f"'{where}' must be an object {{device?, language?, target}}")
        unknown = [k for k in item if k not in RULE_FIELDS]
        if unknown:
            raise SpecError(f"{where}.{unknown[0][:40]}", f"unknown field {unknown[0][:40]!r} "
                            f"in '{where}'; allowed: {', '.join(RULE_FIELDS)}")
        if "target" not in item:
            raise SpecError(f"{where}.target", f"'{where}.target' is required")
        device, language = item.get("device"), item.get("language")
        if device is None and language is None:
            raise SpecError(where, f"'{where}' needs a condition: device or language")
        if device is not None and device not in DEVICES:
            raise SpecError(f"{where}.device", f"'{where}.device' must be one of "
                            f"{', '.join(DEVICES)}, got {repr(device)[:40]}")
        if language is not None and (not isinstance(language, str)
                                     or not LANGUAGE_PATTERN.match(language)):
            raise SpecError(f"{where}.language", f"'{where}.language' must be a language "
                            f"tag such as fr or pt-BR, got {repr(language)[:40]}")
        rules.append(Rule(target=parse_target(item["target"], f"{where}.target"),
                          device=device, language=language.lower() if language else None))
    return tuple(rules)


@dataclass(frozen=True)
class Patch:
    target: str | None = None
    rules: tuple[Rule, ...] | None = None


def parse_patch(body: dict) -> Patch:
    unknown = [k for k in body if k not in PATCH_FIELDS]
    if unknown:
        raise SpecError(unknown[0][:40], f"unknown field {unknown[0][:40]!r}; allowed: "
                        f"{', '.join(PATCH_FIELDS)}")
    if not body:
        raise SpecError("body", "send 'target', 'rules' or both")
    return Patch(target=parse_target(body["target"]) if "target" in body else None,
                 rules=parse_rules(body["rules"]) if "rules" in body else None)


# --- matching -------------------------------------------------------------------------

@dataclass(frozen=True)
class Visitor:
    """What a rule can look at: the device class and the accepted languages."""

    device: str  # ios, android, mobile (another mobile or tablet), desktop, other
    languages: tuple[str, ...] = field(default=())


def accepted_languages(header: str | None) -> tuple[str, ...]:
    """Accept-Language's ranges with q > 0, most wanted first, lower-case."""
    if not header:
        return ()
    ranked = []
    for i, part in enumerate(header[:512].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            ranked.append((-q, i, tag))
    return tuple(tag for _, _, tag in sorted(ranked))


def _language_matches(wanted: str, accepted: tuple[str, ...]) -> bool:
    """"fr" matches fr, fr-CA, ...; "fr-ca" only fr-CA."""
    if "-" in wanted:
        return wanted in accepted
    return any(tag == wanted or tag.split("-", 1)[0] == wanted for tag in accepted)


def _device_matches(wanted: str, device: str) -> bool:
    if wanted == "mobile":
        return device in ("ios", "android", "mobile")
    return wanted == device


def destination(code: Code, visitor: Visitor) -> str:
    """The first matching rule's target, else the code's target."""
    for rule in code.rules:
        if rule.device is not None and not _device_matches(rule.device, visitor.device):
            continue
        if rule.language is not None and not _language_matches(rule.language,
                                                               visitor.languages):
            continue
        return rule.target
    return code.target


def merge_query(target: str, scan_query: list[tuple[str, str]]) -> str:
    """The target with the scan's query parameters added; a name the scan gives replaces
    the target's own (Shlink's forwarding).  The result stays within a URL's length."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if not scan_query:
        return target
    parts = urlsplit(target)
    given = {name for name, _ in scan_query}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k not in given]
    merged = urlunsplit(parts._replace(query=urlencode(kept + scan_query)))
    return merged if len(merged) <= 4 * MAX_URL_LENGTH else target
