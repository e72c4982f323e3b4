"""final.svg, the editable deliverable: the final raster as background, the program's text as live text, opened in
a real headless Chromium: the text is selectable, equals the draft's strings and sits where the draft drew it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cdp import Browser
from support.fixtures_models import ScriptedChatModel

from coco_agent.context import RunContext
from coco_agent.runner import start_run

CHART = """```python
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
ax.bar(["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140], color="tab:blue")
ax.set_title("Quarterly Sales 2025")
ax.set_ylabel("Revenue (k$)")
ax.text(0.2, 130, "best\\nquarter", color="tab:red")
plt.savefig("output.png")
```"""
CHART_STRINGS = {"Q1", "Q2", "Q3", "Q4", "Quarterly Sales 2025", "Revenue (k$)", "best\nquarter"}

POSTER = """```python
from PIL import Image, ImageDraw, ImageFont
img = Image.new("RGB", (480, 240), "white")
draw = ImageDraw.Draw(img)
draw.rectangle((0, 150, 480, 240), fill=(20, 60, 120))
font = ImageFont.truetype("DejaVuSans.ttf", 36)
draw.text((24, 40), "Grand Opening", fill="navy", font=font)
draw.text((24, 170), "Saturday 10 am", fill="white", font=ImageFont.truetype("DejaVuSans.ttf", 28))
img.save("poster.png")
```"""

SVG_PROGRAM = """```svg
<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200" viewBox="0 0 800 400">
  <rect width="800" height="400" fill="#f4f1ea"/>
  <rect x="60" y="150" width="120" height="200" fill="teal"/>
  <text x="40" y="80" font-size="48" font-family="DejaVu Sans">Market share</text>
  <g transform="translate(400 200)" fill="crimson" font-size="36">
    <text x="0" y="0" onclick="alert(1)" style="font-weight:bold">Big <tspan fill="navy">Co</tspan></text>
    <text x="0" y="60" style="fill:url(javascript:alert(1))">Small Co</text>
  </g>
  <script>alert('no')</script>
</svg>
```"""


def run_one(tmp_path: Path, answer: str, fmt: str) -> tuple[Path, dict]:
    ctx = RunContext(llm=ScriptedChatModel([answer]), vlm="none", sandbox="process", format=fmt)
    run_dir = tmp_path / fmt
    result = start_run("a picture with text", ctx, run_dir)
    assert result["status"] == "accepted", result.get("error")
    return run_dir, result


LIVE_TEXT = """[...document.querySelectorAll('#text text')].map(t => {
  const r = t.getBoundingClientRect();
  const lines = [...t.querySelectorAll('tspan')].map(s => s.textContent);
  return {text: t.getAttribute('transform') === null && lines.length > 1 ? lines.join('\\n') : t.textContent,
          box: [r.left, r.top, r.right, r.bottom]};
})"""
SELECTED = """(() => { const s = getSelection(); s.removeAllRanges();
  s.selectAllChildren(document.getElementById('text')); return s.toString(); })()"""


def overlap(a: list[float], b: list[int]) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def test_matplotlib_final_svg_in_chromium(tmp_path):
    run_dir, result = run_one(tmp_path, CHART, "matplotlib")
    assert (
        result["paths"]["final_svg"] == "final.svg" and result["deliverables"]["svg"]["source"] == "sandbox"
    )
    reported = json.loads((run_dir / "attempts/01/text_boxes.json").read_text())["texts"]
    assert {t["text"] for t in reported} >= CHART_STRINGS
    with Browser(800, 600) as browser:
        browser.open((run_dir / "final.svg").as_uri())
        live = browser.evaluate(LIVE_TEXT)
        selected = browser.evaluate(SELECTED)
        browser.screenshot(tmp_path / "final-svg.png")
    assert [item["text"] for item in live] == [t["text"] for t in reported]  # every string, in draw order
    for text in CHART_STRINGS - {"best\nquarter"}:
        assert text in selected
    for item, want in zip(live, reported, strict=True):
        assert overlap(item["box"], want["box"]) > 0.6, (item, want)  # where the draft drew it
    ylabel = next(t for t in reported if t["text"] == "Revenue (k$)")
    assert ylabel["rotation"] == 90
    got = next(item for item in live if item["text"] == "Revenue (k$)")["box"]
    assert got[3] - got[1] > 2 * (
        got[2] - got[0]
    )  # set upright it would be wide: it is turned like the draft


def test_background_is_cleared_under_live_text_and_edits_show(tmp_path):
    run_dir, _ = run_one(tmp_path, POSTER, "pil")
    reported = json.loads((run_dir / "attempts/01/text_boxes.json").read_text())["texts"]
    assert [(t["text"], t["color"]) for t in reported] == [
        ("Grand Opening", "#000080"),
        ("Saturday 10 am", "#ffffff"),
    ]
    with Browser(480, 240) as browser:
        browser.open((run_dir / "final.svg").as_uri())
        assert browser.evaluate(SELECTED).split() == ["Grand", "Opening", "Saturday", "10", "am"]
        browser.evaluate("document.getElementById('text').style.display = 'none'")
        bare = browser.screenshot(tmp_path / "bare.png")
        browser.evaluate(
            "document.getElementById('text').style.display = '';"
            "document.querySelector('#text text tspan').textContent = 'Now Open'"
        )
        edited = browser.screenshot(tmp_path / "edited.png")
        assert browser.evaluate(SELECTED).split()[:2] == ["Now", "Open"]
    from PIL import Image

    with Image.open(bare) as image:
        x0, y0, x1, y1 = reported[0]["box"]
        colours = set(image.convert("RGB").crop((x0, y0, x1, y1)).getdata())
        assert colours == {(255, 255, 255)}, "the old glyphs must not show under the live text"
        x0, y0, x1, y1 = reported[1]["box"]
        assert set(image.convert("RGB").crop((x0, y0, x1, y1)).getdata()) == {(20, 60, 120)}
    with Image.open(edited) as image:
        assert (
            len(set(image.convert("RGB").crop(reported[0]["box"]).getdata())) > 2
        )  # the new words are drawn


def test_svg_draft_text_is_copied_where_the_program_put_it(tmp_path):
    run_dir, result = run_one(tmp_path, SVG_PROGRAM, "svg")
    assert result["deliverables"]["svg"]["source"] == "program"
    final = (run_dir / "final.svg").read_text()
    for hostile in ("onclick", "<script", "javascript", "alert"):
        assert hostile not in final
    program = (run_dir / "attempts/01/code.svg").read_text()
    (tmp_path / "program.svg").write_text(program.replace("<script>alert('no')</script>", ""))
    query = "[...document.querySelectorAll('text')].map(t => { const r = t.getBoundingClientRect(); return {text: t.textContent, box: [r.left, r.top, r.right, r.bottom]}; })"
    with Browser(400, 200) as browser:
        browser.open((tmp_path / "program.svg").as_uri())
        drawn = browser.evaluate(query)
        browser.open((run_dir / "final.svg").as_uri())
        live = browser.evaluate(query.replace("'text'", "'#text text'"))
        assert browser.evaluate(SELECTED).split() == ["Market", "share", "Big", "Co", "Small", "Co"]
    assert [t["text"] for t in live] == [t["text"] for t in drawn] == ["Market share", "Big Co", "Small Co"]
    assert browser.dialogs == []  # nothing of the program's script or handlers ran in final.svg
    for mine, theirs in zip(live, drawn, strict=True):
        assert mine["box"] == pytest.approx(theirs["box"], abs=1.0)  # the same place, to the pixel


PAGE = """```html
<!doctype html><html><head><meta name="viewport" content="width=400, height=240"></head>
<body style="margin:0;width:400px;height:240px;background:#fdf6e3;font-family:sans-serif">
<div style="position:absolute;left:24px;top:24px;font-size:40px;color:#b00020">Summer Fair</div>
<div style="position:absolute;left:24px;top:110px;font-size:22px;color:#003366">Friday 8 PM, City Park</div>
<script>document.title = "poster"</script>
</body></html>
```"""
PAGE_STRINGS = ["Summer Fair", "Friday 8 PM, City Park"]
LIVE_BLOCKS = """[...document.querySelectorAll('#text > div')].map(d => {
  const r = d.getBoundingClientRect();
  return {text: d.textContent, box: [r.left, r.top, r.right, r.bottom]};
})"""
SELECTED_PAGE = """(() => { const s = getSelection(); s.removeAllRanges(); const r = document.createRange();
  r.selectNodeContents(document.getElementById('text')); s.addRange(r); return s.toString(); })()"""


def test_html_final_html_in_chromium(tmp_path, docker_sandbox):
    """An HTML draft gets final.html too: final.png behind the page's strings as live, editable HTML text, where
    the draft's DOM put them; the page runs no script (its CSP allows none)."""
    ctx = RunContext(llm=ScriptedChatModel([PAGE]), vlm="none", sandbox="docker", format="html")
    run_dir = tmp_path / "html"
    result = start_run("a poster for the summer fair", ctx, run_dir)
    assert result["status"] == "accepted", result.get("error")
    assert result["paths"]["final_html"] == "final.html" and result["paths"]["final_svg"] == "final.svg"
    assert result["deliverables"]["html"]["strings"] == 2
    reported = json.loads((run_dir / "attempts/01/text_boxes.json").read_text())["texts"]
    assert [t["text"] for t in reported] == PAGE_STRINGS
    page = (run_dir / "final.html").read_text()
    assert "<script" not in page and "Content-Security-Policy" in page
    with Browser(400, 240) as browser:
        browser.open((run_dir / "final.html").as_uri())
        live = browser.evaluate(LIVE_BLOCKS)
        selected = browser.evaluate(SELECTED_PAGE)
        browser.evaluate("document.querySelector('#text > div').textContent = 'Winter Fair'")
        assert browser.evaluate(LIVE_BLOCKS)[0]["text"] == "Winter Fair"  # a designer changes a word
    assert [item["text"] for item in live] == PAGE_STRINGS
    assert all(string in selected for string in PAGE_STRINGS), selected  # selectable, as written
    for item, want in zip(live, reported, strict=True):
        assert overlap(item["box"], want["box"]) > 0.6, (item, want)  # where the draft drew it


def test_a_run_in_another_format_has_no_final_html(tmp_path):
    run_dir, result = run_one(tmp_path, POSTER, "pil")
    assert "final_html" not in result["paths"] and not (run_dir / "final.html").exists()
