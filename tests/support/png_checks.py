"""Assertions on the PNG the host keeps: a fresh encoding of what Pillow decoded, nothing else."""

from __future__ import annotations

import io
import struct

from PIL import Image

from support import hostile_png

KEPT = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}


def chunk_types(data: bytes) -> list[bytes]:
    """The chunk types in order; asserts the file ends exactly at the end of IEND."""
    assert data[:8] == hostile_png.SIGNATURE
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    assert pos == len(data) and kinds[-1] == b"IEND", "bytes after IEND"
    return kinds


def pillow_default_image(data: bytes) -> Image.Image:
    """What plain Pillow decodes of `data` (frame 0: the default image of an APNG)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def assert_fresh(stored: bytes, original: bytes) -> None:
    """`stored` is a fresh PNG re-encoded from the pixels Pillow decoded of `original`: critical chunks (and
    tRNS) only, no animation, nothing after IEND, the same mode, palette, transparency and pixels."""
    kinds = chunk_types(stored)
    assert set(kinds) <= KEPT, kinds
    assert stored != original
    want, got = pillow_default_image(original), pillow_default_image(stored)
    assert (got.mode, got.size) == (want.mode, want.size)
    assert got.tobytes() == want.tobytes()
    assert got.info.get("transparency") == want.info.get("transparency")
    if want.mode == "P":
        assert got.convert("RGBA").tobytes() == want.convert("RGBA").tobytes()
    assert not getattr(got, "is_animated", False)
    assert set(got.info) <= {"transparency"}, got.info
