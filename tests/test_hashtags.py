"""chalicelib.leaderboard.hashtags: twitter-text's conformance cases (read from ../shared,
never copied here) and our own cases (truncated retweets, full-width sign, case, URLs, offsets)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chalicelib.leaderboard.hashtags import extract_hashtags, extract_hashtags_with_indices

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_DIR = REPO_ROOT.parent / "shared" / "conformance" / "twitter-text"
HASHTAG_GROUPS = {"hashtags": 65, "hashtags_from_astral": 3, "hashtags_with_indices": 8}

# Conformance cases we fail on purpose: description -> reason (xfail, strict).  None today.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _conformance_cases() -> list:
    if not CONFORMANCE_DIR.is_dir():
        reason = f"{CONFORMANCE_DIR} is absent (../shared/ is not beside this checkout)"
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason=reason),
                             id="conformance-data-absent")]
    tests = yaml.safe_load((CONFORMANCE_DIR / "extract.yml").read_text(encoding="utf-8"))["tests"]
    cases = []
    for group in HASHTAG_GROUPS:
        for case in tests[group]:
            description = case["description"]
            marks = ()
            if description in KNOWN_DIFFERENCES:
                marks = pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[description])
            cases.append(pytest.param(group, case["text"], case["expected"], id=description,
                                      marks=marks))
    return cases


CONFORMANCE_CASES = _conformance_cases()


def _check_offsets(text: str, found: list[tuple[str, int, int]]) -> None:
    for tag, start, end in found:
        assert text[start] in "#＃" and text[start + 1:end] == tag, (tag, start, end)


@pytest.mark.parametrize(("group", "text", "expected"), CONFORMANCE_CASES)
def test_conformance(group, text, expected):
    found = extract_hashtags_with_indices(text)
    _check_offsets(text, found)
    if group == "hashtags_with_indices":
        assert [{"hashtag": tag, "indices": [start, end]} for tag, start, end in found] == expected
    else:
        assert extract_hashtags(text) == expected


def test_conformance_data_has_every_hashtag_case():
    if not CONFORMANCE_DIR.is_dir():
        pytest.skip(f"{CONFORMANCE_DIR} is absent (../shared/ is not beside this checkout)")
    counts = {group: sum(1 for case in CONFORMANCE_CASES if case.values[0] == group)
              for group in HASHTAG_GROUPS}
    assert counts == HASHTAG_GROUPS


@pytest.mark.parametrize(("text", "expected"), [
    # A retweet the API cut off: the last tag's end is unknown, so it is no hashtag.
    ("RT @a: great day #Brexit #Br…", ["Brexit"]),
    ("RT @a: #Brexit…", []),
    ("#wow… amazing #Brexit", ["wow", "Brexit"]),  # '…' not at the end: an ordinary tag
    ("#wow...", ["wow"]),  # three dots are not the API's ellipsis
    # Full-width number sign, and case as written.
    ("テスト ＃タグ", ["タグ"]),
    ("＃ｈａｓｈｔａｇ１２３ #KPop #kpop #KPOP", ["ｈａｓｈｔａｇ１２３", "KPop", "kpop", "KPOP"]),
    # Before/after rules.
    ("a#b c&#d e_#f", []),
    ("& #tag", ["tag"]),
    ("#a#b", []),
    ("#a##b", ["b"]),  # the regex consumes the first '#' of "##b" as the "before" char
    ("#tag://x", []),
    ("#️⃣ #⃣ #1", []),  # keycap emoji, lone enclosing keycap, digits only
    ("#_tag #tag_ #ＡＢＣ", ["_tag", "tag_", "ＡＢＣ"]),
    # URLs: a '#' inside a link is its fragment, not a hashtag.
    ("read http://example.com/page/#section now", []),
    ("example.com/#about #real", ["real"]),
    ("#tag https://t.co/AbC123 #two", ["tag", "two"]),
    ("https://example.com/a?b=1&c=#frag", []),
    ("example.com #tag", ["tag"]),
    # Nothing to find.
    ("", []),
    (None, []),
    ("no tags here", []),
    ("#", []),
])
def test_extract_hashtags(text, expected):
    assert extract_hashtags(text) == expected


def test_offsets_are_code_points():
    # 😀 is one code point (two UTF-16 units): offsets count it once.
    assert extract_hashtags_with_indices("😀 #tag ＃タグ") == [("tag", 2, 6), ("タグ", 7, 10)]
    assert extract_hashtags_with_indices("\U00020021 #\U00020021") == [("\U00020021", 2, 4)]


def test_offsets_slice_back_to_the_tags():
    text = "RT @x: 日本語ハッシュテスト。#日本語ハッシュタグ ✌️#hashtag (#a1) #ශ්‍රීලංකා #Br…"
    found = extract_hashtags_with_indices(text)
    _check_offsets(text, found)
    assert [tag for tag, _, _ in found] == ["日本語ハッシュタグ", "hashtag", "a1", "ශ්‍රීලංකා"]
