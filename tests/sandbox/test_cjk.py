"""Chinese text in the Docker sandbox: the image's CJK font (WenQuanYi Micro Hei) draws real glyphs, not tofu,
in matplotlib, PIL and SVG, and the local OCR proxy reads the characters back (LongText-Bench zh counts
characters)."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from support.fixtures_models import ScriptedChatModel
from support.paths import require
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR

from coco_agent.batch.longtext import LongTextScorer
from coco_agent.batch.prompts_file import PromptItem
from coco_agent.context import RunContext
from coco_agent.runner import start_run
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.scoring.score import text_part

pytestmark = pytest.mark.docker

# the strings of LongText-Bench zh's first prompt (a bakery sign)
TEXTS = ["每日新鲜烘焙", "本地烘焙，始于1998", "中央公园 - 2公里"]
PROMPT = (
    "一家咖啡店上方的彩色广告牌印着“每日新鲜烘焙”，下方的标语“本地烘焙，始于1998”，"
    "旁边的街道指示牌写着“中央公园 - 2公里”。"
)
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
LIMITS = SandboxLimits(timeout_s=30)


def _lines(call: str) -> str:
    return "\n".join(f"{call}({0.35 - 0.12 * i:.2f}, {text!r})" for i, text in enumerate(TEXTS))


# No font named: the default font's CJK fallback that the worker sets up.
MATPLOTLIB_DEFAULT = f"""```python
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(8, 4), dpi=100)
ax = fig.add_axes([0, 0, 1, 1])
ax.axis("off")
ax.text(0.05, 0.75, {TEXTS[0]!r}, fontsize=44, weight="bold")
ax.text(0.05, 0.45, {TEXTS[1]!r}, fontsize=30)
ax.text(0.05, 0.15, {TEXTS[2]!r}, fontsize=30)
plt.savefig("output.png")
```"""

PROGRAMS = {
    # a program that picks its own families: the worker keeps the CJK font as every font list's last resort
    "matplotlib serif + monospace": (
        "matplotlib",
        "import matplotlib.pyplot as plt\n"
        'plt.rcParams["font.family"] = "serif"\n'
        "fig = plt.figure(figsize=(8, 3), dpi=100)\n"
        + "\n".join(
            f"fig.text(0.05, {0.75 - 0.3 * i:.2f}, {t!r}, fontsize=30, family={f!r})"
            for i, (t, f) in enumerate(zip(TEXTS, ["serif", "monospace", "sans-serif"], strict=True))
        )
        + '\nplt.savefig("output.png")\n',
    ),
    # as the coder prompt suggests
    "matplotlib fontfamily": (
        "matplotlib",
        "import matplotlib.pyplot as plt\n"
        "fig = plt.figure(figsize=(8, 3), dpi=100)\n"
        + "\n".join(
            f"fig.text(0.05, {0.75 - 0.3 * i:.2f}, {t!r}, fontsize=30, fontfamily='WenQuanYi Micro Hei')"
            for i, t in enumerate(TEXTS)
        )
        + '\nplt.savefig("output.png")\n',
    ),
    # code written for Windows asks for SimHei: the worker serves the CJK font under that name
    "matplotlib SimHei": (
        "matplotlib",
        "import matplotlib.pyplot as plt\n"
        'plt.rcParams["font.sans-serif"] = ["SimHei"]\n'
        'plt.rcParams["font.family"] = "sans-serif"\n'
        "fig = plt.figure(figsize=(8, 3), dpi=100)\n"
        + "\n".join(f"fig.text(0.05, {0.75 - 0.3 * i:.2f}, {t!r}, fontsize=30)" for i, t in enumerate(TEXTS))
        + '\nplt.savefig("output.png")\n',
    ),
    # the documented font path
    "pil": (
        "pil",
        "from PIL import Image, ImageDraw, ImageFont\n"
        f"font = ImageFont.truetype({FONT_PATH!r}, 40)\n"
        'image = Image.new("RGB", (800, 300), "white")\n'
        "draw = ImageDraw.Draw(image)\n"
        + "\n".join(
            f"draw.text((30, {30 + 85 * i}), {t!r}, fill='black', font=font)" for i, t in enumerate(TEXTS)
        )
        + '\nimage.save("output.png")\n',
    ),
    "svg": (
        "svg",
        '<svg xmlns="http://www.w3.org/2000/svg" width="800" height="300" viewBox="0 0 800 300">'
        '<rect width="800" height="300" fill="white"/>'
        + "".join(
            f'<text x="30" y="{70 + 85 * i}" font-size="40" font-family="WenQuanYi Micro Hei, sans-serif">'
            f"{t}</text>"
            for i, t in enumerate(TEXTS)
        )
        + "</svg>",
    ),
}

# Controls, where the strings come out as tofu boxes and the proxy must not read characters into them:
TOFU = {
    # PIL with DejaVu, which has no CJK glyphs
    "pil DejaVu": (
        "pil",
        "from PIL import Image, ImageDraw, ImageFont\n"
        "font = ImageFont.truetype('DejaVuSans.ttf', 40)\n"
        'image = Image.new("RGB", (800, 300), "white")\n'
        "draw = ImageDraw.Draw(image)\n"
        + "\n".join(
            f"draw.text((30, {30 + 85 * i}), {t!r}, fill='black', font=font)" for i, t in enumerate(TEXTS)
        )
        + '\nimage.save("output.png")\n',
    ),
    # SVG naming another family first: cairosvg draws a <text> with that one font, no glyph fallback (a known
    # limit, stated in the SVG prompt and the README)
    "svg serif": ("svg", PROGRAMS["svg"][1].replace("WenQuanYi Micro Hei, sans-serif", "serif")),
}


def read_back(png: bytes) -> dict:
    with Image.open(io.BytesIO(png)) as image:
        return text_part(image.convert("RGB"), TEXTS, "rapidocr", "zh")


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_chinese_text_renders_in_every_format(docker_sandbox, name: str) -> None:
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    fmt, code = PROGRAMS[name]
    result = docker_sandbox.render(code, fmt, LIMITS)
    assert result.ok, result.error
    read = read_back(result.png)
    assert read["mode"] == "zh" and read["total"] == len("每日新鲜烘焙本地烘焙始于1998中央公园2公里")
    assert read["score"] >= 0.95, read


@pytest.mark.parametrize("name", list(TOFU))
def test_a_font_without_cjk_glyphs_scores_near_zero(docker_sandbox, name: str) -> None:
    """The controls: without the CJK font the same strings come out as boxes, and the proxy sees that."""
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    fmt, code = TOFU[name]
    result = docker_sandbox.render(code, fmt, LIMITS)
    assert result.ok, result.error
    read = read_back(result.png)
    assert read["score"] <= 0.3, read  # at most the digits 1998 and 2 have glyphs


def test_a_chinese_prompt_through_the_agent_reads_back(docker_sandbox, tmp_path) -> None:
    """A scripted code writer draws the prompt's Chinese strings; the run renders them in the real Docker sandbox
    and the LongText-Bench scorer (characters, local OCR) reads them back."""
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    coder = ScriptedChatModel(replies=[MATPLOTLIB_DEFAULT])
    ctx = RunContext(llm=coder, vlm="none", sandbox="docker")
    run_dir = tmp_path / "run"
    result = start_run(PROMPT, ctx, run_dir)
    assert result["status"] == "accepted" and result["sandbox"] == "docker", result
    system = coder.received[0][0].content
    assert "WenQuanYi Micro Hei" in system  # the code writer is told which font draws CJK text

    item = PromptItem(id="zh1", prompt=PROMPT, line=1, index=0, texts=TEXTS)
    scored = LongTextScorer("zh", "rapidocr").score(item, run_dir, result)
    draft = scored["text_scores"]["draft"]
    assert draft["mode"] == "zh" and draft["total"] == 23
    assert scored["scores"]["draft_text_score"] >= 0.95, draft
    assert scored["scores"]["attempt_text_scores"] == [scored["scores"]["draft_text_score"]]
    assert "每日新鲜烘焙" in draft["ocr_text"]
