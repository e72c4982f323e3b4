"""A hostile model answer (or program, or error text) cannot pin the host: code extraction, the static and
error-driven repairs, format guessing and the report's highlighting each cost at most a second of CPU.

Bounds, not benchmarks: each hostile input here took 2-300 s of CPU before the fix (quadratic scans) and takes
milliseconds after, so the 1 s budget leaves a margin of 10x and more either way on a noisy 2-core machine. The
budget is CPU time of this process (``time.process_time``, not wall time: other jobs on the machine do not
count), and a CPU timer (``ITIMER_PROF``) stops a runaway call at 5 s so a regression fails fast instead of
hanging the suite.
"""

from __future__ import annotations

import difflib
import json
import random
import re
import signal
import time
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import pygments
import pytest
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from support.fixtures_models import ScriptedChatModel
from support.programs import GOOD_BARS

from coco_agent.codeblocks import MAX_ANSWER_CHARS, extract_code, extract_program
from coco_agent.context import RunContext
from coco_agent.formats import guess as guess_format
from coco_agent.repairs import MAX_LOOKUPS, MAX_REPAIR_CHARS, repair_code, repair_from_error
from coco_agent.repairs.colours import nearest_mpl_colour, nearest_pil_colour
from coco_agent.repairs.source import parses
from coco_agent.report import write_report
from coco_agent.report.page import code_html
from coco_agent.runner import start_run
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.trace import read_trace

BUDGET_S = 1.0  # CPU seconds one hostile input may cost
STOP_S = 5.0  # CPU seconds after which a call is interrupted (the test then fails)
KB = 1024


class OverBudget(Exception):
    pass


def cpu_seconds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(CPU seconds ``fn`` took, its result); the test fails when it ran past STOP_S of CPU."""

    def stop(signum, frame):
        raise OverBudget

    previous = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, STOP_S)
    start = time.process_time()
    result, stopped = None, False
    try:
        result = fn(*args, **kwargs)
    except OverBudget:  # raised wherever the call was (even inside a regex): reported from here
        stopped = True
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    if stopped:
        pytest.fail(f"{getattr(fn, '__name__', fn)} still running after {STOP_S} s of CPU", pytrace=False)
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
    from coco_agent.formats.python_code import looks_like_python

    return text.strip() if looks_like_python(text) else ""


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


# --- repairs -------------------------------------------------------------------------------------------------

PLT = "import matplotlib.pyplot as plt\n"
WARM = PLT + "plt.plot([1], color='gren', colr=1)\nplt.legend(loc='top')\n"


def up_to_cap(head: str, line: str, tail: str = "") -> str:
    """``head`` + as many ``line`` as fit in MAX_REPAIR_CHARS - 100 + ``tail``."""
    return head + line * ((MAX_REPAIR_CHARS - 100 - len(head) - len(tail)) // len(line)) + tail


def numbered(head: str, template: str) -> str:
    lines, size, i = [head], len(head), 0
    while size + len(template) + 5 < MAX_REPAIR_CHARS - 100:
        lines.append(template.format(i=i))
        size, i = size + len(lines[-1]), i + 1
    return "".join(lines)


HOSTILE_PROGRAMS = {
    "a_long_invalid_colour": up_to_cap(PLT + 'plt.plot([1, 2], color="', "x", '")\n'),
    "a_colour_with_a_long_number": up_to_cap(PLT + 'plt.plot([1, 2], color="red', "1", '")\n'),
    "a_long_plot_format": up_to_cap(PLT + "plt.plot([1, 2], 'r", "e", "')\n"),
    "distinct_invalid_colours": numbered(PLT, "plt.plot([1], color='grenx{i:05}')\n"),
    "distinct_invalid_formats": numbered(PLT, "plt.plot([1], 'grenx{i:05}')\n"),
    "distinct_unknown_keywords": numbered(PLT, "plt.plot([1], colrx{i:05}=1)\n"),
    "one_unknown_keyword_everywhere": up_to_cap(PLT, "plt.plot([1], colr='r')\n"),
    "bad_legends_on_one_long_line": up_to_cap(PLT, "plt.legend(loc='upper middlé');"),
    "many_statements": up_to_cap("", "x = 1\n"),
    "indented": up_to_cap("", "  x = 1\n"),
    "tabs_and_spaces": up_to_cap("if 1:\n", " \tx = 1\n"),
}


@pytest.mark.parametrize("code", HOSTILE_PROGRAMS.values(), ids=HOSTILE_PROGRAMS.keys())
def test_hostile_programs_are_repaired_in_under_a_second(code):
    repair_code(WARM)
    assert len(code) <= MAX_REPAIR_CHARS
    result = within_budget(repair_code, code)
    assert parses(result.code)


def test_repairs_of_hostile_programs_stay_right_and_bounded():
    """Exact names still win; a pass looks up at most MAX_LOOKUPS distinct misspellings, the rest stay."""
    fixed = repair_code(HOSTILE_PROGRAMS["a_long_invalid_colour"])
    assert [(r.kind, r.after) for r in fixed.repairs] == [("colour", "gray")]
    assert repair_code(HOSTILE_PROGRAMS["a_colour_with_a_long_number"]).repairs[0].after == "red"
    for name, kind in (("distinct_invalid_colours", "colour"), ("distinct_unknown_keywords", "keyword")):
        repairs = repair_code(HOSTILE_PROGRAMS[name]).repairs
        assert len(repairs) == MAX_LOOKUPS and {r.kind for r in repairs} == {kind}
        assert [r.line for r in repairs] == list(range(2, 2 + MAX_LOOKUPS))
    same = repair_code(HOSTILE_PROGRAMS["one_unknown_keyword_everywhere"])
    assert len(same.repairs) > 1000 and "colr" not in same.code  # one lookup, cached: every call repaired


def test_colour_lookups_skip_absurd_strings():
    repair_code(WARM)
    assert within_budget(nearest_mpl_colour, "x" * 100 * KB) == "gray"
    assert within_budget(nearest_pil_colour, "x" * 100 * KB) == "gray"
    assert within_budget(nearest_mpl_colour, "red" + "1" * 100 * KB) == "red"
    assert within_budget(nearest_pil_colour, "red" + "1" * 100 * KB) == "red"
    # the trailing-number regex retried from every digit when something followed them
    assert within_budget(nearest_mpl_colour, "red" + "1" * 100 * KB + "x") == "gray"
    assert within_budget(nearest_pil_colour, "red" + "1" * 100 * KB + "x") == "gray"


def old_fuzzy(word: str, names: list[str], cutoff: float) -> str | None:
    """The colour search before it skipped hopeless names: a full difflib ratio against every name."""
    best, best_key = None, (cutoff, 0)
    for name in names:
        ratio = difflib.SequenceMatcher(None, word, name).ratio()
        key = (ratio, -abs(len(name) - len(word)))
        if ratio >= cutoff and key > best_key:
            best, best_key = name, key
    return best


def test_colour_search_finds_what_the_full_search_found():
    from matplotlib import colors as mcolors
    from PIL import ImageColor

    from coco_agent.repairs.colours import _fuzzy

    rng = random.Random(7)
    tables = [list(mcolors.CSS4_COLORS), [n[5:] for n in mcolors.XKCD_COLORS], list(ImageColor.colormap)]
    for _ in range(150):
        names = rng.choice(tables)
        word = list(rng.choice(names))
        for _ in range(rng.randint(0, 5)):
            at = rng.randrange(len(word) + 1)
            word[at:at + rng.randint(0, 1)] = rng.choice(["", rng.choice("abcdeglnorstuy -1")])  # fmt: skip
        word = "".join(word)
        for cutoff in (0.7, 0.8):
            assert _fuzzy(word, tuple(names), cutoff) == old_fuzzy(word, names, cutoff), word


def test_programs_over_the_repair_cap_run_as_written():
    code = PLT + "plt.plot([1], color='gren', colr=1)\n" + "# comment\n" * (MAX_REPAIR_CHARS // 10)
    for result in (repair_code(code), repair_from_error(code, KEYWORD_ERROR)):
        assert result.code == code and not result.changed
        assert f"over the {MAX_REPAIR_CHARS:,}" in result.note


KEYWORD_ERROR = "File \"program.py\", line 2\nTypeError: got an unexpected keyword argument 'colr'"


@pytest.mark.parametrize("noise", ['File "<', "Invalid RGBA argument: '", "'", 'File "program.py", line '])
def test_hostile_error_text_is_scanned_in_linear_time(noise):
    """The sandbox keeps 128 KiB of error text; 256 KiB of noise here (the old regex: ~6 s)."""
    code = PLT + "plt.plot([1], colr='r')\n"
    error = noise * (256 * KB // len(noise)) + "\n" + KEYWORD_ERROR
    result = within_budget(repair_from_error, code, error)
    assert result.code == code.replace("colr", "color")


def test_a_program_over_the_repair_cap_runs_as_written_and_the_trace_says_why(tmp_path):
    padding = "# a long comment line that pads the program past the repair cap\n" * (MAX_REPAIR_CHARS // 60)
    answer = GOOD_BARS.replace("plt.savefig", padding + "plt.savefig")
    ctx = RunContext(llm=ScriptedChatModel(replies=[answer]), vlm="none", sandbox="process", max_rounds=1)
    result = start_run("A bar chart of four quarters", ctx, tmp_path / "run")
    assert result["status"] == "accepted", result.get("error")
    why = next(t["why"] for t in read_trace(tmp_path / "run") if t["node"] == "repair")
    assert why.startswith("not repaired: the program has") and why.endswith("running it as written")


# --- format guessing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["\n", " \n", "\t\n", "\r\n"])
def test_format_guessing_is_linear_on_blank_lines(blank):
    """``^\\s*`` with re.M matched from every line start across a run of blank lines (200 KB: minutes)."""
    code = blank * (N // len(blank)) + "from PIL import Image\n"
    assert within_budget(guess_format, code) == "pil"
    assert within_budget(guess_format, code + "import matplotlib\n") == "matplotlib"


# --- the report's code highlighting --------------------------------------------------------------------------

HOSTILE_CODE = {  # pygments' lexers are quadratic on each of these
    "svg_ampersands": ("code.svg", "&" * N),
    "svg_comment_openings": ("code.svg", "<!--" * (N // 4)),
    "svg_processing_instructions": ("code.svg", "<?xml" * (N // 5)),
    "svg_cdata_openings": ("code.svg", "<![CDATA[" * (N // 9)),
    "python_blank_lines_with_a_space": ("code.py", " \n" * (N // 2)),
    "svg_ampersands_under_the_size_cap": ("code.svg", "&" * (60 * KB)),
    "python_blank_lines_under_the_size_cap": ("code.py", " \n" * (30 * KB)),
}


@pytest.mark.parametrize(("name", "code"), HOSTILE_CODE.values(), ids=HOSTILE_CODE.keys())
def test_hostile_code_is_shown_within_a_second(name, code):
    code_html("<svg></svg>", "code.svg")  # warm
    html = within_budget(code_html, code, name)
    assert html == f'<div class="hl"><pre><code>{escape(code)}</code></pre></div>'  # all of it, as plain text


def test_normal_code_is_still_highlighted():
    formatter = HtmlFormatter(cssclass="hl", wrapcode=True)
    assert code_html(GOOD_BARS, "code.py") == pygments.highlight(GOOD_BARS, PythonLexer(), formatter)
    svg = "<svg xmlns='http://www.w3.org/2000/svg'><text>a &amp; b</text></svg>\n"
    assert '<span class="nt">&lt;svg' in code_html(svg, "code.svg")


def test_report_of_a_run_with_a_hostile_svg(tmp_path):
    """`coco report` on a run whose program is 190 KB of "&": minutes of highlighting before, now plain text."""

    def failed_run(name: str, code: str) -> Path:
        run_dir = tmp_path / name
        (run_dir / "attempts" / "01").mkdir(parents=True)
        (run_dir / "attempts" / "01" / "code.svg").write_text(code)
        attempts = [{"round": 1, "status": "error", "error": "bad"}]
        result = {"status": "failed", "prompt": "p", "attempts": attempts}
        (run_dir / "result.json").write_text(json.dumps(result))
        return run_dir

    write_report(failed_run("warm", "<svg></svg>"))  # the page's charts: matplotlib's first figure
    hostile = "<svg>" + "&" * (190 * KB) + "<script>alert(1)</script>"  # under the 200,000 shown
    html = within_budget(write_report, failed_run("hostile", hostile)).read_text()
    assert escape(hostile) in html and "<script>alert" not in html
