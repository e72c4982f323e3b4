"""Where the program drew text: the boxes the worker reports (matplotlib, PIL, SVG), checked against the pixels.

The drawings colour everything but their text (lines, spines, ticks, shapes), so "dark grey pixels" are exactly
the text's: every such pixel must lie in a reported box and every box must hold some. The hostile programs
rewrite the worker's own box reporting from inside the job; the host must stay well and trust nothing odd.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from coco_agent.refiners.text_regions import padded_and_merged
from coco_agent.sandbox.base import MAX_TEXT_BOXES, clean_text_boxes

CHART = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
ax.plot([0, 1, 2], [1, 3, 2], color="tab:blue", label="sales")
ax.plot([0, 1, 2], [2, 1, 3], color="tab:orange", label="costs")
ax.set_title("Quarterly Sales", fontsize=14)
ax.set_xlabel("quarter")
ax.set_ylabel("million euros")
ax.tick_params(color="red")
for spine in ax.spines.values():
    spine.set_color("red")
ax.legend(loc="upper left", edgecolor="red")
ax.annotate("peak", xy=(1, 3), xytext=(1.4, 2.6), arrowprops=dict(color="red"))
fig.text(0.98, 0.02, "source: test", ha="right", fontsize=7)
plt.savefig("chart.png"SAVE)
"""

SIGN_PIL = """
from PIL import Image, ImageDraw, ImageFont
img = Image.new("RGB", (240, 120), "white")
draw = ImageDraw.Draw(img)
draw.rectangle((150, 10, 230, 60), fill=(200, 40, 40))
draw.text((20, 30), "Hello PIL", fill="black")
draw.multiline_text((20, 60), "two\\nlines", fill="black", font=ImageFont.truetype("DejaVuSans-Bold.ttf", 20))
img.save("sign.png")
"""

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="220" height="110">
<rect width="220" height="110" fill="white"/>
<circle cx="180" cy="70" r="25" fill="red"/>
<text x="20" y="40" font-size="20" font-family="DejaVu Sans">Hello SVG</text>
<text x="20" y="85" font-size="12" font-family="DejaVu Sans"><tspan>two</tspan> words</text>
</svg>"""


def text_pixels(png: bytes) -> np.ndarray:
    """Dark, grey pixels: the text (everything else in these drawings is white or coloured)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return (rgb.max(axis=2) < 110) & (rgb.max(axis=2) - rgb.min(axis=2) < 40)


def assert_boxes_cover_the_text(result) -> None:
    assert result.ok, result.error
    boxes = result.text_boxes
    assert boxes, f"no text boxes reported ({result.extra.get('captured')})"
    text = text_pixels(result.png)
    covered = np.zeros_like(text)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= result.width and 0 <= y0 < y1 <= result.height
        assert text[y0:y1, x0:x1].any(), f"box {(x0, y0, x1, y1)} holds no text pixel"
        covered[y0:y1, x0:x1] = True
    outside = np.argwhere(text & ~covered)
    assert outside.size == 0, f"{len(outside)} text pixels outside every box, e.g. (row, col) {outside[:5]}"
    assert covered.mean() < 0.5  # boxes around text, not the whole picture


@pytest.fixture(
    params=[
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("docker_oneshot", marks=pytest.mark.docker),
        "bwrap_warm",
        "process",
    ]
)
def any_sandbox(request):
    """Every way of running the worker: the warm Docker pool, per-job Docker, warm bubblewrap, a subprocess."""
    if request.param == "docker":
        return request.getfixturevalue("docker_sandbox")
    if request.param == "docker_oneshot":
        return request.getfixturevalue("docker_oneshot_sandbox")
    if request.param == "process":
        return request.getfixturevalue("process_sandbox")
    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap not installed (optional)")
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    sandbox = WarmPool(BwrapLauncher(), pool_size=1, max_workers=1)
    request.addfinalizer(sandbox.close)
    return sandbox


def test_matplotlib_text_boxes_in_every_sandbox(any_sandbox) -> None:
    result = any_sandbox.render(CHART.replace("SAVE", ""), "matplotlib")
    assert_boxes_cover_the_text(result)
    # title, x/y labels, 2 legend entries, annotation, figure text, and the tick labels
    assert len(result.text_boxes) >= 7 + 6


@pytest.mark.docker
@pytest.mark.parametrize(
    "save",
    [", dpi=150", ", bbox_inches='tight'", ", bbox_inches='tight', dpi=72, pad_inches=0.3"],
)
def test_matplotlib_boxes_follow_dpi_and_tight_crop(docker_sandbox, save: str) -> None:
    result = docker_sandbox.render(CHART.replace("SAVE", save), "matplotlib")
    assert_boxes_cover_the_text(result)
    assert result.extra["captured"] == "savefig:chart.png"


@pytest.mark.docker
def test_matplotlib_boxes_of_the_figure_that_was_captured(docker_sandbox) -> None:
    """Two figures: only the one returned counts; a tick label outside the view is not a box."""
    code = CHART.replace("SAVE", "") + (
        "fig2 = plt.figure(figsize=(3, 2))\nfig2.text(0.1, 0.5, 'OTHER FIGURE', fontsize=20)\n"
        "fig2.savefig('first.png')\nplt.figure(fig.number)\nplt.savefig('chart.png')\n"
    )
    result = docker_sandbox.render(code, "matplotlib")
    assert_boxes_cover_the_text(result)
    assert result.width == 400 and result.height == 300


@pytest.mark.docker
def test_pil_text_boxes(docker_sandbox) -> None:
    result = docker_sandbox.render(SIGN_PIL, "pil")
    assert_boxes_cover_the_text(result)
    assert len(result.text_boxes) == 2
    x0, y0, x1, y1 = result.text_boxes[0]
    assert (x0, y0) == (20, 30) or abs(x0 - 20) + abs(y0 - 30) <= 3  # drawn at (20, 30)


@pytest.mark.docker
@pytest.mark.parametrize(
    "after, known",
    [
        ("img = img.convert('RGBA')", True),  # same pixels in the same places
        ("img2 = Image.new('RGB', (300, 150), 'white'); img2.paste(img, (30, 20)); img = img2", True),
        ("img = img.resize((120, 60))", False),  # moved pixels: unknown, never wrong boxes
        ("img = img.rotate(90, expand=True)", False),
        ("img = img.crop((10, 10, 200, 100))", False),
        ("img.thumbnail((100, 100))", False),
        ("img = Image.open('sign.png')", False),
    ],
)
def test_pil_boxes_survive_only_pixel_preserving_steps(docker_sandbox, after: str, known: bool) -> None:
    code = SIGN_PIL.replace('img.save("sign.png")', f'img.save("sign.png")\n{after}\nimg.save("final.png")')
    result = docker_sandbox.render(code, "pil")
    assert result.ok, result.error
    if known:
        assert_boxes_cover_the_text(result)
    else:
        assert result.text_boxes is None


@pytest.mark.docker
def test_svg_text_boxes(docker_sandbox) -> None:
    result = docker_sandbox.render(SVG, "svg")
    assert_boxes_cover_the_text(result)
    program = f"svg = '''{SVG}'''\n"  # the same picture from a program's `svg` variable
    assert_boxes_cover_the_text(docker_sandbox.render(program, "svg"))


@pytest.mark.docker
def test_picture_without_text_reports_no_boxes(docker_sandbox) -> None:
    code = "import matplotlib.pyplot as plt\nplt.figure()\nplt.axis('off')\nplt.plot([1, 3, 2])\n"
    result = docker_sandbox.render(code, "matplotlib")
    assert result.ok and result.text_boxes == []


FORGE = """
import matplotlib.pyplot as plt
import coco_worker.child
plt.plot([1, 3, 2])
coco_worker.child.finish_boxes = lambda boxes, png: {forged}  # what the worker itself measured, forged
"""


@pytest.mark.docker
@pytest.mark.parametrize(
    "forged, expected",
    [
        ("[[0, 0, 5, 5]] * 5000", None),  # more than the cap: unknown
        ("[[0, 0, 'x', 5]]", None),
        ("[[0.5, 0, 5, 5]]", None),
        ("[[0, 0, 5]]", None),
        ("[[True, 0, 5, 5]]", None),
        ("[[0, 0, float('nan'), 5]]", None),
        ("{'a': 1}", None),
        ('\'\\x00\\x00\\x00\\x10{"type": "result"}\'', None),  # a forged frame inside the header: data
        ("[[-10**30, -5, 10**30, 10**30], [3, 3, 3, 9], [700, 0, 800, 5]]", [(0, 0, 640, 480)]),
        ("[[0, 0, 5, 5]] * 200_000", "any"),  # a header too large to forward: the job fails, the host is fine
    ],
)
def test_forged_boxes_are_validated(docker_sandbox, forged: str, expected) -> None:
    result = docker_sandbox.render(FORGE.format(forged=forged), "matplotlib")
    if expected != "any":
        assert result.ok, result.error
        assert result.text_boxes == expected
    assert result.text_boxes is None or len(result.text_boxes) <= MAX_TEXT_BOXES
    after = docker_sandbox.render(CHART.replace("SAVE", ""), "matplotlib")  # the next job is unharmed
    assert_boxes_cover_the_text(after)


def test_host_validation_of_reported_boxes() -> None:
    assert clean_text_boxes([[1, 2, 30, 40]], 100, 50) == [(1, 2, 30, 40)]
    assert clean_text_boxes([[-5, -5, 500, 500], [10, 10, 10, 20]], 100, 50) == [(0, 0, 100, 50)]
    assert clean_text_boxes([], 100, 50) == []
    for bad in (None, "boxes", {"a": 1}, [[1, 2, 3]], [[1, 2, 3, 4.0]], [[1, 2, 3, True]], [[[1], 2, 3, 4]]):
        assert clean_text_boxes(bad, 100, 50) is None
    assert clean_text_boxes([[0, 0, 1, 1]] * (MAX_TEXT_BOXES + 1), 100, 50) is None
    assert clean_text_boxes([[0, 0, 1, 1]], 0, 0) is None


def test_padding_and_merging() -> None:
    merged = padded_and_merged([(10, 10, 40, 20), (42, 10, 60, 20), (10, 80, 30, 90)], (100, 100))
    assert merged == [(8, 8, 62, 22), (8, 78, 32, 92)]
    assert padded_and_merged([(0, 0, 100, 100)], (50, 50)) == [(0, 0, 50, 50)]
