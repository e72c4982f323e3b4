"""A job whose limits say hide_text draws the same picture with its text drawing nothing (layered text): same size,
same layout, the only changed pixels inside the text boxes the normal render reports, and the text layer solved
from the two gives the draft back. Formats that cannot hide their text refuse with a clear error."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from coco_agent.refiners.text_layer import OUTSIDE_SHARE, composite, split_text
from coco_agent.refiners.text_regions import padded_and_merged
from coco_agent.sandbox.base import SandboxLimits

HIDDEN = dataclasses.replace(SandboxLimits(), hide_text=True, facts=False)

MATPLOTLIB = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
ax.bar(["north", "south"], [3, 5], color="tab:blue")
ax.set_title("GRAND OPENING", fontsize=18)
ax.annotate("peak", xy=(1, 5), xytext=(0, 4.5), arrowprops=dict(arrowstyle="->"))
ax.legend(["sales"], loc="lower right")
fig.savefig("out.png", bbox_inches="tight")
"""
PIL = """
from PIL import Image, ImageDraw, ImageFont
im = Image.new("RGB", (400, 200), (30, 60, 120))
d = ImageDraw.Draw(im)
d.rectangle([20, 20, 380, 180], outline=(255, 200, 0), width=4)
font = ImageFont.truetype("DejaVuSans-Bold.ttf", 36)
d.text((50, 70), "FRESH BREWS", fill=(255, 255, 255), font=font)
d.multiline_text((50, 120), "open\\nlate", fill=(255, 200, 0), font=ImageFont.truetype("DejaVuSans.ttf", 18))
im.save("out.png")
"""
SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200">
<rect width="400" height="200" fill="#123"/><circle cx="330" cy="60" r="40" fill="orange"/>
<text x="40" y="120" font-size="40" fill="white">Hello <tspan fill="yellow">World</tspan></text></svg>"""
HTML = """<html><body style="margin:0;width:600px;height:320px;background:linear-gradient(#347,#a35)">
<div style="border:3px solid currentColor;color:#ffd;margin:30px;padding:16px;font:bold 40px sans-serif;
text-shadow:2px 2px 3px #000">夏季大促 SUMMER SALE<ol><li style="font-size:20px;text-decoration:underline">
Friday 8 PM, City Park</li></ol></div>
<svg width="200" height="40"><circle cx="20" cy="20" r="15" fill="currentColor"/>
<text x="50" y="28" fill="#fff" font-size="20">icon label</text></svg></body></html>"""
PROGRAMS = {"matplotlib": MATPLOTLIB, "pil": PIL, "svg": SVG, "html": HTML}


def _image(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as opened:
        return np.asarray(opened.convert("RGB"), dtype=int)


def _assert_text_only_hidden(sandbox, fmt: str) -> None:
    drawn = sandbox.render(PROGRAMS[fmt], fmt)
    bare = sandbox.render(PROGRAMS[fmt], fmt, HIDDEN)
    assert drawn.ok and bare.ok, (drawn.error, bare.error)
    assert bare.text_hidden and not drawn.text_hidden
    assert (bare.width, bare.height) == (drawn.width, drawn.height)  # the layout did not move
    a, b = _image(drawn.png), _image(bare.png)
    changed = (np.abs(a - b) > 3).any(axis=2)
    zone = np.zeros(changed.shape, dtype=bool)
    for x0, y0, x1, y1 in padded_and_merged(drawn.text_boxes or [], (drawn.width, drawn.height)):
        zone[y0:y1, x0:x1] = True
    assert changed.sum() > 300, "hiding the text changed (almost) nothing"
    # a list marker or a shadow may reach past the reported boxes: a little is allowed (OUTSIDE_SHARE)
    assert (changed & ~zone).sum() <= OUTSIDE_SHARE * changed.size, f"{fmt}: changes outside the text boxes"
    with Image.open(io.BytesIO(drawn.png)) as d, Image.open(io.BytesIO(bare.png)) as e:
        layer = split_text(d.convert("RGB"), e.convert("RGB"), drawn.text_boxes)
        back = composite(e, layer.layer)
    assert np.abs(_image_of(back) - a).max() <= 3


def _image_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=int)


@pytest.mark.docker
@pytest.mark.parametrize("fmt", sorted(PROGRAMS))
def test_the_text_is_hidden_and_nothing_else_in_the_docker_pool(docker_sandbox, fmt: str) -> None:
    _assert_text_only_hidden(docker_sandbox, fmt)


@pytest.mark.parametrize("fmt", ["matplotlib", "pil", "svg"])
def test_the_text_is_hidden_and_nothing_else_in_the_process_sandbox(process_sandbox, fmt: str) -> None:
    _assert_text_only_hidden(process_sandbox, fmt)


@pytest.mark.docker
@pytest.mark.parametrize(
    ("fmt", "code"),
    [
        ("graphviz", 'digraph { a [label="Start"]; a -> b; }'),
        ("vega-lite", '{"mark": "bar", "data": {"values": [{"a": 1}]}, "encoding": {"x": {"field": "a"}}}'),
    ],
)
def test_formats_that_cannot_hide_their_text_say_so(docker_sandbox, fmt: str, code: str) -> None:
    result = docker_sandbox.render(code, fmt, HIDDEN)
    assert result.status == "error" and "cannot be drawn without its text" in result.error
    assert docker_sandbox.render(code, fmt).ok  # and the same worker serves the next job as usual


@pytest.mark.docker
def test_a_program_that_turns_the_hiding_off_is_seen_by_the_host(docker_sandbox) -> None:
    """The job runs in the worker's interpreter and may flip the flag back; the picture then still shows its
    text, and the host's split sees that hiding changed nothing (it trusts the pixels, not the claim)."""
    sneaky = "import coco_worker.hidden_text as h\nh.HIDE[0] = False\n" + MATPLOTLIB
    drawn = docker_sandbox.render(MATPLOTLIB, "matplotlib")
    bare = docker_sandbox.render(sneaky, "matplotlib", HIDDEN)
    assert bare.ok
    with Image.open(io.BytesIO(drawn.png)) as d, Image.open(io.BytesIO(bare.png)) as e:
        from coco_agent.refiners.text_layer import LayerRefused

        with pytest.raises(LayerRefused, match="changed nothing"):
            split_text(d.convert("RGB"), e.convert("RGB"), drawn.text_boxes)
