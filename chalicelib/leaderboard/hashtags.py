"""Hashtag extraction with Twitter's own rules (twitter-text).

Why not ``#\\w+``: X decides what a hashtag is with twitter-text's ``extractHashtags``
(Unicode letters *and marks*, ZWNJ/ZWJ and a few other joiners, at least one letter,
no alphanumeric or ``&`` right before the ``#``/``＃``, not followed by ``#`` or ``://``,
not inside a URL), and a naive regex disagrees with the API on real tweets (Thai, Hindi,
Arabic, Japanese tags; ``#16``; ``a#b``; ``…/#frag`` links).  This is a port of the Java/JS
``Regex.VALID_HASHTAG`` + ``Extractor.extractHashtagsWithIndices``, checked against the
published conformance data (../shared/conformance/twitter-text/extract.yml, see
tests/test_hashtags.py) and against recorded X API v2 responses.

Stdlib only: the character classes \\p{L}, \\p{M}, \\p{Nd} come from ``unicodedata``, so the
hashtag regex is run as an equivalent scanner (see ``_scan_hashtags``) instead of needing
the third-party ``regex`` package.  URL detection (to drop hashtags inside links) is a
port of twitter-text's ``VALID_URL`` with one simplification: any alphabetic label is
accepted as a TLD instead of twitter-text's IANA list.

One addition to twitter-text: a retweet cut off by the API ends in ``…`` (U+2026), and a
tag right before that final ``…`` is dropped ("RT @x: ... #Br…"), as its end is unknown.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["extract_hashtags", "extract_hashtags_with_indices", "without_hash_sign"]

_HASH_SIGNS = "#\uff03"  # '#' and FULLWIDTH NUMBER SIGN '＃'
_TRUNCATION_ELLIPSIS = "\u2026"

# twitter-text HASHTAG_SPECIAL_CHARS: allowed inside a tag, but are not letters.
_SPECIAL_CHARS = frozenset(
    "_"  # underscore
    "\u200c\u200d"  # ZERO WIDTH NON-JOINER, ZERO WIDTH JOINER
    "\ua67e"  # CYRILLIC KAVYKA
    "\u05be\u05f3\u05f4"  # HEBREW MAQAF, GERESH, GERSHAYIM
    "\uff5e\u301c"  # FULLWIDTH TILDE, WAVE DASH
    "\u309b\u309c\u30a0"  # KATAKANA-HIRAGANA (SEMI-)VOICED SOUND MARK, DOUBLE HYPHEN
    "\u30fb"  # KATAKANA MIDDLE DOT
    "\u3003"  # DITTO MARK
    "\u0f0b\u0f0c"  # TIBETAN TSHEG, TSHEG BSTAR
    "\u00b7"  # MIDDLE DOT
)

# twitter-text's HASHTAG_LETTERS_AND_MARKS is \p{L}\p{M} plus code points that were
# unassigned in Java's Unicode version.  With Python's newer Unicode data all of them are
# L* or M* except these private-use (Co) ones, which twitter-text also counts as letters.
_PRIVATE_USE_LETTERS = ((0xF870, 0xF87F), (0xF882, 0xF882), (0xF884, 0xF89F),
                        (0xF8B8, 0xF8B8), (0xF8C1, 0xF8D6))
# Likewise HASHTAG_NUMERALS (\p{Nd} plus extras) is exactly Nd with Python's data.

_OTHER, _NUMERAL, _LETTER = 0, 1, 2


def _char_kind(ch: str) -> int:
    """_LETTER for \\p{L}\\p{M}(+extras), _NUMERAL for \\p{Nd} and the special chars."""
    if ch < "\x80":
        if ch.isalpha():
            return _LETTER
        return _NUMERAL if ch.isdigit() or ch == "_" else _OTHER
    category = unicodedata.category(ch)
    if category[0] in "LM":
        return _LETTER
    if category == "Nd" or ch in _SPECIAL_CHARS:
        return _NUMERAL
    if category == "Co":
        code = ord(ch)
        if any(lo <= code <= hi for lo, hi in _PRIVATE_USE_LETTERS):
            return _LETTER
    return _OTHER


_HASH_RE = re.compile("[" + _HASH_SIGNS + "]")


def _scan_hashtags(text: str) -> list[tuple[str, int, int]]:
    """twitter-text's VALID_HASHTAG matched the way Java's ``Matcher.find()`` loop does.

    The regex is ``(^|\\uFE0E|\\uFE0F|[^&LN])([#＃])(?![\\uFE0F\\u20E3])(LN* L LN*)`` where
    L = letters/marks and LN = L + numerals + special chars.  Equivalently, for each ``#``
    at ``h`` from left to right: the character before it (which the regex consumes, so it
    must not belong to the previous match) is absent (``^``), U+FE0E/U+FE0F, or neither
    ``&`` nor LN; the tag is the maximal LN run after the sign and needs one letter.  A
    match followed by ``#``/``＃``/``://`` is discarded (INVALID_HASHTAG_MATCH_END) but
    still ends where the next search starts.
    """
    found: list[tuple[str, int, int]] = []
    n = len(text)
    floor = 0  # end of the previous match: the next match's "before" char starts here
    hash_match = _HASH_RE.search(text)
    while hash_match is not None:
        h = hash_match.start()
        next_search = h + 1
        if h == 0:
            before_ok = True
        elif h - 1 < floor:
            before_ok = False
        else:
            before = text[h - 1]
            before_ok = before in "\ufe0e\ufe0f" or (
                before != "&" and _char_kind(before) == _OTHER)
        if before_ok and not (h + 1 < n and text[h + 1] in "\ufe0f\u20e3"):
            end = h + 1
            has_letter = False
            while end < n:
                kind = _char_kind(text[end])
                if kind == _OTHER:
                    break
                has_letter = has_letter or kind == _LETTER
                end += 1
            if has_letter:
                floor = next_search = end
                after_ok = not (end < n and (text[end] in _HASH_SIGNS
                                             or text.startswith("://", end)))
                truncated = end == n - 1 and text[end] == _TRUNCATION_ELLIPSIS
                if after_ok and not truncated:
                    found.append((text[h + 1:end], h, end))
        hash_match = _HASH_RE.search(text, next_search)
    return found


# --- URLs (twitter-text Regex.VALID_URL), only to drop hashtags that are part of a URL ---

_LATIN_ACCENTS = (
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f"
    "\u0253\u0254\u0256\u0257\u0259\u025b\u0263\u0268\u026f\u0272\u0289\u028b"
    "\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = "\u0400-\u04ff"
_DIRECTIONAL = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_URL_PRECEDING = f"(?:[^a-zA-Z0-9@\uff20$#\uff03\ufffe\ufeff\uffff]|[{_DIRECTIONAL}]|^)"
_URL_CHARS = f"a-zA-Z0-9{_LATIN_ACCENTS}"
_URL_SUBDOMAIN = f"(?>(?:[{_URL_CHARS}][{_URL_CHARS}\\-_]*)?[{_URL_CHARS}]\\.)"
_URL_DOMAIN_NAME = f"(?:(?:[{_URL_CHARS}][{_URL_CHARS}\\-]*)?[{_URL_CHARS}]\\.)"
# Any char but ASCII punctuation, whitespace, \p{Z} and the General Punctuation block.
_URL_UNICODE_CHAR = (
    "[^-_!\"#$%&'()*+,./:;<=>?@\\[\\]^`{|}~ \t\n\x0b\f\r"
    "\u00a0\u1680\u2000-\u206f\u3000]"
)
_URL_UNICODE_DOMAIN_NAME = (
    f"(?:(?:{_URL_UNICODE_CHAR}(?:{_URL_UNICODE_CHAR}|-)*)?{_URL_UNICODE_CHAR}\\.)")
_TLD_END = "(?=[^a-zA-Z0-9@+\\-]|$)"
# Simplification: twitter-text lists the valid TLDs; any alphabetic label is taken here.
_URL_TLD = f"(?:[a-zA-Z]{{2,}}|xn--[\\-0-9a-zA-Z]+){_TLD_END}"
_URL_UNICODE_TLD = f"(?:(?![0-9]){_URL_UNICODE_CHAR}){{2,}}{_TLD_END}"
# twitter-text's other two alternatives, "(?<=https?://)" + domain + ccTLD and
# domain + ccTLD + "(?=/)", only match what the first one already does.
_URL_DOMAIN = (
    f"(?:{_URL_SUBDOMAIN}*{_URL_DOMAIN_NAME}{_URL_TLD})"
    f"|(?:(?:(?<=(?i:http)://)|(?<=(?i:https)://)){_URL_UNICODE_DOMAIN_NAME}{_URL_UNICODE_TLD})"
)
_URL_PATH_CHARS = f"[a-zA-Z0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~|&@{_LATIN_ACCENTS}{_CYRILLIC}]"
_URL_BALANCED_PARENS = (
    f"\\((?:{_URL_PATH_CHARS}+"
    f"|(?:{_URL_PATH_CHARS}*\\({_URL_PATH_CHARS}+\\){_URL_PATH_CHARS}*))\\)"
)
_URL_PATH_ENDING = (
    f"(?:[a-zA-Z0-9=_#/\\-+{_LATIN_ACCENTS}{_CYRILLIC}]|(?:{_URL_BALANCED_PARENS}))")
_URL_PATH = (
    f"(?:(?:{_URL_PATH_CHARS}*(?:{_URL_BALANCED_PARENS}{_URL_PATH_CHARS}*)*{_URL_PATH_ENDING})"
    f"|(?:@{_URL_PATH_CHARS}+/))"
)
_URL_QUERY_CHARS = "[a-zA-Z0-9!?*'();:&=+$/%#\\[\\]\\-_.,~|@]"
_URL_QUERY_ENDING = "[a-zA-Z0-9\\-_&=#/]"
_VALID_URL = re.compile(
    f"({_URL_PRECEDING})"  # 1: preceding char
    "("  # 2: URL
    "((?i:https?)://)?"  # 3: protocol
    f"({_URL_DOMAIN})"  # 4: domain
    "(?::[0-9]++)?"  # port
    f"(?:/{_URL_PATH}*+)?"  # path and anchor
    f"(?:\\?{_URL_QUERY_CHARS}*{_URL_QUERY_ENDING})?"  # query string
    ")"
)
_VALID_TCO_URL = re.compile(
    f"(?i:https?)://t\\.co/([a-zA-Z0-9]+)(?:\\?{_URL_QUERY_CHARS}*{_URL_QUERY_ENDING})?")
_MAX_TCO_SLUG_LENGTH = 40
_MAX_URL_LENGTH = 4096


def _valid_host_and_length(url_length: int, has_protocol: bool, host: str) -> bool:
    """Extractor.isValidHostAndLength: IDNA-encodable host, URL at most 4096 long."""
    try:
        ascii_host = host.encode("idna")
    except UnicodeError:  # a label empty, over 63 long, or not IDNA-encodable
        return False
    length = url_length + len(ascii_host) - len(host) + (0 if has_protocol else len("https://"))
    return length <= _MAX_URL_LENGTH


def _url_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of the URLs twitter-text's extractURLsWithIndices finds in text."""
    if "." not in text:
        return []
    spans = []
    for match in _VALID_URL.finditer(text):
        before, url, protocol, host = match.group(1, 2, 3, 4)
        if not protocol and before and before in "-_./":
            continue  # INVALID_URL_WITHOUT_PROTOCOL_MATCH_BEGIN
        start = match.start(2)
        tco = _VALID_TCO_URL.match(url)
        if tco:
            if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                continue
            url = tco.group(0)  # t.co links take no path beyond the slug
        if _valid_host_and_length(len(url), bool(protocol), host):
            spans.append((start, start + len(url)))
    return spans


def extract_hashtags_with_indices(text: str | None) -> list[tuple[str, int, int]]:
    """Hashtags in text as (tag, start, end): tag without the sign, as written;
    [start, end) are code-point offsets into text, the sign included."""
    if not text or ("#" not in text and "\uff03" not in text):
        return []
    hashtags = _scan_hashtags(text)
    if not hashtags:
        return hashtags
    urls = _url_spans(text)
    if not urls:
        return hashtags
    # Extractor.removeOverlappingEntities: sort hashtags and URLs by start (stable, hashtags
    # first) and drop whatever starts inside the last entity kept; then drop the URLs.
    entities = sorted([(start, end, tag) for tag, start, end in hashtags]
                      + [(start, end, None) for start, end in urls],
                      key=lambda entity: entity[0])
    kept = [entities[0]]
    for entity in entities[1:]:
        if kept[-1][1] <= entity[0]:
            kept.append(entity)
    return [(tag, start, end) for start, end, tag in kept if tag is not None]


def without_hash_sign(tag: str) -> str:
    """The tag without one leading '#' or '＃', as a reader may type it before a tag."""
    return tag[1:] if tag[:1] and tag[0] in _HASH_SIGNS else tag


def extract_hashtags(text: str | None) -> list[str]:
    """Hashtags in text, without the '#'/'＃', in order and as written (case kept)."""
    return [tag for tag, _, _ in extract_hashtags_with_indices(text)]
