"""The facts check (coco_agent/facts/): programs run in the real Docker sandbox, whose worker reports what they
drew (coco_worker/facts.py), validated on the host (coco_agent/sandbox/facts.py), then compared with what the
prompt states. Each wrong program is caught with the exact feedback; correct programs raise no alarm; the check
says what it skipped; forged facts are capped and validated; and a run sends the feedback back to the writer
without asking the critic."""

from __future__ import annotations

import json
import math

import pytest
from support.programs import ACCEPT

import coco_agent
from coco_agent.facts.check import check_facts
from coco_agent.sandbox.facts import clean_facts

BARS_PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"
PIE_PROMPT = "A pie chart of household spending: Rent 40%, Food 35%, Fun 25%"
LINES_PROMPT = "A line chart with two series over 2020-2023. Product A: 5, 7, 9, 8; Product B: 3, 4, 6, 7"


def bars(values: str = "100, 120, 150, 140", title: str = "Quarterly Sales 2025") -> str:
    return (
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(6, 4), dpi=100)\n"
        f'ax.bar(["Q1", "Q2", "Q3", "Q4"], [{values}], color="tab:blue")\nax.set_title("{title}")\n'
        'plt.savefig("output.png")\n'
    )


def pie(labels: str = '"Rent", "Food", "Fun"', legend: bool = False) -> str:
    if legend:
        body = f'plt.pie([40, 35, 25], autopct="%1.0f%%")\nplt.legend([{labels}])\n'
    else:
        body = f'plt.pie([40, 35, 25], labels=[{labels}], autopct="%1.0f%%")\n'
    return f'import matplotlib.pyplot as plt\nplt.figure(figsize=(5, 5), dpi=80)\n{body}plt.savefig("output.png")\n'


def lines(both: bool = True) -> str:
    second = 'plt.plot(x, [3, 4, 6, 7], label="Product B")\n' if both else ""
    return (
        "import matplotlib.pyplot as plt\nplt.figure(figsize=(6, 4), dpi=80)\nx = [2020, 2021, 2022, 2023]\n"
        f'plt.plot(x, [5, 7, 9, 8], label="Product A")\n{second}plt.legend()\nplt.savefig("output.png")\n'
    )


HBARS = (
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(6, 4), dpi=80)\n"
    'ax.barh(["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140])\nax.set_title("Quarterly Sales 2025")\n'
    "for i, v in enumerate([100, 120, 150, 140]):\n    ax.text(v, i, str(v))\n"
    'plt.savefig("output.png")\n'
)
SVG_SIGN = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200"><rect width="400" height="200" '
    'fill="#eee"/><text x="20" y="100" font-size="40">{text}</text></svg>'
)
PIL_SIGN = (
    "from PIL import Image, ImageDraw\nimg = Image.new('RGB', (400, 200), 'white')\n"
    "ImageDraw.Draw(img).text((20, 80), {text!r}, fill='black', font_size=40)\nimg.save('output.png')\n"
)
SIGN_PROMPT = "A shop sign that reads 'OPEN DAILY'"


def facts_of(sandbox, code: str, fmt: str = "matplotlib") -> dict:
    result = sandbox.render(code, fmt)
    assert result.ok, result.error
    assert result.facts is not None and result.facts["renderer"] == fmt
    return result.facts


@pytest.mark.docker
@pytest.mark.parametrize(
    ("prompt", "code", "fmt", "feedback"),
    [
        (BARS_PROMPT, bars("100, 120, 105, 140"), "matplotlib", ["bar 'Q3' is 105; the prompt says 150"]),
        (
            PIE_PROMPT,
            pie('"Food", "Rent", "Fun"'),
            "matplotlib",
            ["the wedges 'Rent' and 'Food' are swapped", "wedge 'Rent' is 35%; the prompt says 40%"],
        ),
        (
            LINES_PROMPT,
            lines(both=False),
            "matplotlib",
            [
                "series 'Product B' of the prompt (Product B: 3, 4, 6, 7) is missing: no drawn series has its 4 values"
            ],
        ),
        (
            BARS_PROMPT,
            bars(title="Quartely Sales 2025"),
            "matplotlib",
            ["the title reads 'Quartely Sales 2025'; the prompt says 'Quarterly Sales 2025'"],
        ),
        (SIGN_PROMPT, SVG_SIGN.format(text="OPEN DAILLY"), "svg", ["'OPEN DAILY'"]),
        (SIGN_PROMPT, PIL_SIGN.format(text="OPEN DAYLY"), "pil", ["'OPEN DAILY'"]),
    ],
    ids=[
        "wrong-bar-height",
        "swapped-pie-labels",
        "missing-series",
        "misspelled-title",
        "svg-text",
        "pil-text",
    ],
)
def test_a_wrong_drawing_is_caught_with_precise_feedback(docker_sandbox, prompt, code, fmt, feedback):
    result = check_facts(prompt, facts_of(docker_sandbox, code, fmt))
    assert not result["ok"] and result["available"]
    for expected in feedback:
        assert any(expected in problem for problem in result["problems"]), result["problems"]


@pytest.mark.docker
@pytest.mark.parametrize(
    ("prompt", "code", "fmt"),
    [
        (BARS_PROMPT, bars(), "matplotlib"),
        (BARS_PROMPT, HBARS, "matplotlib"),
        (PIE_PROMPT, pie(), "matplotlib"),
        (PIE_PROMPT, pie(legend=True), "matplotlib"),
        (LINES_PROMPT, lines(), "matplotlib"),
        (SIGN_PROMPT, SVG_SIGN.format(text="OPEN DAILY"), "svg"),
        (SIGN_PROMPT, PIL_SIGN.format(text="OPEN DAILY"), "pil"),
    ],
    ids=["bars", "hbars-with-value-labels", "pie", "pie-with-legend", "two-lines", "svg-text", "pil-text"],
)
def test_a_correct_drawing_raises_no_false_alarm(docker_sandbox, prompt, code, fmt):
    result = check_facts(prompt, facts_of(docker_sandbox, code, fmt))
    assert result["ok"] and not result["problems"], result["problems"]
    assert result["checked"]  # it did check something


def test_the_check_is_conservative_and_says_what_it_skipped():
    facts = {"version": 1, "renderer": "matplotlib", "texts": [], "axes": [], "pies": []}
    vague = check_facts("A cheerful poster about summer with some charts", facts)
    assert vague["ok"] and any("states no numbers" in s for s in vague["skipped"])
    blind = check_facts(BARS_PROMPT, None)
    assert blind["ok"] and not blind["available"] and any("no facts" in s for s in blind["skipped"])
    scaled = check_facts("A bar chart of users in 2021-2023: 5k, 7k, 9k", facts)  # 5 or 5000: a choice
    assert scaled["ok"] and not scaled["problems"]


@pytest.mark.parametrize(
    "forged",
    [
        "not a dict",
        {"version": 1, "texts": [{"text": "x" * 10_000, "box": [0, 0, 10**9, -5]}] * 50_000},
        {
            "version": 1,
            "axes": [{"bars": [{"values": [math.nan, "7", None, 1e308], "categories": [1, None]}]}],
        },
        {"version": 1, "axes": [{"index": "zero", "lines": [{"y": list(range(10**6))}]}] * 500},
        {"version": 1, "pies": [{"fractions": [2.0, -1.0], "labels": [{"nested": True}]}]},
    ],
    ids=["not-a-dict", "huge-texts", "bad-numbers", "huge-series", "bad-pie"],
)
def test_forged_facts_are_capped_and_validated_on_the_host(forged):
    cleaned = clean_facts(forged, 640, 480)  # never raises; what survives is bounded and typed
    if cleaned is None:
        return
    size = len(json.dumps(cleaned))
    assert size < 5_000_000
    check_facts(BARS_PROMPT, cleaned)  # the check copes with whatever survived
    for text in cleaned.get("texts") or []:
        assert isinstance(text["text"], str) and len(text["text"]) <= 2000
        box = text.get("box")
        assert box is None or all(0 <= v <= 640 for v in box[::2]) and all(0 <= v <= 480 for v in box[1::2])


@pytest.mark.docker
def test_a_run_sends_the_facts_problem_to_the_writer_without_asking_the_critic(openai_server, tmp_path):
    wrong = f"```python\n{bars('100, 120, 105, 140')}```"
    right = f"```python\n{bars()}```"
    openai_server.script(wrong, right, ACCEPT)
    run = tmp_path / "run"
    result = coco_agent.generate(
        BARS_PROMPT,
        out=run,
        llm="openai:test-model",
        vlm="openai:test-model",
        base_url=openai_server.base_url,
        sandbox="docker",
        refiner="none",
    )
    assert result["status"] == "accepted" and result["rounds"] == 2
    requests = openai_server.chat_requests
    assert len(requests) == 3  # coder, coder, critic: round 1's draft never went to the critic
    assert "bar 'Q3' is 105; the prompt says 150" in json.dumps(requests[1]["messages"])
    facts = json.loads((run / "attempts/01/facts.json").read_text())
    assert facts["check"]["problems"] == ["bar 'Q3' is 105; the prompt says 150"]
    assert json.loads((run / "attempts/02/facts.json").read_text())["check"]["ok"]


def test_a_label_never_runs_back_across_a_closing_quote():
    """In "titled 'Prairie Output' with Plums 84" the quote ends the title; the first label is Plums (an
    apostrophe counts only inside a word, as in Women's)."""
    from coco_agent.facts.claims import read_claims

    claims = read_claims("A bar chart titled 'Prairie Output' with Plums 84, Pears 30 and Figs 12")
    assert [(s.labels, s.values) for s in claims.series] == [(["Plums", "Pears", "Figs"], [84.0, 30.0, 12.0])]
    claims = read_claims("Sales by group: Women's 40, Men's 35 and Kids 25")
    assert claims.series[0].labels == ["Women's", "Men's", "Kids"]
