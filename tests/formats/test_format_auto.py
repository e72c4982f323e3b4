"""`--format auto`: the deterministic classifier on a table of prompts, the code writer's choice when it is not
sure (the fence of its answer), an explicit --format winning, and why in the trace and result.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.fixtures_models import ScriptedChatModel
from support.programs import GOOD_BARS

from coco_agent.cli.options import RUN_OPTIONS
from coco_agent.context import RunContext
from coco_agent.formats.choose import classify, from_answer
from coco_agent.nodes.write_code import chosen_format
from coco_agent.prompts import coder_system
from coco_agent.runner import start_run
from coco_agent.trace import read_trace

TABLE = [
    # charts
    ("A bar chart of quarterly sales 2025: Q1 100, Q2 120, Q3 150, Q4 140", "matplotlib"),
    ("Line plot of the temperature in Oslo over 12 months with a legend", "matplotlib"),
    ("A pie chart showing market share: 40% Apple, 35% Samsung, 25% other", "matplotlib"),
    ("A scatter plot of height against weight for 50 people", "matplotlib"),
    ("Vega-Lite bar chart of fruit sales", "vega-lite"),
    # text-heavy designs
    ("A poster for a summer music festival saying 'Friday 8 PM, City Park'", "html"),
    ("A restaurant menu with starters, mains and desserts and their prices", "html"),
    ("A presentation slide titled 'Q3 Results' with three bullet points", "html"),
    ("A wooden sign reading 'Welcome to the Lake House'", "html"),
    ("An infographic about recycling with 4 steps and icons", "html"),
    ("A birthday greeting card with the text 'Happy 30th, Anna!'", "html"),
    ("A landing page mock-up for a note-taking app with a signup button", "html"),
    ("A web page for a bakery, in HTML", "html"),
    ("A flyer announcing a garage sale this Saturday", "html"),
    # diagrams
    ("A flowchart of the login process: enter password, check, retry or welcome", "graphviz"),
    ("An org chart of a small company: CEO, CTO, CFO and two engineers under the CTO", "graphviz"),
    ("A state machine for a traffic light with transitions between red, green and yellow", "graphviz"),
    ("A decision tree for choosing a pet", "graphviz"),
    ("A dependency graph of five Python packages, drawn with Graphviz", "graphviz"),
    # icons and flat illustrations
    ("A flat icon of a paper plane", "svg"),
    ("A minimalist logo for a coffee shop called Bean", "svg"),
    ("A simple SVG of a red heart", "svg"),
    # scenes
    ("A photorealistic landscape with mountains and a lake at sunset", "svg"),
    ("A cat sitting on a windowsill in a cozy room", "svg"),
    # not sure: the code writer chooses
    ("Something nice", None),
    ("The number seven", None),
    ("An infographic chart of sales by region", None),  # design vs chart, neither leads
]


@pytest.mark.parametrize(("prompt", "expected"), TABLE)
def test_the_classifier_on_a_table_of_prompts(prompt: str, expected: str | None):
    choice = classify(prompt)
    assert choice.format == expected, choice
    assert choice.why and choice.by == "classifier"


def test_quoted_text_is_not_evidence():
    assert classify('A street sign saying "Bar chart of the day"').format == "html"
    assert classify("A shop sign that says “Flowchart Cafe”").format == "html"


def test_the_classifier_is_deterministic_and_says_why():
    prompt = "A poster for a jazz night"
    assert classify(prompt) == classify(prompt)
    assert "poster" in classify(prompt).why
    assert "names the format" in classify("a graphviz digraph of three nodes").why


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("```html\n<html><body>hi</body></html>\n```", "html"),
        ("```dot\ndigraph { a -> b }\n```", "graphviz"),
        ('```json\n{"mark": "bar"}\n```', "vega-lite"),
        ("```svg\n<svg xmlns='http://www.w3.org/2000/svg'/>\n```", "svg"),
        ("```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n```", "matplotlib"),
        ("```python\nfrom PIL import Image\nimg = Image.new('RGB', (64, 64))\n```", "pil"),
        ("```\n<svg xmlns='http://www.w3.org/2000/svg'/>\n```", "svg"),  # untagged: what it evidently is
        ("no fences at all", "matplotlib"),
    ],
)
def test_the_code_writers_choice_is_its_fence(answer: str, expected: str):
    fmt, why = chosen_format(answer)
    assert fmt == expected and why


def test_from_answer_reads_an_unknown_fence_by_its_program():
    assert from_answer("xml", "<svg xmlns='http://www.w3.org/2000/svg'/>")[0] == "svg"
    assert from_answer("rust", "fn main() {}")[0] == "matplotlib"


def test_the_auto_system_prompt_offers_every_format_and_its_rules():
    text = coder_system("auto")
    for fence in ("```python", "```json", "```html", "```dot", "```svg"):
        assert fence in text
    for name in ("matplotlib", "pil", "svg", "html", "graphviz", "vega-lite"):
        assert f"### {name}\n" in text


def test_auto_is_a_choice_of_format_and_unknown_values_are_refused():
    RunContext(format="auto").validate()
    with pytest.raises(ValueError, match="choose one of"):
        RunContext(format="poster").validate()
    option = next(o for o in RUN_OPTIONS if o.flag == "--format")
    assert "auto" in dict(option.kwargs)["choices"]


def _run(tmp_path: Path, prompt: str, replies: list, fmt: str) -> tuple[dict, Path, ScriptedChatModel]:
    coder = ScriptedChatModel(replies=replies)
    ctx = RunContext(llm=coder, vlm="none", sandbox="process", format=fmt, max_rounds=2)
    run_dir = tmp_path / "run"
    return start_run(prompt, ctx, run_dir), run_dir, coder


def test_a_sure_classifier_decides_without_asking_and_says_why(tmp_path):
    result, run_dir, coder = _run(tmp_path, "A bar chart of quarterly sales", [GOOD_BARS], "auto")
    assert result["status"] == "accepted" and result["format"] == "matplotlib"
    assert result["format_choice"]["by"] == "classifier" and "chart" in result["format_choice"]["why"]
    system = coder.received[0][0].content
    assert "choose the one that suits" not in system  # the writer got matplotlib's rules only
    prepare = next(t for t in read_trace(run_dir) if t["node"] == "prepare")
    assert prepare["format"] == "matplotlib" and prepare["format_choice"]["by"] == "classifier"


def test_an_unsure_classifier_lets_the_code_writer_choose_in_the_same_call(tmp_path):
    svg = "```svg\n<svg xmlns='http://www.w3.org/2000/svg' width='200' height='200'>" + (
        "<circle cx='100' cy='100' r='80' fill='teal'/></svg>\n```"
    )
    result, run_dir, coder = _run(tmp_path, "Something nice", [svg], "auto")
    assert len(coder.received) == 1 and "choose the one that suits" in coder.received[0][0].content
    assert result["status"] == "accepted" and result["format"] == "svg"
    assert result["format_choice"] == {
        "format": "svg",
        "by": "code writer",
        "why": "the code writer answered with a ```svg block: svg",
    }
    assert (run_dir / "attempts/01/code.svg").is_file()
    write = next(t for t in read_trace(run_dir) if t["node"] == "write_code")
    assert write["format"] == "svg"


def test_an_explicit_format_always_wins(tmp_path):
    result, _run_dir, coder = _run(tmp_path, "A poster for a jazz night", [GOOD_BARS], "matplotlib")
    assert result["format"] == "matplotlib"
    assert result["format_choice"] == {
        "format": "matplotlib",
        "by": "user",
        "why": "given with --format",
        "scores": {},
    }


def test_the_cli_takes_format_auto_and_refuses_unknown_values(tmp_path):
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", "generate", "x", "--format", "poster"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and "invalid choice: 'poster'" in run.stderr and "auto" in run.stderr
    json.dumps(run.stderr)  # plain text


def test_auto_is_the_default():
    assert RunContext().format == "auto"
    option = next(o for o in RUN_OPTIONS if o.flag == "--format")
    assert "(default auto)" in option.help


HTML_POSTER = """```html
<!doctype html><html><head><meta name="viewport" content="width=320, height=200"></head>
<body style="margin:0;width:320px;height:200px;background:#123;color:#fff;font:bold 28px sans-serif">
<p style="margin:60px 20px">Jazz Night</p></body></html>
```"""


def test_the_default_follows_the_prompt_without_being_told(tmp_path):
    """No --format: a poster is drafted as HTML (the classifier), a chart as matplotlib."""
    coder = ScriptedChatModel(replies=[HTML_POSTER])
    result = start_run(
        "A poster for a jazz night", RunContext(llm=coder, vlm="none", sandbox="process"), tmp_path / "a"
    )
    assert result["format"] == "html" and result["format_choice"]["by"] == "classifier"
    assert "```html" in coder.received[0][0].content  # the writer got HTML's rules
    assert (tmp_path / "a/attempts/01/code.html").is_file()


def test_a_writer_that_answers_another_format_than_the_classifier_suggested_is_followed(tmp_path):
    """The classifier's choice is a suggestion: asked for HTML, the writer answers a matplotlib program (and no
    HTML): the run goes on in matplotlib, and the choice says who chose and why. --format html would refuse."""
    result, run_dir, coder = _run(tmp_path, "A poster for a jazz night", [GOOD_BARS], "auto")
    assert len(coder.received) == 1 and result["status"] == "accepted"
    assert result["format"] == "matplotlib" and (run_dir / "attempts/01/code.py").is_file()
    choice = result["format_choice"]
    assert choice["by"] == "code writer" and choice["format"] == "matplotlib"
    assert (
        choice["why"].startswith("the prompt read as html (a design")
        and "answered with a matplotlib" in choice["why"]
    )
    write = next(t for t in read_trace(run_dir) if t["node"] == "write_code")
    assert write["format_choice"]["by"] == "code writer"
    fixed, _, _ = _run(tmp_path / "fixed", "A poster for a jazz night", [GOOD_BARS, GOOD_BARS], "html")
    assert fixed["format"] == "html" and fixed["status"] != "accepted"
