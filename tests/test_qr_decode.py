"""Every code the service makes decodes to its URL with an independent decoder
(zxing-cpp), across formats, sizes, borders, error-correction levels, colours, a
URL as long as a code here may hold (spec.MAX_VERSION) and non-ASCII URLs.  SVG is
rasterised by Chromium.

The images are the ones the service stored, over real HTTP through `chalice local`:
POST /qr, then GET /qr/{id}."""
from __future__ import annotations

import itertools

import pytest

from tests.qr_support import decode_png, fetch, post, post_http, rasterise_svg

DARK_ON_LIGHT = ("#000000", "#ffffff")
NAVY_ON_CREAM = ("#1a237e", "#fff8e1")
INVERTED = ("#ffffff", "#202020")  # light modules on a dark ground
URLS = [
    "https://example.com/",
    "http://example.com:8080/path?q=1&r=two#frag",
    "https://Bücher.example/straße?q=ä",  # IDN host, UTF-8 path and query
    "https://例え.jp/パス/ファイル?名前=値",
    "https://[2001:db8::1]/v6",
]
# 520 characters: the longest URL a code of spec.MAX_VERSION holds at level L (412 at M)
LONG_URL = "https://example.com/" + "".join(f"{i:04d}" for i in range(125))


def combos(formats, sizes):
    """Each error-correction level with each colour scheme, sizes and borders cycled,
    plus every URL: a spread of the option space without the full product."""
    borders = itertools.cycle([4, 0, 1, 16])
    size = itertools.cycle(sizes)
    url = itertools.cycle(URLS)
    for fmt, ec, (fg, bg) in itertools.product(formats, "LMQH",
                                               [DARK_ON_LIGHT, NAVY_ON_CREAM, INVERTED]):
        yield {"url": next(url), "format": fmt, "error_correction": ec, "size": next(size),
               "border": next(borders), "fg": fg, "bg": bg}


def stored_image(base: str, body: dict) -> tuple[str, bytes]:
    status, answer = post_http(base, body)
    assert status == 201, answer
    status, headers, data = fetch(f"{base}/qr/{answer['id']}", headers={"Accept": "*/*"})
    assert status == 200 and headers["Content-Type"] == f"image/{answer['format']}" + (
        "+xml" if answer["format"] == "svg" else "")
    return answer["url"], data


def test_png_codes_decode_to_their_url(live_app):
    cases = list(combos(["png"], [1, 2, 3, 5, 10, 40])) + [
        {"url": LONG_URL, "error_correction": "L", "size": 2},
        {"url": LONG_URL[:412], "error_correction": "M", "size": 1, "fg": "#1a237e",
         "bg": "#fff8e1"},
    ]
    wrong = []
    for body in cases:
        url, data = stored_image(live_app, body)
        if decode_png(data) != [url]:
            wrong.append(body)
    assert not wrong, f"{len(wrong)} of {len(cases)} codes did not decode: {wrong}"


@pytest.mark.browser
def test_svg_codes_decode_to_their_url_once_chromium_draws_them(live_app, page):
    cases = list(combos(["svg"], [2, 3, 6])) + [
        {"url": LONG_URL, "format": "svg", "error_correction": "L", "size": 2}]
    wrong = []
    for body in cases:
        url, data = stored_image(live_app, body)
        assert data.startswith(b"<?xml") and b"<svg" in data
        if decode_png(rasterise_svg(page, data, body.get("bg", "#ffffff"))) != [url]:
            wrong.append(body)
    assert not wrong, f"{len(wrong)} of {len(cases)} codes did not decode: {wrong}"


def test_normal_form_keeps_the_meaning_of_non_ascii_urls(app_client):
    from urllib.parse import unquote, urlsplit

    import idna

    _, answer = post(app_client, {"url": URLS[3]})
    parts = urlsplit(answer["url"])
    assert idna.decode(parts.hostname) == "例え.jp"
    assert unquote(parts.path) == "/パス/ファイル" and unquote(parts.query) == "名前=値"
