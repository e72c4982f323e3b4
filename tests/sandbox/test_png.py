"""decode_png and clean_png: PNG only, chunks walked and caps checked before decoding, drafts re-encoded from
the decoded pixels."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image
from support import hostile_png
from support.png_checks import assert_fresh, pillow_default_image

from coco_agent.sandbox import png as png_module
from coco_agent.sandbox.png import (
    MAX_CHUNKS,
    ImageRejected,
    clean_png,
    decode_png,
    png_size,
    read_png,
    walk_png,
)


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


# ---------------------------------------------------------------- chunk walk and re-encoding (issue #10 item 5)

LIMIT = 1 << 20


@pytest.mark.parametrize("case", sorted(hostile_png.CASES))
def test_hostile_extras_stripped(case):
    """HTML in tEXt, zTXt/iTXt/eXIf/iCCP/gAMA, data after IEND, an APNG's hidden frame: none survives."""
    original = hostile_png.CASES[case]()
    cleaned = clean_png(original, max_pixels=10_000, max_bytes=LIMIT)
    assert_fresh(cleaned.png, original)
    assert hostile_png.HTML not in cleaned.png
    assert (cleaned.width, cleaned.height) == (64, 48)
    if case == "apng":
        hidden = pillow_default_image(original)
        hidden.seek(1)
        assert pillow_default_image(cleaned.png).tobytes() != hidden.convert("RGB").tobytes()


def _mode_image(mode: str) -> bytes:
    buf = io.BytesIO()
    if mode == "P+tRNS":
        image = Image.new("P", (70, 30))
        image.putpalette([(i * 3) % 256 for i in range(768)])
        image.putdata([i % 200 for i in range(70 * 30)])
        image.save(buf, format="PNG", transparency=bytes(range(0, 255, 3)))
    elif mode == "P+index":
        image = Image.new("P", (70, 30))
        image.putpalette([255 - i % 256 for i in range(48)])
        image.putdata([i % 16 for i in range(70 * 30)])
        image.save(buf, format="PNG", transparency=3)
    elif mode in ("L+tRNS", "RGB+tRNS"):
        base = mode.split("+")[0]
        image = Image.linear_gradient("L").resize((70, 30)).convert(base)
        image.save(buf, format="PNG", transparency=7 if base == "L" else (7, 7, 7))
    elif mode == "I;16":
        image = Image.new("I;16", (70, 30))
        image.putdata([i * 31 % 65536 for i in range(70 * 30)])
        image.save(buf, format="PNG")
    else:
        image = Image.linear_gradient("L").resize((70, 30)).convert(mode)
        image.save(buf, format="PNG")
    return buf.getvalue()


def _raw_png(depth: int, colour: int, rowbytes: int, interlace: int = 0, width: int = 33) -> bytes:
    """A PNG written by hand (modes Pillow does not write): 16-bit RGBA, 2-bit grey, Adam7 interlacing."""
    height = 21
    if interlace:
        passes = [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ]
        rows = b""
        for x0, y0, dx, dy in passes:
            for y in range(y0, height, dy):
                xs = list(range(x0, width, dx))
                if xs:
                    rows += b"\0" + b"".join(bytes(((x * 9 + y) % 256, (y * 13) % 256, x % 256)) for x in xs)
    else:
        rows = b"".join(
            b"\0" + bytes((x * 37 + y * 11) % 256 for x in range(rowbytes)) for y in range(height)
        )
    return (
        hostile_png.SIGNATURE
        + hostile_png.ihdr(width, height, depth, colour, interlace)
        + hostile_png.chunk(b"IDAT", zlib.compress(rows))
        + hostile_png.chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "RGB", "RGBA", "P+tRNS", "P+index", "L+tRNS", "RGB+tRNS", "I;16"]
)
def test_reencode_keeps_mode_and_pixels(mode):
    original = _mode_image(mode)
    cleaned = clean_png(original, max_pixels=10_000, max_bytes=LIMIT)
    assert_fresh(cleaned.png, original)


@pytest.mark.parametrize(
    "depth, colour, rowbytes, interlace",
    [(16, 6, 33 * 8, 0), (2, 0, 9, 0), (16, 0, 66, 0), (8, 2, 99, 1)],
    ids=["rgba16", "grey2", "grey16", "adam7"],
)
def test_reencode_of_hand_written_modes(depth, colour, rowbytes, interlace):
    original = _raw_png(depth, colour, rowbytes, interlace)
    assert_fresh(clean_png(original, max_pixels=10_000, max_bytes=LIMIT).png, original)


def test_reencoded_png_is_clean_and_stable():
    """What the host stores passes its own walk untouched (the critic and the report check it again)."""
    first = clean_png(hostile_png.apng(), 10_000, LIMIT)
    layout = walk_png(first.png, LIMIT)
    assert layout.clean and layout.dropped == () and layout.trailing == 0
    assert clean_png(first.png, 10_000, LIMIT).png == first.png


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if Pillow is asked to decode anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("Pillow was asked to decode a PNG the chunk walk should have refused")

    monkeypatch.setattr(png_module.Image, "open", refuse)


@pytest.mark.parametrize(
    "case, why",
    [
        ("many_chunks", "chunks"),
        ("split_idat", "chunks"),
        ("unknown_critical", "unknown critical chunk 'HTML'"),
    ],
)
def test_refused_before_decoding_and_fast(case, why, no_decoding):
    data = hostile_png.REFUSED[case]()
    started = time.process_time()
    with pytest.raises(ImageRejected, match=why):
        clean_png(data, max_pixels=40_000_000, max_bytes=32 << 20)
    assert time.process_time() - started < 0.1


def test_chunk_cap():
    """MAX_CHUNKS chunks in all pass; one more is refused (IHDR, the empty private ones, IDAT, IEND)."""
    assert MAX_CHUNKS == 8192
    at_cap = hostile_png.many_chunks(MAX_CHUNKS - 3)
    assert walk_png(at_cap, 32 << 20).count == MAX_CHUNKS
    assert clean_png(at_cap, 10, 32 << 20).width == 1
    with pytest.raises(ImageRejected, match=f"more than {MAX_CHUNKS} chunks"):
        walk_png(hostile_png.many_chunks(MAX_CHUNKS - 2), 32 << 20)
    split = hostile_png.split_idat(MAX_CHUNKS - 2)
    assert_fresh(clean_png(split, 10_000, 32 << 20).png, split)


def test_total_size_at_the_cap(no_decoding):
    data = hostile_png.padded(300_000)
    assert len(data) == 300_000
    assert walk_png(data, max_bytes=300_000).dropped == ("prVt",)
    with pytest.raises(ImageRejected, match="byte limit"):
        walk_png(data, max_bytes=299_999)


def test_total_size_at_the_cap_reencoded():
    data = hostile_png.padded(300_000)
    cleaned = clean_png(data, 10_000, max_bytes=300_000)
    assert_fresh(cleaned.png, data)
    assert len(cleaned.png) < 20_000


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


C = hostile_png.chunk
IEND = C(b"IEND", b"")
PLTE = C(b"PLTE", bytes(range(48)))


@pytest.mark.parametrize(
    "data, why",
    [
        (hostile_png.image()[:-6], "truncated PNG: chunk cut"),
        (hostile_png.image().replace(IEND, b""), "no IEND"),
        (hostile_png.image().replace(IEND, C(b"IEND", b"x")), "IEND"),
        (
            hostile_png.image(before=C(b"tEXt", b"a\0b")).replace(b"a\0b", b"a\0c"),
            "checksum mismatch in 'tEXt'",
        ),
        (hostile_png.image(before=b"\x7f\xff\xff\xf0prVt"), "runs past the end"),
        (hostile_png.image(before=C(b"pr\x00t", b"")), "invalid chunk type"),
        (hostile_png.image(before=hostile_png.ihdr(64, 48)), "second IHDR"),
        (hostile_png.image(after=C(b"tEXt", b"a\0b") + C(b"IDAT", b"")), "IDAT chunks are not consecutive"),
        (hostile_png.image(after=PLTE), "PLTE after IDAT"),
        (hostile_png.image().replace(hostile_png.ihdr(64, 48), hostile_png.ihdr(64, 48, 4, 2)), "bit depth"),
        (hostile_png.image().replace(hostile_png.ihdr(64, 48), hostile_png.ihdr(64, 48, 8, 3)), "no PLTE"),
        (hostile_png.image(before=C(b"tRNS", b"\0\1")), "tRNS"),
        (hostile_png.SIGNATURE + hostile_png.ihdr(64, 48) + IEND, "no IDAT"),
        (hostile_png.image(2, 2, after=C(b"IDAT", b"\0" * 70_000)), "more compressed data"),
    ],
    ids=[
        "truncated",
        "no-iend",
        "iend-with-data",
        "bad-crc",
        "length-past-end",
        "bad-type",
        "second-ihdr",
        "idat-not-consecutive",
        "plte-after-idat",
        "bad-depth",
        "palette-without-plte",
        "trns-wrong-length",
        "no-idat",
        "idat-beyond-pixels",
    ],
)
def test_corrupt_structure_refused(data, why):
    with pytest.raises(ImageRejected, match=why):
        clean_png(data, max_pixels=10_000, max_bytes=LIMIT)


def test_read_png_reads_no_more_than_the_cap(tmp_path):
    path = tmp_path / "draft.png"
    path.write_bytes(hostile_png.padded(300_000))
    with pytest.raises(ImageRejected, match="byte limit"):
        read_png(path, max_pixels=10_000, max_bytes=200_000)
    assert_fresh(read_png(path, 10_000, 300_000).png, path.read_bytes())
    with pytest.raises(ImageRejected, match="cannot read"):
        read_png(tmp_path / "missing.png", 10_000, 300_000)
