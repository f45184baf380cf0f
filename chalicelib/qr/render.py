"""QR images with the `qrcode` library: PNG through Pillow, SVG as one <path>.

Imported only by the path that renders (a cache hit never loads qrcode or PIL).
"""
from __future__ import annotations

import io

from chalicelib.qr.spec import MAX_PIXELS, MAX_VERSION, QrSpec, SpecError

_BLACK, _WHITE = "#000000", "#ffffff"


def _qr(spec: QrSpec):
    """The code's matrix, after checking what rendering it would cost (spec.MAX_VERSION,
    spec.MAX_PIXELS): over either, a SpecError naming the field to change."""
    import qrcode
    from qrcode.exceptions import DataOverflowError

    levels = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
              "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}
    qr = qrcode.QRCode(error_correction=levels[spec.error_correction], box_size=spec.size,
                       border=spec.border)
    qr.add_data(spec.url.encode("ascii"))  # the normal form is ASCII: byte mode, no ECI
    try:
        version = qr.best_fit()  # from the data's length only: no matrix yet
    except (DataOverflowError, ValueError):
        version = 41
    if version > MAX_VERSION:
        raise SpecError("url", f"'url' is too long for a QR code at error correction "
                               f"{spec.error_correction} ({len(spec.url)} characters "
                               f"normalised; codes here are at most version {MAX_VERSION}); "
                               "use a lower level or a shorter URL")
    side = (version * 4 + 17 + 2 * spec.border) * spec.size
    if side * side > MAX_PIXELS:
        largest = max(1, int(MAX_PIXELS ** 0.5) // (version * 4 + 17 + 2 * spec.border))
        raise SpecError("size", f"'size' {spec.size} makes a {side}x{side} px image of this "
                                f"URL, over the {MAX_PIXELS:,} pixels allowed: at most "
                                f"{largest} here, or a smaller border")
    qr.make(fit=False)
    return qr


def _png(qr, spec: QrSpec) -> bytes:
    """The PNG: one pixel a module in a two-colour palette image, scaled by `size` with
    nearest-neighbour (what qrcode's PilImage draws box by box, at a fraction of its time
    and memory)."""
    from PIL import Image

    side = qr.modules_count + 2 * spec.border
    black_white = (spec.fg, spec.bg) == (_BLACK, _WHITE)
    # grey levels for black on white (then a 1-bit PNG, smallest), else palette indexes
    light, dark = (b"\xff", b"\x00") if black_white else (b"\x00", b"\x01")
    edge = light * spec.border
    rows = [light * side] * spec.border
    rows += [edge + b"".join(dark if m else light for m in row) + edge for row in qr.modules]
    rows += [light * side] * spec.border
    if black_white:
        small = Image.frombytes("L", (side, side), b"".join(rows)).convert("1")
    else:
        small = Image.frombytes("P", (side, side), b"".join(rows))
        small.putpalette(bytes.fromhex(spec.bg[1:] + spec.fg[1:]))
    image = small.resize((side * spec.size, side * spec.size), Image.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def render(spec: QrSpec) -> bytes:
    """The image bytes for spec, in spec.format."""
    qr = _qr(spec)
    if spec.format != "svg":
        return _png(qr, spec)
    from decimal import Decimal

    from qrcode.image.svg import SvgPathImage

    class Coloured(SvgPathImage):
        background = spec.bg
        QR_PATH_STYLE = {**SvgPathImage.QR_PATH_STYLE, "fill": spec.fg}

        def units(self, pixels, text=True):
            # qrcode writes millimetres (box_size / 10); `size` is px per module.
            return f"{pixels}px" if text else Decimal(pixels)

    out = io.BytesIO()
    qr.make_image(image_factory=Coloured).save(out)
    return out.getvalue()
