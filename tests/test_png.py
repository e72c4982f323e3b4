"""decode_png: PNG only, pixel and byte caps checked before decoding."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image

from coco_agent.sandbox.png import ImageRejected, decode_png, png_size


def _png(width: int = 40, height: int = 20, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), "red").save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros: tiny on disk, width*height bytes once inflated."""
    raw = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    data = b"".join(raw.compress(row) for _ in range(height)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def test_valid_png_decodes():
    image = decode_png(_png(), max_pixels=10_000, max_bytes=1 << 20)
    assert image.size == (40, 20)
    assert image.getpixel((0, 0)) == (255, 0, 0)


def test_other_formats_rejected():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG")
    with pytest.raises(ImageRejected, match="not a PNG"):
        decode_png(buf.getvalue(), 10_000, 1 << 20)
    with pytest.raises(ImageRejected, match="not a PNG"):
        decode_png(b"<svg/>", 10_000, 1 << 20)


def test_byte_cap():
    with pytest.raises(ImageRejected, match="byte limit"):
        decode_png(_png(), 10_000, max_bytes=50)


def test_pixel_cap_checked_before_decoding():
    assert png_size(_png(100, 100)) == (100, 100)
    with pytest.raises(ImageRejected, match="pixel limit"):
        decode_png(_png(100, 100), max_pixels=9_999, max_bytes=1 << 20)


def test_decompression_bomb_rejected_fast():
    bomb = _bomb(8_000, 8_000)  # 64 MB once inflated
    assert len(bomb) < 1_000_000
    started = time.monotonic()
    with pytest.raises(ImageRejected, match="decompression bomb"):
        decode_png(bomb, max_pixels=40_000_000, max_bytes=32 << 20)
    assert time.monotonic() - started < 0.5


def test_lying_header_rejected():
    good = _png(30, 30)
    forged = bytearray(good)
    forged[16:24] = struct.pack(">II", 10, 10)  # IHDR says 10x10 but the CRC no longer matches
    with pytest.raises(ImageRejected, match="checksum"):
        decode_png(bytes(forged), 10_000, 1 << 20)


def test_truncated_and_corrupt():
    good = _png(64, 64)
    with pytest.raises(ImageRejected):
        decode_png(good[:20], 10_000, 1 << 20)
    with pytest.raises(ImageRejected, match="corrupt"):
        decode_png(good[:60], 10_000, 1 << 20)
    with pytest.raises(ImageRejected, match="zero size"):
        decode_png(_bomb(0, 0)[:33], 10_000, 1 << 20)
