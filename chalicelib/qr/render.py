"""QR images with the `qrcode` library: PNG through Pillow, SVG as one <path>.

Imported only by the path that renders (a cache hit never loads qrcode or PIL).
"""
from __future__ import annotations

import io

from chalicelib.qr.spec import QrSpec, SpecError

_BLACK, _WHITE = "#000000", "#ffffff"


def _qr(spec: QrSpec):
    import qrcode
    from qrcode.exceptions import DataOverflowError

    levels = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
              "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}
    qr = qrcode.QRCode(error_correction=levels[spec.error_correction], box_size=spec.size,
                       border=spec.border)
    qr.add_data(spec.url.encode("ascii"))  # the normal form is ASCII: byte mode, no ECI
    try:
        qr.make(fit=True)
    except (DataOverflowError, ValueError):
        # Version 40 holds 2,953 bytes at level L but only 1,273 at level H.
        raise SpecError("url", f"'url' is too long for a QR code at error correction "
                               f"{spec.error_correction} ({len(spec.url)} characters "
                               "normalised); use a lower level or a shorter URL") from None
    return qr


def render(spec: QrSpec) -> bytes:
    """The image bytes for spec, in spec.format."""
    qr = _qr(spec)
    out = io.BytesIO()
    if spec.format == "svg":
        from decimal import Decimal

        from qrcode.image.svg import SvgPathImage

        class Coloured(SvgPathImage):
            background = spec.bg
            QR_PATH_STYLE = {**SvgPathImage.QR_PATH_STYLE, "fill": spec.fg}

            def units(self, pixels, text=True):
                # qrcode writes millimetres (box_size / 10); `size` is px per module.
                return f"{pixels}px" if text else Decimal(pixels)

        qr.make_image(image_factory=Coloured).save(out)
    else:
        from qrcode.image.pil import PilImage

        if (spec.fg, spec.bg) == (_BLACK, _WHITE):
            colours = {"fill_color": "black", "back_color": "white"}  # 1-bit PNG, smallest
        else:
            colours = {"fill_color": spec.fg, "back_color": spec.bg}
        qr.make_image(image_factory=PilImage, **colours).save(out)
    return out.getvalue()
