"""A picture inline in the terminal, where the terminal can show one: kitty's graphics protocol, iTerm2's inline
images (also WezTerm), or sixel (foot, mlterm, xterm -ti vt340, ...).

Which one: ``COCO_INLINE_IMAGES`` (kitty, iterm, sixel or none) when set, else what the terminal announces
(``TERM=xterm-kitty`` / ``KITTY_WINDOW_ID``, ``TERM_PROGRAM=iTerm.app`` / ``WezTerm``, a TERM known for sixel);
nothing when standard output is not a terminal. The image is read through the host's checked PNG decoder and
re-encoded (never a file's bytes as they are), scaled to at most ``MAX_WIDTH`` pixels wide.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from pathlib import Path
from typing import TextIO

MAX_WIDTH = 640
SIXEL_TERMS = ("foot", "mlterm", "yaft", "contour", "xterm-sixel")
PROTOCOLS = ("kitty", "iterm", "sixel", "none")


def protocol(stream: TextIO | None = None) -> str:
    """The inline-image protocol of the terminal on ``stream`` (stdout): kitty, iterm, sixel, or none."""
    chosen = os.environ.get("COCO_INLINE_IMAGES", "").strip().lower()
    if chosen in PROTOCOLS:
        return chosen
    stream = stream or sys.stdout
    if not getattr(stream, "isatty", lambda: False)():
        return "none"
    term, program = os.environ.get("TERM", ""), os.environ.get("TERM_PROGRAM", "")
    if term == "xterm-kitty" or os.environ.get("KITTY_WINDOW_ID"):
        return "kitty"
    if program in ("iTerm.app", "WezTerm"):
        return "iterm"
    if any(term.startswith(name) for name in SIXEL_TERMS):
        return "sixel"
    return "none"


def show_inline(path: str | Path, stream: TextIO | None = None) -> bool:
    """Show the PNG at ``path`` inline when the terminal can; whether it did (a picture that cannot be read is
    skipped: the path is printed anyway by the caller)."""
    stream = stream or sys.stdout
    kind = protocol(stream)
    if kind == "none":
        return False
    from coco_agent.sandbox.base import SandboxLimits
    from coco_agent.sandbox.png import ImageRejected, decode_png, read_bounded

    limits = SandboxLimits()
    try:
        data = read_bounded(Path(path), limits.max_png_bytes)
        image = decode_png(data, limits.max_pixels, limits.max_png_bytes).convert("RGB")
    except (ImageRejected, OSError):
        return False
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, max(1, round(image.height * MAX_WIDTH / image.width))))
    stream.write({"kitty": kitty, "iterm": iterm, "sixel": sixel}[kind](image) + "\n")
    stream.flush()
    return True


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def kitty(image) -> str:
    """kitty graphics protocol: the PNG in base64 chunks of 4096 (a=T: transmit and show)."""
    data = base64.b64encode(_png(image)).decode("ascii")
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)] or [""]
    out = []
    for i, chunk in enumerate(chunks):
        more = 1 if i < len(chunks) - 1 else 0
        head = f"f=100,a=T,m={more}" if i == 0 else f"m={more}"
        out.append(f"\x1b_G{head};{chunk}\x1b\\")
    return "".join(out)


def iterm(image) -> str:
    """iTerm2's inline image escape (OSC 1337 File=)."""
    data = _png(image)
    return f"\x1b]1337;File=inline=1;size={len(data)};preserveAspectRatio=1:{base64.b64encode(data).decode()}\x07"


def sixel(image) -> str:
    """DEC sixel: the image quantized to at most 64 colours, six pixel rows per band, run-length encoded."""
    import numpy as np

    picture = image.quantize(colors=64)
    palette = picture.getpalette()[: 3 * 256]
    indices = np.asarray(picture, dtype=np.uint8)
    height, width = indices.shape
    out = ['\x1bP0;1;0q"1;1;' + f"{width};{height}"]
    for index in np.unique(indices).tolist():
        r, g, b = (round(c * 100 / 255) for c in palette[3 * index : 3 * index + 3])
        out.append(f"#{index};2;{r};{g};{b}")
    weights = (1 << np.arange(6)).reshape(6, 1)
    for top in range(0, height, 6):
        band = indices[top : top + 6]
        lines = []
        for index in np.unique(band).tolist():
            bits = ((band == index) * weights[: len(band)]).sum(axis=0) + 63
            lines.append(f"#{index}{_rle(bits.astype(np.uint8).tobytes().decode('ascii'))}")
        out.append("$".join(lines) + "-")
    out.append("\x1b\\")
    return "".join(out)


def _rle(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        j = i
        while j < len(line) and line[j] == line[i]:
            j += 1
        count = j - i
        out.append(f"!{count}{line[i]}" if count > 3 else line[i] * count)
        i = j
    return "".join(out)
