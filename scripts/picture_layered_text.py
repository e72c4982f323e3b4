"""The README's picture of layered text (docs/layered_text.png): one real run in the process sandbox, four panels.

The draft, the same program drawn with its text hidden (what the refiner gets), what a refiner made of that,
and the final (the text layer composited back at its own pixels). No diffusion weights exist on these machines,
so the "refiner" here is a stand-in that blurs and tints everything it is given: the point is what happens to
the text, which it never sees. Run: ``python scripts/picture_layered_text.py [OUT.png]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageOps

import coco_agent.refiners as refiners
from coco_agent.context import RunContext
from coco_agent.refiners.base import RefineOutput
from coco_agent.runner import start_run

PROMPT = "A cafe poster on a dark wall with the big words 'OPEN LATE' and 'FRESH BREWS' below"
POSTER = """```python
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(6.4, 3.6), dpi=100, facecolor="#203050")
fig.patches.append(plt.Circle((0.85, 0.75), 0.12, transform=fig.transFigure, color="#e0a030"))
fig.text(0.4, 0.62, "OPEN LATE", ha="center", va="center", fontsize=44, weight="bold", color="white")
fig.text(0.4, 0.3, "FRESH BREWS", ha="center", va="center", fontsize=30, weight="bold", color="#ffd070")
plt.savefig("poster.png")
```"""


class Smear:
    """Stand-in refiner: blurs and tints the whole picture it is given."""

    name = "smear"

    def refine(self, request) -> RefineOutput:
        tinted = ImageOps.colorize(request.draft.convert("L"), black="#301010", white="#f0d0a0")
        return RefineOutput(image=tinted.filter(ImageFilter.GaussianBlur(6)), settings={})


def main() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/layered_text.png")
    refiners._load = lambda key: Smear()  # the stand-in, through the production refiner cache
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(
            llm=GenericFakeChatModel(messages=iter([AIMessage(content=POSTER)])),
            vlm="none",
            sandbox="process",
            refiner="smear",
            clip_model="none",
            text_mode="layered",
        )
        run = Path(tmp) / "run"
        result = start_run(PROMPT, ctx, run)
        record = result["refinement"]
        panels = [
            ("draft (sandbox)", run / record["draft"]),
            ("drawn again, text hidden", run / record["text_mode"]["bare"]),
            ("the refiner's picture", run / "refined_bare.png"),
            ("final: text layer on top", run / "final.png"),
        ]
        images = [(label, Image.open(path).convert("RGB")) for label, path in panels]
        w, h = images[0][1].size
        sheet = Image.new("RGB", (w * 2 + 12, (h + 28) * 2 + 4), "white")
        draw = ImageDraw.Draw(sheet)
        for i, (label, image) in enumerate(images):
            x, y = (i % 2) * (w + 12), (i // 2) * (h + 32)
            draw.text((x + 4, y + 6), label, fill="black", font_size=18)
            sheet.paste(image, (x, y + 28))
        sheet.save(out)
        print(f"{out}: kept={record['kept']} ({record['why']})")


if __name__ == "__main__":
    main()
