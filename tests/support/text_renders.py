"""Helpers for tests that read text back from pictures: real renders and the sign-drawing program."""

from __future__ import annotations

import importlib.util

from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

HAS_RAPIDOCR = importlib.util.find_spec("rapidocr_onnxruntime") is not None
NO_RAPIDOCR = "rapidocr-onnxruntime is not installed (pip install -e '.[local]')"

SIGN_PROMPT = 'A small coffee shop sign that reads "FRESH BREWS"'
SIGN = """```python
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(2.56, 0.8), dpi=100)
fig.text(0.5, 0.5, "FRESH BREWS", ha="center", va="center", fontsize=22, weight="bold")
plt.savefig("output.png")
```"""


def font(size: int = 24, weight: str = "bold") -> ImageFont.FreeTypeFont:
    """matplotlib's own DejaVu Sans (always installed with matplotlib)."""
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight=weight))
    return ImageFont.truetype(path, size)


def render(lines: list[str], size: int = 24, weight: str = "bold") -> Image.Image:
    """Black text on white, one line every 1.8 em, starting at (30, 30)."""
    face = font(size, weight)
    image = Image.new("RGB", (900, 60 + int(size * 1.8) * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 30 + int(size * 1.8) * i), line, fill="black", font=face)
    return image


def wrap(text: str, width: int = 48) -> list[str]:
    """Lines of at most `width` columns: at spaces for Latin text; anywhere for text with wide (CJK) characters,
    which count two columns each."""
    import textwrap
    import unicodedata

    if not any(unicodedata.east_asian_width(ch) in "WF" for ch in text):
        return textwrap.wrap(text, width) or [text]
    lines, line, used = [], "", 0
    for ch in text:
        size = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + size > width and line.strip():
            lines.append(line.strip())
            line, used = "", 0
        line, used = line + ch, used + size
    return [*lines, line.strip()] if line.strip() else lines or [text]


def text_program(texts: list[str], width: int = 48) -> str:
    """A matplotlib program (as a model would answer) that draws `texts` verbatim, large, black on white;
    strings wider than `width` columns are wrapped (see `wrap`). CJK text needs the sandbox image's CJK font."""
    lines = [part for text in texts for part in wrap(text, width)]
    rows = len(lines) + 0.4
    body = "\n".join(
        f"fig.text(0.03, {1 - (i + 0.7) / rows:.4f}, {line!r}, fontsize=26, weight='bold')"
        for i, line in enumerate(lines)
    )
    return (
        "```python\nimport matplotlib.pyplot as plt\n"
        f"fig = plt.figure(figsize=(13, {0.9 * rows:.2f}), dpi=100)\n{body}\n"
        "plt.savefig('output.png')\n```"
    )


def html_text_program(texts: list[str], width: int = 1300) -> str:
    """An HTML page (as a model would answer with --format html) that sets `texts` verbatim, large, black on
    white, one paragraph each, wrapped by the browser at `width` px; the declared height has room for the lines
    (estimated generously: 40 columns a line, wide CJK characters counting two)."""
    import html
    import unicodedata

    def columns(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    paragraphs = "\n".join(f"<p>{html.escape(text)}</p>" for text in texts)
    lines = sum(columns(text) // 40 + 1 for text in texts)
    height = min(2048, 80 + 48 * lines + 16 * len(texts))
    return (
        '```html\n<!doctype html><html><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width={width}, height={height}">'
        "<style>p { margin: 0 0 16px; }</style></head>"
        f'<body style="margin:0;padding:20px;width:{width - 40}px;background:#fff;color:#000;'
        "font:bold 34px/1.4 'DejaVu Sans', 'WenQuanYi Micro Hei', sans-serif\">"
        f"{paragraphs}</body></html>\n```"
    )
