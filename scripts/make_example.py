"""Make docs/example.png: one real run of the agent (scripted model, real Docker sandbox), shown as a picture.

    .venv/bin/python scripts/make_example.py

The code writer and critic are the test suite's scripted chat model (no model weights are available offline);
everything else is the product: graph, sandbox, checks, routing, run directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.fixtures_models import ScriptedChatModel  # noqa: E402

from coco_agent.context import RunContext  # noqa: E402
from coco_agent.runner import start_run  # noqa: E402

PROMPT = (
    "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140, "
    "with each value written above its bar"
)
ROUND_1 = """```python
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
ax.bar(["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140], color="#4C72B0")
ax.set_title("Quartely Sales 2025", fontsize=16)
plt.savefig("output.png")
```"""
ROUND_2 = """```python
import matplotlib.pyplot as plt
quarters, sales = ["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140]
fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
bars = ax.bar(quarters, sales, color="#4C72B0")
ax.bar_label(bars, labels=[str(v) for v in sales], padding=3, fontsize=12)
ax.set_title("Quarterly Sales 2025", fontsize=16, weight="bold")
ax.set_ylabel("Sales")
ax.set_ylim(0, 170)
ax.spines[["top", "right"]].set_visible(False)
plt.savefig("output.png")
```"""
REJECT = json.dumps(
    {
        "match": False,
        "score": 4,
        "problems": [
            "title reads 'Quartely Sales 2025' - spell it 'Quarterly Sales 2025'",
            "values are not shown above the bars",
        ],
        "summary": "typo in the title and missing value labels",
    }
)
ACCEPT = json.dumps({"match": True, "score": 9, "problems": [], "summary": "title, bars and values match"})


def main(out: Path = ROOT / "docs" / "example.png") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(
            llm=ScriptedChatModel(replies=[ROUND_1, ROUND_2]), vlm=ScriptedChatModel(replies=[REJECT, ACCEPT])
        )
        result = start_run(PROMPT, ctx, Path(tmp) / "run")
        run_dir = Path(result["paths"]["run_dir"])
        draw(result, run_dir, out)
    print(f"wrote {out} ({result['status']} in {result['rounds']} rounds, sandbox {result['sandbox']})")


def draw(result: dict, run_dir: Path, out: Path) -> None:
    fig = plt.figure(figsize=(16, 9), dpi=100)
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.25], hspace=0.25, wspace=0.08)
    text_ax = fig.add_subplot(grid[0, :])
    text_ax.axis("off")
    text_ax.text(0, 1, "Prompt", fontsize=13, weight="bold", va="top")
    text_ax.text(0, 0.86, textwrap.fill(result["prompt"], 150), fontsize=11, va="top")
    code = (run_dir / "attempts/02/code.py").read_text().splitlines()
    text_ax.text(0, 0.62, "Code (round 2, after the critique)", fontsize=13, weight="bold", va="top")
    text_ax.text(0, 0.5, "\n".join(code[:9]), fontsize=9, family="monospace", va="top")
    critique = json.loads((run_dir / "attempts/01/critique.json").read_text())
    text_ax.text(0.55, 0.62, "Critique of round 1", fontsize=13, weight="bold", va="top")
    text_ax.text(
        0.55, 0.5, "\n".join("- " + p for p in critique["problems"]), fontsize=10, va="top", color="#a33"
    )
    panels = [
        ("attempts/01/draft.png", "Draft, round 1: rejected"),
        ("attempts/02/draft.png", "Draft, round 2: accepted"),
        ("final.png", f"final.png (refiner: {result['refinement']['refiner']})"),
    ]
    for i, (name, title) in enumerate(panels):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(Image.open(run_dir / name))
        ax.set_title(title, fontsize=12)
        ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Draw docs/example.png from a scripted two-round run.")
    parser.add_argument(
        "-o", "--out", type=Path, default=ROOT / "docs" / "example.png", help="picture to write"
    )
    main(parser.parse_args().out)
