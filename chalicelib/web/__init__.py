"""The app's HTML pages and their static assets.

Each page is a fragment, `chalicelib/web/<name>.html`, holding what goes inside
`<main>`; `layout()` wraps it in the one layout every page shares: the header with the
app's name and the links to the feature pages, `<main>`, the footer, the one stylesheet
and the page's own script (`assets/<name>.js`).  No inline script or style anywhere, so
the Content-Security-Policy allows scripts and styles from our own origin only.

Pages are read once per container; assets are served by name from `assets/`, only the
files that are there.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

_HERE = Path(__file__).parent
ASSETS = _HERE / "assets"
APP_NAME = "Pulse"


@dataclass(frozen=True)
class Page:
    title: str  # the <title>, after the app's name
    path: str  # where the app serves it


PAGES = {
    "index": Page("", "/"),
    "leaderboard": Page("Hashtag leaderboard", "/ui/leaderboard"),
    "qr": Page("QR codes for links", "/ui/qr"),
    "clicks": Page("Click hotspots", "/ui/clicks"),
    "cache": Page("Read-through cache", "/ui/cache"),
}
# The header's links: the four feature pages, in this order, short enough for a phone.
NAV = (("leaderboard", "Leaderboard"), ("qr", "QR codes"), ("clicks", "Clicks"),
       ("cache", "Cache"))

ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".svg": "image/svg+xml"}
# Served as bytes: the app lists them in its binary types (API Gateway base64-encodes them).
BINARY_TYPES = ("image/svg+xml",)
PAGE_CACHE = "no-cache"  # revalidate: a deploy shows at once
ASSET_CACHE = "public, max-age=300"  # five minutes of a stale script or style at most
# Presigned S3 URLs of QR images: on AWS a bucket's host under amazonaws.com.
AWS_IMAGE_SOURCE = "https://*.amazonaws.com"


def _image_source() -> str:
    """Where the QR page's presigned image URLs point: the origin of the S3 endpoint
    botocore is told to use (moto locally), else AWS's own hosts."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return AWS_IMAGE_SOURCE


def content_security_policy() -> str:
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'",
        f"img-src 'self' data: blob: {_image_source()}", "connect-src 'self'",
        "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"])


def security_headers() -> dict[str, str]:
    """Headers of every page and asset.  `no-referrer`: no page needs to tell another
    site (S3 included) where its visitor came from."""
    return {"Content-Security-Policy": content_security_policy(),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _nav(current: str) -> str:
    links = []
    for name, label in NAV:
        mark = ' aria-current="page"' if name == current else ""
        links.append(f'<li><a href="{PAGES[name].path}"{mark}>{label}</a></li>')
    return "\n    ".join(links)


def layout(name: str, body: str) -> str:
    """A page: the shared head, header, `<main>` holding `body`, and footer."""
    page = PAGES[name]
    title = html.escape(f"{APP_NAME} · {page.title}" if page.title else APP_NAME)
    script = (f'\n<script src="/ui/assets/{name}.js" defer></script>'
              if (ASSETS / f"{name}.js").is_file() else "")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/ui/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/assets/pulse.css">
<script src="/ui/assets/common.js" defer></script>{script}
</head>
<body>
<a class="skip" href="#main">Skip to the content</a>
<header class="site">
  <a class="brand" href="/">{APP_NAME}</a>
  <nav aria-label="Pages">
    <ul>
    {_nav(name)}
    </ul>
  </nav>
</header>
<main id="main" tabindex="-1">
{body.strip()}
</main>
<footer class="site">
  <p>{APP_NAME}: a serverless campaign toolkit on one Chalice app ·
    <a href="/openapi.json">API contract</a> · <a href="/health">health</a></p>
</footer>
</body>
</html>
"""


@cache
def page(name: str) -> str:
    """The page `name` (index, leaderboard, qr, clicks, cache) in the layout."""
    return layout(name, (_HERE / f"{name}.html").read_text(encoding="utf-8"))


def html_response(name: str):
    """The page as an answer; `name` is its file, e.g. "qr.html"."""
    from chalice import Response

    return Response(body=page(name.removesuffix(".html")), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8",
                             "Cache-Control": PAGE_CACHE, **security_headers()})


@cache
def asset_names() -> frozenset[str]:
    return frozenset(p.name for p in ASSETS.iterdir()
                     if p.is_file() and p.suffix in ASSET_TYPES)


@cache
def asset(name: str) -> str | bytes:
    data = (ASSETS / name).read_bytes()
    return data if ASSET_TYPES[Path(name).suffix] in BINARY_TYPES else data.decode("utf-8")


def asset_response(name: str):
    """A file of `assets/` by its name, or a 404 in the app's error shape: only names
    of files that are there are read, so no name reaches outside the folder."""
    from chalice import Response

    from chalicelib.errors import NotFound
    from chalicelib.http import json_response

    if name not in asset_names():
        err = NotFound(f"no asset named {name[:80]!r}", field="name")
        return json_response(err.to_body(), err.status_code,
                             {"Cache-Control": "no-store", **security_headers()})
    return Response(body=asset(name), status_code=200,
                    headers={"Content-Type": ASSET_TYPES[Path(name).suffix],
                             "Cache-Control": ASSET_CACHE, **security_headers()})
