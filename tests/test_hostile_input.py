"""A hostile model answer (or program, or error text) cannot pin the host: code extraction, the static and
error-driven repairs, format guessing and the report's highlighting each cost at most a second of CPU.

Bounds, not benchmarks: each hostile input here took 2-300 s of CPU before the fix (quadratic scans) and takes
milliseconds after, so the 1 s budget leaves a margin of 10x and more either way on a noisy 2-core machine. The
budget is CPU time of this process (``time.process_time``, not wall time: other jobs on the machine do not
count), and a CPU timer (``ITIMER_PROF``) stops a runaway call at 5 s so a regression fails fast instead of
hanging the suite.
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from fixtures_models import ScriptedChatModel

from coco_agent.codeblocks import MAX_ANSWER_CHARS, extract_code, extract_program
from coco_agent.context import RunContext
from coco_agent.runner import start_run
from coco_agent.sandbox.base import SandboxLimits

BUDGET_S = 1.0  # CPU seconds one hostile input may cost
STOP_S = 5.0  # CPU seconds after which a call is interrupted (the test then fails)
KB = 1024


class OverBudget(Exception):
    pass


def cpu_seconds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(CPU seconds ``fn`` took, its result); OverBudget when it ran past STOP_S of CPU."""

    def stop(signum, frame):
        raise OverBudget(f"still running after {STOP_S} s of CPU")

    previous = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, STOP_S)
    start = time.process_time()
    try:
        result = fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    return time.process_time() - start, result


def within_budget(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    seconds, result = cpu_seconds(fn, *args, **kwargs)
    assert seconds < BUDGET_S, f"{seconds:.2f} s of CPU"
    return result


# --- code extraction -----------------------------------------------------------------------------------------

N = 200 * KB
HOSTILE_ANSWERS = {
    "fences": "```" * (N // 3),
    "spaced_fences": "``` " * (N // 4),
    "backticks": "`" * N,
    "fences_with_tags": "```python x" * (N // 11),
    "unclosed_fence_of_backticks": "```python\n" + "`" * N,
    "many_empty_fences": "```\n" * (N // 4),
    "svg_fence_then_opens": "```svg\n" + "<svg" * (N // 4),
    "svg_opens": "<svg" * (N // 4),
    "svg_tags_never_closed": "<svg>" * (N // 5),
    "xml_declarations": "<?xml" * (N // 5),
    "declarations_and_opens": "<?xml ?><svg" * (N // 12),
    "declaration_over_opens": "<?xml " + "<svg " * (N // 5),
    "closing_without_opening": "</svg>" * (N // 6),
    "unfenced_python": "x = 1\n" * (N // 6),
    "whitespace_lines": " \n" * (N // 2),
}


@pytest.mark.parametrize("fmt", ["matplotlib", "svg"])
@pytest.mark.parametrize("answer", HOSTILE_ANSWERS.values(), ids=HOSTILE_ANSWERS.keys())
def test_hostile_answers_cost_under_a_second_to_extract(answer, fmt):
    extract_code("```python\nx = 1\n```", fmt)  # warm
    found = within_budget(extract_program, answer, fmt)
    assert isinstance(found.code, str) and (found.code or found.why)


def test_answer_over_the_cap_gives_no_program_and_says_why():
    assert SandboxLimits().max_source_bytes == MAX_ANSWER_CHARS  # no longer answer holds a program that runs
    program = "```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n```\n"
    assert extract_code(program + "x" * (MAX_ANSWER_CHARS - len(program)), "matplotlib")  # at the cap: taken
    found = within_budget(extract_program, program + "`" * MAX_ANSWER_CHARS, "matplotlib")
    assert found.code == "" and "1,048,576-character limit" in found.why


def test_a_long_unfenced_program_is_judged_by_its_lines_not_compiled():
    """compile() costs ~1 s per MiB: an unfenced answer past 64 KiB is taken on its lines' looks alone."""
    code = "import matplotlib.pyplot as plt\n" + "x = 1\n" * (MAX_ANSWER_CHARS // 7)
    assert within_budget(extract_code, code, "matplotlib") == code.strip()
    prose = "I would draw a chart.\n" * (MAX_ANSWER_CHARS // 23)
    assert within_budget(extract_code, prose, "matplotlib") == ""


# The regexes extract_code used before the linear scanners: the reference they must agree with.
OLD_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
OLD_SVG = re.compile(r"(<\?xml[^>]*>\s*)?<svg\b.*?</svg>", re.DOTALL | re.IGNORECASE)


def old_extract_code(answer: str, fmt: str) -> str:
    text = answer.replace("\r\n", "\n")
    blocks = [(lang.lower(), body.strip("\n")) for lang, body in OLD_FENCE.findall(text)]
    blocks = [(lang, body) for lang, body in blocks if body.strip()]
    if blocks:
        wanted = ("svg", "xml") if fmt == "svg" else ("python", "py", "python3", "")
        preferred = [body for lang, body in blocks if lang in wanted]
        return max(preferred or [body for _, body in blocks], key=len)
    if fmt == "svg":
        match = OLD_SVG.search(text)
        return match.group(0).strip() if match else ""
    from coco_agent.codeblocks import _looks_like_python

    return text.strip() if _looks_like_python(text) else ""


NORMAL_ANSWERS = [
    "Here you go:\n```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n```\nEnjoy.",
    "```py title=chart.py\nx = 1\n```\n```python\nimport os\nx = 2\ny = 3\n```",
    "```svg\n<svg xmlns='http://www.w3.org/2000/svg'></svg>\n```",
    "```xml\n<?xml version='1.0'?>\n<svg></svg>\n```\n```python\nprint(1)\n```",
    "Sure!\n<?xml version='1.0' encoding='UTF-8'?>\n  <svg width='10'><rect/></svg> done",
    "<SVG viewBox='0 0 1 1'>\n<text>a</text>\n</SVG>",
    "```\nplt.plot(1)\n```",
    "```python\nunclosed = True\n",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\nplt.savefig('o.png')\n",
    "I would draw a chart with four bars.",
    "```json\n{}\n```",
    "``` \n\n```",
    "text ```inline``` text\n```python\na = 1\n```",
    "<?xml version='1.0'?><!-- <svg --><svg><g/></svg>",
    "<?xml a <svg b>\n<svg>x</svg>",
    "<svgfoo></svg><svg></svg>",
]
PIECES = [
    "```", "`", "\n", "\r\n", " ", "\t", "python", "py", "svg", "xml", "Python3", "-x", "x = 1", "import os",
    "<svg", "<SVG", "<svg>", "<svgx", "</svg>", "</SVG>", "<?xml", "<?XML", ">", "?>", "plt.plot(1)", "é", "\u00a0",
]  # fmt: skip


def random_answers(count: int, seed: int = 10) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24))) for _ in range(count)]


@pytest.mark.parametrize("fmt", ["matplotlib", "pil", "svg"])
def test_extraction_is_unchanged_on_normal_and_random_answers(fmt):
    """The linear scanners find exactly what the old regexes found, on real answers and 4,000 random ones."""
    for answer in NORMAL_ANSWERS + random_answers(4000):
        assert extract_code(answer, fmt) == old_extract_code(answer, fmt), repr(answer)


@pytest.mark.parametrize("answer", ["`" * (MAX_ANSWER_CHARS + 1), "```python x" * (N // 11)])
def test_a_hostile_answer_ends_the_run_cleanly_with_the_reason(tmp_path, answer):
    ctx = RunContext(llm=ScriptedChatModel(replies=[answer]), vlm="none", sandbox="process", max_rounds=1)
    result = start_run("A bar chart of four quarters", ctx, tmp_path / "run")
    assert result["status"] == "failed" and result["prompt"] == "A bar chart of four quarters"
    attempt = result["attempts"][0]
    assert attempt["status"] == "no_code"
    assert ("character limit" if len(answer) > MAX_ANSWER_CHARS else "no program") in attempt["error"]
    assert not (tmp_path / "run" / "crash.txt").exists()
    assert (tmp_path / "run" / "attempts" / "01" / "answer.md").stat().st_size <= MAX_ANSWER_CHARS + 100
