"""CoCo-style repairs: each repair on its own, programs that must come out unchanged, and the repair node in
the graph (static repairs, the error-driven repair-and-rerun, --no-repairs) through the real Docker sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.fixtures_models import ScriptedChatModel
from support.paths import CHARTMIMIC, require
from support.programs import ACCEPT

from coco_agent.codeblocks import extract_code
from coco_agent.context import RunContext
from coco_agent.repairs import repair_code, repair_from_error
from coco_agent.repairs.calls import nearest_legend_loc
from coco_agent.repairs.colours import nearest_mpl_colour, nearest_pil_colour
from coco_agent.runner import start_run
from coco_agent.trace import read_trace

HEAD = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"


def kinds(code: str, fmt: str = "matplotlib") -> list[tuple[str, str, str]]:
    return [(r.kind, r.before, r.after) for r in repair_code(code, fmt).repairs]


# --- indentation ---------------------------------------------------------------------------------------------


def test_uniformly_indented_program_is_dedented():
    code = "    import matplotlib.pyplot as plt\n    for i in range(2):\n        plt.plot([i])\n"
    result = repair_code(code)
    assert result.code == "import matplotlib.pyplot as plt\nfor i in range(2):\n    plt.plot([i])\n"
    assert [r.kind for r in result.repairs] == ["indentation"] and "uniformly" in result.repairs[0].why


def test_tabs_mixed_with_spaces_become_consistent():
    code = "import matplotlib.pyplot as plt\nfor i in range(2):\n\tx = i\n        plt.plot([x])\n"
    result = repair_code(code)
    assert "\t" not in result.code and compile(result.code, "p", "exec")
    assert result.repairs[0].kind == "indentation" and result.repairs[0].line == 3


@pytest.mark.parametrize(
    "code",
    [
        "import math\nif True:\n    x = 1\n",  # parses: never touched
        "def f(:\n    pass\n",  # a syntax error no indentation fix cures: left for the code writer
    ],
)
def test_indentation_only_when_it_makes_the_program_parse(code):
    assert repair_code(code).code == code and not repair_code(code).repairs


# --- colours -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("lightgreen2", "lightgreen"),
        ("Light Green", "lightgreen"),
        ("dark_blue", "darkblue"),
        ("dark grey blue", "xkcd:dark grey blue"),
        ("golden", "xkcd:golden"),
        ("lightyelow", "lightyellow"),
        ("skyblue3", "skyblue"),
        ("grey50", "0.5"),
        ("#12345678", "#123456"),
        ("zzqqxx", "gray"),  # nothing close: the safe fallback
    ],
)
def test_nearest_matplotlib_colour(name, expected):
    assert nearest_mpl_colour(name) == expected


def test_nearest_pil_colour():
    assert nearest_pil_colour("lightgreen2") == "lightgreen"
    assert nearest_pil_colour("Dark Blue") == "darkblue"
    assert nearest_pil_colour("qqqqzz") == "gray"


def test_colour_arguments_lists_variables_and_dicts_are_repaired_in_place():
    code = (
        HEAD + "colors = ['skyblue', 'lightgreen2']  # two bars\n"
        'ax.bar([1, 2], [3, 4], color=colors, edgecolor="dark grey blue")\n'
        "ax.text(0, 0, 'hi', bbox=dict(facecolor='lightyelow', alpha=0.5))\n"
        "ax.plot([1, 2], [3, 4], 'lightgreen2', mfc='redd')\n"
    )
    result = repair_code(code)
    assert result.code == (
        HEAD + "colors = ['skyblue', 'lightgreen']  # two bars\n"
        'ax.bar([1, 2], [3, 4], color=colors, edgecolor="xkcd:dark grey blue")\n'
        "ax.text(0, 0, 'hi', bbox=dict(facecolor='lightyellow', alpha=0.5))\n"
        "ax.plot([1, 2], [3, 4], 'lightgreen', mfc='red')\n"
    )
    assert [(r.kind, r.line) for r in result.repairs] == [("colour", 3), ("colour", 4), ("colour", 5)] + [
        ("colour", 6),
        ("colour", 6),
    ]
    assert all(r.why and r.before != r.after for r in result.repairs)


@pytest.mark.parametrize(
    "line",
    [
        "ax.scatter([1], [2], edgecolors='face', c='C3')",
        "ax.bar([1], [2], color='none', edgecolor='tab:blue', hatch='//')",
        "ax.legend(labelcolor='linecolor')",
        "ax.plot([1], [2], 'r--', color='0.5')",
        "ax.scatter('x', 'y', c='z', data={'x': [1], 'y': [2], 'z': [3]})",  # c names a column
        "df.plot.scatter(x='a', y='b', c='weight')",
        "ax.imshow([[1]], cmap='viridis')",
        "colormap = 'viridis'\ncolor_labels = ['Group A', 'Group B']",
        "ax.plot([1], [2], color=(0.1, 0.2, 0.3), c=f'C{1}')",
    ],
)
def test_valid_colours_are_left_alone(line):
    assert kinds(HEAD + line + "\n") == []


def test_pil_colours_are_checked_with_pils_names():
    code = (
        "from PIL import Image, ImageDraw\n"
        "img = Image.new('RGB', (64, 64), 'whte')\n"
        "d = ImageDraw.Draw(img)\n"
        "d.rectangle([0, 0, 9, 9], fill='lightgreen2', outline='rgb(10, 20, 30)')\n"
        "d.text((1, 1), 'hi', fill='hsl(0, 100%, 50%)')\n"
    )
    assert kinds(code, "pil") == [("colour", "whte", "white"), ("colour", "lightgreen2", "lightgreen")]


def test_svg_is_never_touched():
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><rect fill="lightgreen2"/></svg>'
    assert repair_code(svg, "svg").code == svg


# --- legend locations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loc, expected",
    [
        ("upper middle", "upper center"),
        ("top right", "upper right"),
        ("bottom-left", "lower left"),
        ("left", "center left"),
        ("top", "upper center"),
        ("uper rigth", "upper right"),
        ("somewhere nice", "best"),
    ],
)
def test_nearest_legend_location(loc, expected):
    assert nearest_legend_loc(loc) == expected


def test_legend_locations_are_repaired():
    code = HEAD + "ax.legend(loc='upper middle')\nplt.legend(loc=12)\nfig.legend(loc=2.5)\n"
    assert kinds(code) == [
        ("legend_loc", "upper middle", "upper center"),
        ("legend_loc", "12", "best"),
        ("legend_loc", "2.5", "best"),
    ]
    assert "ax.legend(loc='upper center')\nplt.legend(loc='best')" in repair_code(code).code


@pytest.mark.parametrize(
    "call",
    [
        "ax.legend(loc='Upper Right')",
        "ax.legend(loc=(0.5, 0.5))",
        "ax.legend(loc=3)",
        "fig.legend(loc='outside upper right')",
        "ax.legend(loc=where)",
    ],
)
def test_valid_legend_locations_are_left_alone(call):
    assert kinds(HEAD + "where = 'best'\n" + call + "\n") == []


# --- keyword arguments ---------------------------------------------------------------------------------------


def test_misspelt_and_unknown_keywords_are_renamed_or_dropped():
    code = (
        HEAD + "ax.plot([1, 2], [3, 4],\n"
        "        linewdith=2,  # thick\n"
        "        colour='red')\n"
        "ax.bar([1], [2], color='blue', colour='red')\n"
        "plt.title('T', font_size=14)\n"
        "fig.suptitle('S', fontsize=12, glow_amount=3)\n"
    )
    result = repair_code(code)
    assert result.code == (
        HEAD + "ax.plot([1, 2], [3, 4],\n"
        "        linewidth=2,  # thick\n"
        "        color='red')\n"
        "ax.bar([1], [2], color='blue')\n"
        "plt.title('T', fontsize=14)\n"
        "fig.suptitle('S', fontsize=12)\n"
    )
    assert [(r.before, r.after) for r in result.repairs] == [
        ("linewdith", "linewidth"),
        ("colour", "color"),
        ("colour='red'", ""),
        ("font_size", "fontsize"),
        ("glow_amount=3", ""),
    ]
    assert "already given" in result.repairs[2].why


@pytest.mark.parametrize(
    "line",
    [
        "ax.set_xlim(0, 1, color='red')",  # a real matplotlib name in the wrong place: left to the sandbox
        "ax.bar([1], [2], error_kw=dict(ecolor='k'), capsize=3)",
        "ax.boxplot([[1, 2]], labels=['a'])",  # renamed in matplotlib 3.9, valid in the sandbox's 3.6
        "ax.legend(reverse=True, ncols=2)",
        "ax.tick_params(axis='x', labelsize=8, labelrotation=45, grid_alpha=0.5)",
        "fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02, label='z')",
        "plt.savefig('o.png', dpi=100, bbox_inches='tight', pil_kwargs={})",
        "df.plot(kind='bar', rot=45, stacked=True)",
        "sns.barplot(x='a', y='b', data=df, errwidth=2)",
        "thing.plot(x, y, frobnicate=True)",
        "ax3d = fig.add_subplot(projection='3d')\nax3d.plot_surface(X, Y, Z, rstride=1, cstride=1)",
    ],
)
def test_valid_or_unknown_target_keywords_are_left_alone(line):
    assert kinds(HEAD + "im = None\n" + line + "\n") == []


def test_axes_from_arrays_and_loops_are_recognised():
    code = HEAD.replace("fig, ax", "fig, axs") + "for a in axs.flat:\n    pass\nfor axi in axs.flat:\n"
    code += "    axi.plot([1], [2], linestlye='--')\naxs[0].scatter([1], [2], glowiness=3)\n"
    assert kinds(code) == [("keyword", "linestlye", "linestyle"), ("keyword", "glowiness=3", "")]


# --- error-driven repair -------------------------------------------------------------------------------------


def tb(line: int, message: str) -> str:
    return f'Traceback (most recent call last):\n  File "program.py", line {line}, in <module>\n{message}\n'


def test_error_names_a_keyword_the_sandbox_matplotlib_rejects():
    code = (
        HEAD
        + "ax.plot([1], [2], label='a')\nax.legend(\n    frameon=False,\n    reverse=True,\n    loc=1,\n)\n"
    )
    error = tb(4, "TypeError: Legend.__init__() got an unexpected keyword argument 'reverse'")
    result = repair_from_error(code, error)
    assert (
        result.code == HEAD + "ax.plot([1], [2], label='a')\nax.legend(\n    frameon=False,\n    loc=1,\n)\n"
    )
    assert result.repairs[0].kind == "keyword" and "sandbox rejected" in result.repairs[0].why


def test_error_driven_repairs_of_a_keyword_a_location_and_a_colour():
    code = HEAD + "ax.set_xlim(0, 1, color='red')\nfig.legend(loc='outside upper left')\nc = 'lightgreen2'\n"
    fixed = repair_from_error(
        code, tb(3, "TypeError: Axes.set_xlim() got an unexpected keyword argument 'color'")
    )
    assert "ax.set_xlim(0, 1)\n" in fixed.code
    msg = "ValueError: 'outside upper left' is not a valid value for loc; supported values are 'best'"
    assert "fig.legend(loc='upper left')" in repair_from_error(code, tb(4, msg)).code
    msg = "ValueError: 'lightgreen2' is not a valid color value."
    assert "c = 'lightgreen'" in repair_from_error(code, tb(9, msg)).code
    pil = "from PIL import Image\nimg = Image.new('RGB', (9, 9), 'whitee')\n"
    assert (
        "'white'"
        in repair_from_error(pil, tb(2, "ValueError: unknown color specifier: 'whitee'"), "pil").code
    )


@pytest.mark.parametrize(
    "error",
    [
        tb(3, "ValueError: boom"),
        "TypeError: f() got an unexpected keyword argument 'color'",  # no line: no guess
        tb(2, "TypeError: f() got an unexpected keyword argument 'nothere'"),
    ],
)
def test_errors_that_name_nothing_fixable_change_nothing(error):
    code = HEAD + "ax.set_xlim(0, 1, color='red')\n"
    assert not repair_from_error(code, error).changed


# --- real programs come out unchanged ------------------------------------------------------------------------


def test_chartmimic_programs_get_no_repairs():
    """All 499 ChartMimic reference programs are valid: any repair would be a false positive."""
    programs = sorted(CHARTMIMIC.glob("*.py"))
    require(len(programs) > 400, f"ChartMimic programs not found under {CHARTMIMIC}")
    repaired = {p.name: repair_code(p.read_text(encoding="utf-8")).repairs for p in programs}
    assert {name: r for name, r in repaired.items() if r} == {}


# --- pathological programs -----------------------------------------------------------------------------------

DEEP = {  # each parses in Python, or nearly: ast.parse or a recursive visitor runs out of stack on the host
    "call_chain": "import matplotlib.pyplot as plt\nplt.gca()" + ".legend(loc='upper middle')" * 400 + "\n",
    "attribute_chain": "import matplotlib.pyplot as plt\nx = plt"
    + ".a" * 3000
    + "\nplt.plot([1], colr='r')\n",
    "sum": "import matplotlib.pyplot as plt\nplt.plot([1], color='gren')\nx = 1" + "+1" * 900 + "\n",
    "unary": "x = " + "-" * 50_000 + "1\n",  # MemoryError in the parser
}
KEYWORD_ERROR = "File \"program.py\", line 2\nTypeError: got an unexpected keyword argument 'colr'"


@pytest.mark.parametrize("code", DEEP.values(), ids=DEEP.keys())
def test_pathologically_nested_programs_are_left_unchanged(code):
    """RecursionError/MemoryError on the host: the program runs as written (the sandbox reports on it)."""
    assert repair_code(code).code == code
    assert repair_from_error(code, KEYWORD_ERROR).code == code


@pytest.mark.parametrize(
    "code", [DEEP["unary"], "import matplotlib.pyplot as plt\nx = 1" + "+1" * 3000 + "\n"]
)
def test_unfenced_pathological_answer_does_not_crash_code_extraction(code):
    """extract_code compiles an unfenced answer on the host to see whether it is Python: a MemoryError or
    RecursionError there fails the run (write_code has no guard); it is simply not a program."""
    assert extract_code(code, "matplotlib") == ""


# --- the repair node in the graph ----------------------------------------------------------------------------

BROKEN = """```python
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
ax.bar(["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140], color="lightgreen2", label="sales")
ax.set_title("Quarterly Sales 2025")
ax.legend(loc="upper middle")
plt.savefig("output.png")
```"""

WRONG_PLACE = """```python
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
ax.bar(["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140], color="tab:blue")
ax.set_ylim(0, 200, color="red")
ax.set_title("Quarterly Sales 2025")
plt.savefig("output.png")
```"""

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


def run(tmp_path: Path, answer: str, *, sandbox: str = "docker", **ctx_kwargs) -> tuple[dict, Path, list]:
    coder = ScriptedChatModel(replies=[answer, answer])
    ctx = RunContext(
        llm=coder, vlm=ScriptedChatModel(replies=[ACCEPT, ACCEPT]), sandbox=sandbox, **ctx_kwargs
    )
    run_dir = tmp_path / "run"
    return start_run(PROMPT, ctx, run_dir), run_dir, coder.received


@pytest.mark.docker
def test_graph_repairs_before_running_and_accepts_in_round_one(tmp_path, docker_image):
    result, run_dir, coder_calls = run(tmp_path, BROKEN)
    assert result["status"] == "accepted" and result["rounds"] == 1 and len(coder_calls) == 1
    assert result["sandbox"] == "docker"
    attempt = run_dir / "attempts/01"
    assert 'color="lightgreen"' in (attempt / "code.py").read_text()
    assert 'loc="upper center"' in (attempt / "code.py").read_text()
    assert 'color="lightgreen2"' in (attempt / "code.orig.py").read_text()
    trace = read_trace(run_dir)
    nodes = [t["node"] for t in trace if t["node"] != "runner"]
    assert nodes[:5] == ["prepare", "write_code", "repair", "execute", "check"]
    line = next(t for t in trace if t["node"] == "repair")
    assert line["decision"] == "execute" and "2 repair(s) before running" in line["why"]
    assert [(r["kind"], r["after"]) for r in line["repairs"]] == [
        ("colour", "lightgreen"),
        ("legend_loc", "upper center"),
    ]
    saved = json.loads((run_dir / "result.json").read_text())
    assert [r["kind"] for r in saved["attempts"][0]["repairs"]] == ["colour", "legend_loc"]
    assert "repair" in saved["seconds_per_node"]


@pytest.mark.docker
def test_graph_repairs_a_sandbox_error_and_reruns_in_the_same_round(tmp_path, docker_image):
    result, run_dir, coder_calls = run(tmp_path, WRONG_PLACE)
    assert result["status"] == "accepted" and result["rounds"] == 1 and len(coder_calls) == 1
    attempt = run_dir / "attempts/01"
    assert "ax.set_ylim(0, 200)\n" in (attempt / "code.py").read_text()
    assert 'color="red"' in (attempt / "code.orig.py").read_text()
    assert "unexpected keyword argument 'color'" in (attempt / "error.orig.txt").read_text()
    assert not (attempt / "error.txt").exists() and (attempt / "draft.png").exists()
    steps = [(t["node"], t.get("decision")) for t in read_trace(run_dir) if t["node"] != "runner"]
    assert steps[1:7] == [
        ("write_code", "repair"),
        ("repair", "execute"),  # nothing to fix before running
        ("execute", "repair"),  # the sandbox names the keyword
        ("repair", "execute"),
        ("execute", "check"),
        ("check", "critique"),
    ]
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["attempts"][0]["status"] == "ok" and saved["attempts"][0]["repairs"][0]["kind"] == "keyword"


def test_no_repairs_runs_the_program_as_written(tmp_path):
    result, run_dir, coder_calls = run(tmp_path, WRONG_PLACE, sandbox="process", repairs=False, max_rounds=1)
    assert result["status"] == "failed" and len(coder_calls) == 1
    assert not (run_dir / "attempts/01/code.orig.py").exists()
    assert [t["why"] for t in read_trace(run_dir) if t["node"] == "repair"] == ["repairs turned off"]


GOOD = WRONG_PLACE.replace(', color="red"', "")


def test_a_crashing_repair_never_loses_the_run(tmp_path, monkeypatch):
    """A bug in the repairs (here: any exception) runs the program as written instead of failing the run."""

    def broken(*args, **kwargs):
        raise RuntimeError("repair bug")

    monkeypatch.setattr("coco_agent.nodes.repair.repair_code", broken)
    monkeypatch.setattr("coco_agent.nodes.repair.repair_from_error", broken)
    result, run_dir, _ = run(tmp_path, GOOD, sandbox="process", max_rounds=1)
    assert result["status"] == "accepted", result.get("error")
    line = next(t for t in read_trace(run_dir) if t["node"] == "repair")
    assert line["decision"] == "execute" and "repair bug" in line["why"]
