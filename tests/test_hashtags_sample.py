"""chalicelib.leaderboard.hashtags against recorded X API v2 pages
(../shared/sample-data/tweets, twarc2 JSONL: one response page per line): our tags vs the
API's `entities.hashtags`.

The API lists the hashtags of a retweet that fall inside its truncated text, and it knows
from the original tweet whether a tag right before the final '…' was cut ("#Br…", not
listed) or complete ("#kpop…", listed).  From the text alone we drop such a tag (see
chalicelib.leaderboard.hashtags), so agreement is high but not total; mismatches are
printed.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from chalicelib.leaderboard.hashtags import extract_hashtags, extract_hashtags_with_indices

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT.parent / "shared" / "sample-data" / "tweets"
MIN_AGREEMENT = 0.95


def _sample_files() -> list:
    if not SAMPLE_DIR.is_dir():
        reason = f"{SAMPLE_DIR} is absent (../shared/ is not beside this checkout)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason),
                             id="sample-data-absent")]
    return [pytest.param(path, id=path.name) for path in sorted(SAMPLE_DIR.glob("*.jsonl"))]


def _tweets(path: Path) -> list[dict]:
    tweets = [tweet for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
              for tweet in json.loads(line).get("data", [])]
    assert tweets, f"{path} holds no tweets"
    return tweets


def _api_hashtags(tweet: dict) -> list[dict]:
    return tweet.get("entities", {}).get("hashtags", [])


def _mismatch_kind(text: str, api: list[str], ours: list[str]) -> str:
    if text.endswith("…") and ours == api[:-1]:
        return "tag complete right before the truncation '…': the API lists it, we drop it"
    return "UNEXPLAINED"


@pytest.mark.parametrize("path", _sample_files())
def test_hashtags_agree_with_api_entities(path, record_property):
    tweets = _tweets(path)
    mismatches = []
    for tweet in tweets:
        api = [entity["tag"] for entity in _api_hashtags(tweet)]
        # `text` is HTML-escaped; the API extracts from the unescaped text ("&#x" is no tag).
        ours = extract_hashtags(html.unescape(tweet["text"]))
        if ours != api:
            kind = _mismatch_kind(tweet["text"], api, ours)
            mismatches.append(f"{tweet['id']} [{kind}] api={api} ours={ours} "
                              f"text ends {tweet['text'][-50:]!r}")
    agreement = 1 - len(mismatches) / len(tweets)
    record_property("hashtag_agreement", f"{len(tweets) - len(mismatches)}/{len(tweets)}")
    print(f"{path.name}: {len(tweets) - len(mismatches)}/{len(tweets)} tweets agree "
          f"({agreement:.1%})", *mismatches, sep="\n  ")
    assert agreement >= MIN_AGREEMENT, "\n".join(mismatches)


@pytest.mark.parametrize("path", _sample_files())
def test_offsets_match_api_on_the_served_text(path):
    """Where the tags agree, our code-point offsets into the (escaped) text are the API's."""
    compared = 0
    for tweet in _tweets(path):
        api = [(e["tag"], e["start"], e["end"]) for e in _api_hashtags(tweet)]
        ours = extract_hashtags_with_indices(tweet["text"])
        if [tag for tag, _, _ in ours] == [tag for tag, _, _ in api]:
            assert ours == api, tweet["id"]
            compared += bool(api)
    assert compared, "no tweet with hashtags to compare"
