"""Hostile PNGs, built from scratch with the standard library only (no files from outside).

This module's source is also shipped into the sandbox by the forgery tests (the job builds the same bytes and
writes them as its own result frame), so it must stay self-contained: `struct` and `zlib`, nothing else.
Every builder is deterministic: the host builds the same bytes to know what Pillow decodes of them.
"""

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTML = b"<html><body><script>alert(document.cookie)</script><img src=x onerror=alert(1)></body></html>"


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ihdr(width: int, height: int, depth: int = 8, colour: int = 2, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


def rgb_rows(width: int, height: int, seed: int = 0) -> bytes:
    """Unfiltered 8-bit RGB scanlines of a smooth pattern (each row starts with filter byte 0)."""
    rows = []
    for y in range(height):
        row = bytearray(b"\0")
        for x in range(width):
            row += bytes(((x * 5 + seed * 97) % 256, (y * 7 + seed * 31) % 256, (x * y + seed * 53) % 256))
        rows.append(bytes(row))
    return b"".join(rows)


def image(
    width: int = 64,
    height: int = 48,
    seed: int = 0,
    before: bytes = b"",
    after: bytes = b"",
    idat_parts: int = 1,
    trailing: bytes = b"",
) -> bytes:
    """An RGB PNG: `before` goes between IHDR and the IDATs, `after` between the IDATs and IEND, `trailing`
    after IEND; the compressed pixels are split over `idat_parts` IDAT chunks (empty ones pad the count)."""
    data = zlib.compress(rgb_rows(width, height, seed), 9)
    size = max(1, -(-len(data) // idat_parts))
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    parts += [b""] * (idat_parts - len(parts))
    idats = b"".join(chunk(b"IDAT", part) for part in parts)
    return SIGNATURE + ihdr(width, height) + before + idats + after + chunk(b"IEND", b"") + trailing


def text_html() -> bytes:
    """A valid PNG carrying an HTML page in tEXt chunks, before and after the pixels."""
    text = chunk(b"tEXt", b"Comment\0" + HTML)
    return image(before=text, after=chunk(b"tEXt", b"Description\0" + HTML))


def metadata() -> bytes:
    """Compressed and international text, Exif, an ICC profile, gamma and colour hints, a private chunk."""
    before = b"".join(
        [
            chunk(b"iCCP", b"evil\0\0" + zlib.compress(HTML * 8)),
            chunk(b"gAMA", struct.pack(">I", 10000)),  # a gamma that would darken the picture in a browser
            chunk(b"cHRM", struct.pack(">8I", *([1] * 8))),
            chunk(b"pHYs", struct.pack(">IIB", 3780, 3780, 1)),
            chunk(b"zTXt", b"Comment\0\0" + zlib.compress(HTML)),
            chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0en\0\0" + HTML),
            chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\0" + HTML),
            chunk(b"prVt", HTML),
        ]
    )
    return image(before=before, after=chunk(b"tIME", struct.pack(">HBBBBB", 2025, 1, 2, 3, 4, 5)))


def after_iend() -> bytes:
    """A valid PNG followed by an HTML document after IEND."""
    return image(trailing=HTML * 100)


def animated(width: int, height: int, default_rows: bytes, frame_rows: bytes) -> bytes:
    """An APNG of one animation frame (`frame_rows`) whose default image (`default_rows`, what Pillow decodes)
    is not part of the animation: an animated-PNG decoder (Chromium) shows only the frame."""
    actl = chunk(b"acTL", struct.pack(">II", 1, 0))
    fctl = chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, width, height, 0, 0, 1, 1, 0, 0))
    fdat = chunk(b"fdAT", struct.pack(">I", 1) + zlib.compress(frame_rows, 9))
    idat = chunk(b"IDAT", zlib.compress(default_rows, 9))
    return SIGNATURE + ihdr(width, height) + actl + idat + fctl + fdat + chunk(b"IEND", b"")


def apng(width: int = 64, height: int = 48) -> bytes:
    """A harmless pattern (seed 0) for Pillow, a different one (seed 7) for Chromium."""
    return animated(width, height, rgb_rows(width, height, 0), rgb_rows(width, height, 7))


def solid_apng(width: int = 240, height: int = 180, shown=(255, 0, 0), hidden=(0, 255, 0)) -> bytes:
    """Plain red for Pillow, plain green for Chromium (each with a black line every 10 rows, so that the checks
    do not call it blank): easy to tell apart in a screenshot."""
    black = b"\0" + b"\0\0\0" * width
    rows = [
        b"".join(black if y % 10 == 9 else b"\0" + bytes(rgb) * width for y in range(height))
        for rgb in (shown, hidden)
    ]
    return animated(width, height, *rows)


def many_chunks(count: int = 100_000) -> bytes:
    """A 1x1 PNG with `count` empty ancillary chunks (12 bytes each)."""
    return image(1, 1, before=chunk(b"prVt", b"") * count)


def split_idat(parts: int = 100_000) -> bytes:
    """A valid PNG whose pixels are split over `parts` IDAT chunks (most of them empty)."""
    return image(idat_parts=parts)


def padded(total: int) -> bytes:
    """A valid PNG padded with a private ancillary chunk to exactly `total` bytes."""
    bare = len(image(before=chunk(b"prVt", b"")))
    return image(before=chunk(b"prVt", b"\0" * (total - bare)))


def unknown_critical() -> bytes:
    """A PNG with a critical chunk no decoder knows (uppercase first letter): Pillow skips it, libpng and so
    Chromium refuse the file."""
    return image(before=chunk(b"HTML", HTML))


CASES = {
    "text_html": text_html,
    "metadata": metadata,
    "after_iend": after_iend,
    "apng": apng,
}
REFUSED = {
    "many_chunks": many_chunks,
    "split_idat": split_idat,
    "unknown_critical": unknown_critical,
}
