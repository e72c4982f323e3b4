"""Strict decoding of the PNG bytes a sandbox returns, and the fresh PNG the host keeps instead of them.

What the host keeps is what the host decoded. A job controls every byte of its result (it can write its own
result frame), so the bytes are never stored as sent:

1. `walk_png` walks the chunks before any decoder sees them: signature, IHDR first and valid, every length
   inside the file, every CRC, at most MAX_CHUNKS chunks, no unknown critical chunk, IDAT consecutive and no
   larger than the pixels can need, IEND present. It keeps only the image itself (IHDR, PLTE, tRNS, IDAT, IEND)
   and drops the rest: text (an HTML page in tEXt), Exif, ICC profiles and gamma (which make browsers show other
   colours than Pillow decodes), APNG animation (acTL/fcTL/fdAT: Chromium shows the animation, Pillow the
   default image), and whatever follows IEND.
2. `decode_png` decodes that image alone with Pillow, the pixel count checked from IHDR first.
3. `clean_png` re-encodes the decoded pixels as a fresh PNG (mode, palette and transparency kept): the bytes
   every later reader (checks, critic, scores, the HTML report) gets.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from coco_agent.errors import ImageRejected

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Chunks a PNG may hold before it is refused. Each costs Pillow 1.5-3.5 us and the walk about 1 us: 100k empty
# chunks (1.2 MB) cost Pillow 0.3-0.4 s, a million (13 MB, under the byte cap) 3.4 s. Real encoders need few:
# libpng (cairo, so cairosvg) writes 8 KiB IDAT chunks, 4096 of them at the 32 MiB byte cap; Pillow (matplotlib)
# 64 KiB ones. 8192 is twice libpng's worst case, and costs the walk under 10 ms.
MAX_CHUNKS = 8192
CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
# Colour type: (channels, allowed bit depths). 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA.
COLOUR_TYPES = {
    0: (1, {1, 2, 4, 8, 16}),
    2: (3, {8, 16}),
    3: (1, {1, 2, 4, 8}),
    4: (2, {8, 16}),
    6: (4, {8, 16}),
}
TRNS_LENGTH = {0: 2, 2: 6}  # colour type 3: one byte per palette entry at most; 4 and 6 carry alpha instead
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
# The host's own encoding: zlib level 1 with run-length matching, Pillow's adaptive filters. CPU measured with
# scripts/bench_png.py: a 1000x800 chart 16 ms (decode 10 ms), a 4000x4000 one 0.30 s (decode 0.18 s) at about
# the size level 6 gives (level 6: 0.43 s; plain level 1: twice the bytes), 32 MB of noise, the worst a draft
# under the default byte cap can be, 0.8 s (level 6: 1.35 s).
COMPRESS = {"compress_level": 1, "compress_type": zlib.Z_RLE}


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


@dataclass(frozen=True)
class PngChunks:
    """What `walk_png` found. `core` is the image alone: signature, IHDR, PLTE and tRNS when present, the IDAT
    data as one chunk, IEND. `clean`: the file held nothing else (no ancillary chunk, nothing after IEND)."""

    width: int
    height: int
    count: int  # chunks walked, IEND included
    idat_bytes: int
    dropped: tuple[str, ...]  # the types of the chunks left out, each once, in order of appearance
    trailing: int  # bytes after IEND
    core: bytes

    @property
    def clean(self) -> bool:
        return not self.dropped and not self.trailing


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _raw_size(width: int, height: int, bits_per_pixel: int, interlace: int) -> int:
    """Bytes of the filtered scanlines the IHDR describes (filter byte per row, Adam7 passes when interlaced)."""

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits_per_pixel + 7) // 8) if w and h else 0

    if not interlace:
        return rows(width, height)
    return sum(
        rows(max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))) for x0, y0, dx, dy in ADAM7
    )


def _ihdr(data: bytes) -> tuple[int, int, int, int, int]:
    """Width, height, bit depth, colour type and interlace method, each checked."""
    width, height = png_size(data)
    depth, colour, compression, filtering, interlace = data[24:29]
    if colour not in COLOUR_TYPES:
        raise ImageRejected(f"corrupt PNG: unknown colour type {colour}")
    if depth not in COLOUR_TYPES[colour][1]:
        raise ImageRejected(f"corrupt PNG: bit depth {depth} is not allowed for colour type {colour}")
    if compression or filtering or interlace > 1:
        raise ImageRejected("corrupt PNG: unknown compression, filter or interlace method")
    return width, height, depth, colour, interlace


def walk_png(data: bytes, max_bytes: int, max_chunks: int = MAX_CHUNKS) -> PngChunks:
    """Check the PNG's structure and size without decompressing anything; keep the image's own chunks.

    Raises ImageRejected with the reason: over `max_bytes`, more than `max_chunks` chunks, a length past the
    end, a CRC mismatch, an unknown critical chunk (Pillow would skip it, libpng and so browsers refuse the
    file), chunks out of order, IDAT larger than the pixels it encodes could need, no IDAT or IEND.
    """
    if len(data) > max_bytes:
        raise ImageRejected(f"PNG of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    width, height, depth, colour, interlace = _ihdr(data)
    view = memoryview(data)
    pos, count, end = 8, 0, len(data)
    plte = trns = b""
    idat: list[memoryview] = []
    idat_done = False  # IDAT seen, then another chunk: no more IDAT may follow
    dropped: dict[str, None] = {}
    while True:
        if pos + 12 > end:
            raise ImageRejected("truncated PNG: no IEND chunk" if pos == end else "truncated PNG: chunk cut")
        count += 1
        if count > max_chunks:
            raise ImageRejected(f"PNG has more than {max_chunks} chunks (tiny or empty chunks in bulk)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        name = kind.decode("latin-1")
        if not kind.isalpha():  # ASCII letters only (bytes.isalpha)
            raise ImageRejected(f"corrupt PNG: invalid chunk type {name!r}")
        if length > end - pos - 12:
            raise ImageRejected(
                f"corrupt PNG: chunk {name!r} of {length} bytes runs past the end of the data"
            )
        body = view[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            raise ImageRejected(f"corrupt PNG: checksum mismatch in {name!r}")
        pos += 12 + length
        if kind == b"IDAT":
            if idat_done:
                raise ImageRejected("corrupt PNG: IDAT chunks are not consecutive")
            idat.append(body)
            continue
        idat_done = bool(idat)
        if kind == b"IEND":
            if length:
                raise ImageRejected("corrupt PNG: IEND holds data")
            break
        if kind == b"IHDR":
            if count > 1:
                raise ImageRejected("corrupt PNG: a second IHDR")
        elif kind == b"PLTE":
            if idat or plte:
                raise ImageRejected("corrupt PNG: PLTE after IDAT, or a second PLTE")
            if colour in (0, 4) or length % 3 or not 3 <= length <= 768:
                raise ImageRejected(f"corrupt PNG: PLTE of {length} bytes for colour type {colour}")
            if colour == 3:
                plte = bytes(body)
            else:
                dropped[name] = None  # a suggested palette for RGB: no decoder uses it
        elif kind == b"tRNS" and not idat and colour in (0, 2, 3):
            limit = len(plte) // 3 if colour == 3 else TRNS_LENGTH[colour]
            if trns or (length > limit if colour == 3 else length != limit):
                raise ImageRejected(f"corrupt PNG: tRNS of {length} bytes for colour type {colour}")
            trns = bytes(body)
        elif 65 <= kind[0] <= 90:  # uppercase first letter: critical
            raise ImageRejected(f"PNG has an unknown critical chunk {name!r}")
        else:
            dropped[name] = None
    if not idat:
        raise ImageRejected("corrupt PNG: no IDAT chunk")
    if colour == 3 and not plte:
        raise ImageRejected("corrupt PNG: a palette image with no PLTE")
    idat_bytes = sum(map(len, idat))
    raw = _raw_size(width, height, depth * COLOUR_TYPES[colour][0], interlace)
    # deflate never needs much more than the raw bytes: 9 bits a byte in fixed Huffman codes, plus a few bytes a
    # block or flushed row. More is data no decoder reads the same way (and work for nothing).
    if idat_bytes > raw + raw // 8 + 8 * height + 65536:
        raise ImageRejected(
            f"corrupt PNG: {idat_bytes} bytes of IDAT, more compressed data than {width}x{height} pixels need"
        )
    core = b"".join(
        [
            data[:33],
            _chunk(b"PLTE", plte) if plte else b"",
            _chunk(b"tRNS", trns) if trns else b"",
            _chunk(b"IDAT", b"".join(idat)),
            _chunk(b"IEND", b""),
        ]
    )
    return PngChunks(width, height, count, idat_bytes, tuple(dropped), end - pos, core)


def decode_png(data: bytes, max_pixels: int, max_bytes: int) -> Image.Image:
    """Decode `data` as a PNG, rejecting anything larger than `max_bytes` or `max_pixels`.

    The chunks are walked first (see walk_png) and only the image itself reaches Pillow: never text, profiles
    or animation frames. The pixel count comes from IHDR and is checked before decoding, so decompression bombs
    never inflate. Raises ImageRejected with the reason.
    """
    layout = walk_png(data, max_bytes)
    return _decode(layout, max_pixels)


def _decode(layout: PngChunks, max_pixels: int) -> Image.Image:
    width, height = layout.width, layout.height
    if width * height > max_pixels:
        raise ImageRejected(
            f"PNG of {width}x{height} = {width * height} pixels exceeds the {max_pixels}-pixel limit "
            "(decompression bomb or oversized figure: use a smaller figsize or dpi)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(layout.core), formats=["PNG"])
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


# 8-bit modes the fast encoder writes itself: PNG colour type and channels
_FAST_MODES = {"L": (0, 1), "LA": (4, 2), "RGB": (2, 3), "RGBA": (6, 4)}


def _encode_fast(image: Image.Image) -> bytes:
    """PNG of an 8-bit L/LA/RGB/RGBA image with the Up filter on every row and zlib level 1: the pixels exactly,
    about twice as fast as Pillow's encoder (whose per-row filter search costs more than the compression) and no
    larger for charts."""
    import numpy as np

    colour_type, channels = _FAST_MODES[image.mode]
    width, height = image.size
    pixels = np.frombuffer(image.tobytes(), np.uint8).reshape(height, width * channels)
    rows = np.empty((height, width * channels + 1), np.uint8)
    rows[:, 0] = 2  # filter type Up: each byte minus the byte above it (the first row: minus zero)
    rows[0, 1:] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=rows[1:, 1:])
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = zlib.compress(rows.tobytes(), 1)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode_png(image: Image.Image) -> bytes:
    """A fresh PNG of the image's pixels: its mode, palette and transparency, nothing else (no text, no
    profile, no animation). Pillow would copy an ICC profile from `image.info`: only transparency is passed."""
    if image.mode in _FAST_MODES and image.info.get("transparency") is None:
        try:
            return _encode_fast(image)
        except ImportError:  # no numpy: Pillow's encoder below
            pass
    params: dict = dict(COMPRESS)
    if image.info.get("transparency") is not None:
        params["transparency"] = image.info["transparency"]
    saved, image.info = image.info, {}
    try:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", **params)
    except (OSError, ValueError, TypeError) as exc:
        raise ImageRejected(f"cannot re-encode the {image.mode} image as PNG: {exc}") from exc
    finally:
        image.info = saved
    return buffer.getvalue()


@dataclass(frozen=True)
class CleanPng:
    """A PNG the host decoded and re-encoded: `png` holds the fresh bytes."""

    png: bytes
    width: int
    height: int
    mode: str
    dropped: tuple[str, ...]  # chunk types the original held besides the image
    trailing: int  # bytes the original held after IEND


def clean_png(data: bytes, max_pixels: int, max_bytes: int) -> CleanPng:
    """Walk, decode and re-encode: the PNG the host keeps of the bytes a job sent. Raises ImageRejected, also
    when the fresh PNG would be over `max_bytes` (so that reading it back with the same limits works)."""
    layout = walk_png(data, max_bytes)
    image = _decode(layout, max_pixels)
    png = encode_png(image)
    if len(png) > max_bytes:
        raise ImageRejected(
            f"PNG re-encoded on the host to {len(png)} bytes exceeds the {max_bytes}-byte limit "
            "(draw a smaller or simpler image)"
        )
    return CleanPng(png, image.width, image.height, image.mode, layout.dropped, layout.trailing)


def read_bounded(path: str | Path, max_bytes: int) -> bytes:
    """A file's bytes, reading at most `max_bytes` + 1 of them. Raises ImageRejected when it is larger or
    cannot be read."""
    try:
        with open(path, "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise ImageRejected(f"cannot read {Path(path).name}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ImageRejected(f"{Path(path).name} exceeds the {max_bytes}-byte limit")
    return data


def read_png(path: str | Path, max_pixels: int, max_bytes: int) -> CleanPng:
    """`clean_png` of a file (a draft on disk may have been replaced, or come from an older run)."""
    return clean_png(read_bounded(path, max_bytes), max_pixels, max_bytes)
