"""The HTML report shows the pixels the host decoded, whatever a run's PNG files hold (issue #10 item 5).

A run folder may come from an older version that stored drafts as sent, or have had files replaced: here a
draft and final.png that are APNGs showing Pillow plain red and Chromium a hidden plain green frame, and a run
whose draft holds 100k empty chunks. Opened in headless Chromium, linked and embedded, the report must show red,
never green, embed only fresh PNGs, and name the refused file instead of showing it.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from support import hostile_png
from support.browser import headless, image_check
from support.fixtures_models import ScriptedChatModel
from support.png_checks import KEPT, chunk_types

import coco_agent.sandbox as sandbox_registry
from coco_agent.context import RunContext
from coco_agent.report import write_report
from coco_agent.runner import start_run
from coco_agent.sandbox import RenderResult
from coco_agent.sandbox.png import png_size

PROGRAM = "```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n```"
APNG = hostile_png.solid_apng()


class StoredAsSent:
    """A sandbox that returns its PNG bytes as they are (what runs stored before drafts were re-encoded)."""

    kind = "process"

    def __init__(self, png: bytes) -> None:
        self.png = png

    def render(self, code, fmt, limits=None) -> RenderResult:
        width, height = png_size(self.png)
        return RenderResult(status="ok", png=self.png, width=width, height=height, sandbox="stored-as-sent")

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A batch-like folder of two finished runs: `apng` (draft and final.png are the APNG: the run keeps a fresh
    final, so the APNG is put back the way an older run stored it) and `bomb` (its draft replaced afterwards by
    100k empty chunks)."""
    root = tmp_path_factory.mktemp("report-images")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sandbox_registry._cache, "process", StoredAsSent(APNG))
        for name in ("apng", "bomb"):
            ctx = RunContext(llm=ScriptedChatModel(replies=[PROGRAM]), vlm="none", sandbox="process")
            assert start_run(f"run {name}", ctx, root / name)["status"] == "accepted"
    assert (root / "apng/attempts/01/draft.png").read_bytes() == APNG
    for name in ("apng", "bomb"):
        assert (root / name / "final.png").read_bytes() != APNG  # the host's own final: re-encoded
        (root / name / "final.png").write_bytes(APNG)
    (root / "bomb/attempts/01/draft.png").write_bytes(hostile_png.many_chunks())
    return root


def colours(screenshot: Path) -> tuple[int, int]:
    """Pixels of the screenshot that are plain red, plain green."""
    image = Image.open(screenshot).convert("RGB")
    red = green = 0
    for (r, g, b), n in ((c, n) for n, c in image.getcolors(1 << 24)):
        if r > 220 and g < 40 and b < 40:
            red += n
        elif g > 220 and r < 40 and b < 40:
            green += n
    return red, green


@pytest.mark.parametrize("embed", [False, True], ids=["linked", "embedded"])
def test_report_shows_what_the_host_decoded(runs, tmp_path, embed):
    report = write_report(runs / "apng", tmp_path / "report.html", embed_images=embed)
    screenshot = tmp_path / "shot.png"
    shot = headless(report.as_uri(), tmp_path / "p1", "--window-size=1400,4000", f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr
    red, green = colours(screenshot)
    assert green == 0, f"{green} pixels of the APNG's hidden frame shown"
    assert red > 3 * 100 * 75, red  # the draft, before (draft) and final: each at least 100x75 on screen
    html = report.read_text()
    for data in re.findall(r"<img class='shot'[^>]* src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html):
        assert set(chunk_types(base64.b64decode(data))) <= KEPT  # no acTL, no text, nothing after IEND
    assert (
        "draft.png'" not in html and "final.png'" not in html
    )  # not linked: the files hold more than the image
    check = image_check(headless(report.as_uri(), tmp_path / "p2", "--dump-dom").stdout)
    assert check["broken"] == [] and check["loaded"] == check["total"]


@pytest.mark.parametrize("embed", [False, True], ids=["linked", "embedded"])
def test_report_names_a_refused_image(runs, tmp_path, embed):
    """The draft with 100k chunks is neither linked nor embedded; the page says why; the rest is shown."""
    report = write_report(runs / "bomb", tmp_path / "report.html", embed_images=embed)
    html = report.read_text()
    assert "image not shown" in html and "more than 8192 chunks" in html
    assert "attempts/01/draft.png" not in html
    sources = re.findall(r"<img class='shot'[^>]* src='([^']+)'", html)
    assert sources  # final.png (the APNG, re-encoded) is still shown
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_clean_files_stay_linked(runs, tmp_path):
    """A file that holds the image alone (what the host writes now) is linked, not copied into the page."""
    clean = tmp_path / "run"
    clean.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (255, 0, 0)).save(buffer, format="PNG")
    shutil.copytree(runs / "apng", clean, dirs_exist_ok=True)
    (clean / "attempts/01/draft.png").write_bytes(buffer.getvalue())
    (clean / "final.png").write_bytes(buffer.getvalue())
    html = write_report(clean, tmp_path / "report.html").read_text()
    assert "src='run/attempts/01/draft.png'" in html and "src='run/final.png'" in html
