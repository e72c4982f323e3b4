"""Strict decoding of the PNG bytes a sandbox returns: PNG only, size checked before any pixel is decoded."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageRejected(ValueError):
    """The bytes are not an acceptable PNG (wrong format, too large, corrupt)."""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, validated without decompressing anything."""
    if not data.startswith(PNG_SIGNATURE):
        raise ImageRejected("not a PNG: the data does not start with the PNG signature")
    if len(data) < 33:
        raise ImageRejected(f"truncated PNG: {len(data)} bytes is too short to hold an IHDR chunk")
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise ImageRejected("corrupt PNG: the first chunk is not a 13-byte IHDR")
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise ImageRejected("corrupt PNG: IHDR checksum mismatch")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise ImageRejected(f"corrupt PNG: zero size {width}x{height}")
    return width, height


def decode_png(data: bytes, max_pixels: int, max_bytes: int) -> Image.Image:
    """Decode `data` as a PNG, rejecting anything larger than `max_bytes` or `max_pixels`.

    The pixel count comes from IHDR and is checked before decoding, so decompression bombs never inflate.
    Raises ImageRejected with the reason.
    """
    if len(data) > max_bytes:
        raise ImageRejected(f"PNG of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    width, height = png_size(data)
    if width * height > max_pixels:
        raise ImageRejected(
            f"PNG of {width}x{height} = {width * height} pixels exceeds the {max_pixels}-pixel limit "
            "(decompression bomb or oversized figure: use a smaller figsize or dpi)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            if image.size != (width, height):
                raise ImageRejected(f"corrupt PNG: decoder saw {image.size}, IHDR says {(width, height)}")
            image.load()
    except ImageRejected:
        raise
    except (
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise ImageRejected(f"corrupt PNG: {exc}") from exc
    return image
