"""Helpers shared by the QR tests: requests, AWS views, an independent decoder."""
from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request

from chalicelib.clients import get_aws_client

JSON = {"Content-Type": "application/json"}


def post(client, body, raw: bytes | None = None):
    """POST /qr through chalice.test.Client: (status, json)."""
    data = raw if raw is not None else json.dumps(body)
    resp = client.http.post("/qr", headers=JSON, body=data)
    return resp.status_code, json.loads(resp.body)


def post_http(base: str, body, timeout: float = 10.0, raw: bytes | None = None
              ) -> tuple[int, dict]:
    """POST /qr over real HTTP (chalice local).

    A connection reset is tried again, as any HTTP client would: `chalice local`
    listens with the standard library's backlog of 5, so a burst of 20 connects
    may be reset before the app sees the request.
    """
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(base + "/qr", data=data, headers=JSON, method="POST")
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())
        except (ConnectionResetError, urllib.error.URLError) as exc:
            if isinstance(exc, urllib.error.URLError) and not isinstance(
                    exc.reason, ConnectionResetError):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise ConnectionResetError(f"POST {base}/qr: reset 5 times")


def fetch(url: str, headers: dict | None = None, timeout: float = 10.0):
    """GET over HTTP without following redirects: (status, headers, bytes)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}),
                         timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def objects(settings) -> list[str]:
    listing = get_aws_client("s3").list_objects_v2(Bucket=settings.qr_bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


def items(settings) -> list[dict]:
    return get_aws_client("dynamodb").scan(TableName=settings.qr_table)["Items"]


def decode_png(data: bytes) -> list[str]:
    """Every QR code zxing-cpp finds in an image (bytes of PNG or any PIL format)."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def rasterise_svg(page, svg: bytes, ground: str = "#ffffff") -> bytes:
    """A PNG screenshot of the SVG as Chromium draws it, on a page of colour `ground`
    (a code with border 0 relies on what surrounds it for its quiet zone)."""
    page.set_content(f'<html><body style="margin:0;background:{ground}">'
                     '<img id="qr" style="display:block;padding:16px"></body></html>')
    page.evaluate("svg => new Promise(done => { const img = document.getElementById('qr');"
                  " img.onload = done; img.src = URL.createObjectURL("
                  "new Blob([svg], {type: 'image/svg+xml'})); })", svg.decode())
    return page.locator("#qr").screenshot()


def drain_qr_events(runner, rounds: int = 5) -> int:
    """The local runner's way for `qr.created`: the table's stream records to the handler that
    puts the events, then the rule's queue to the `qr.created` handler: messages handled."""
    handled = 0
    for _ in range(rounds):
        runner.deliver_table_records()
        handled += runner.deliver_messages()
    return handled
