"""Untrusted text is data, never markup or terminal control.

A program's error and output, a model's answer, a critic's verdict, a prompts file, a path: none may crash the
display (rich markup), take over the terminal (escape sequences, C1 controls, bidi overrides), reach `--json` raw,
or cost a batch a prompt. The terminal tests run the real CLI under a pseudo-terminal and read the bytes it wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from batch_helpers import clean_env
from terminal import HOSTILE, MARKUP, VISIBLE, run_in_terminal

SHOWN_MARKUP = MARKUP.encode()  # printed as it is written, never parsed
C1_AND_FRIENDS = "\x1b\x7f\x85\x9b\u202e\u2066"


def hostile_program(draws: bool = False) -> str:
    """A program that prints hostile text to stdout and stderr and then fails (or draws nothing)."""
    lines = [
        "import sys",
        f"H = {HOSTILE!r}",
        f"M = {MARKUP!r}",
        "print('out', H, M)",
        "print('err', H, M, file=sys.stderr)",
    ]
    if not draws:
        lines.append("raise ValueError(M + ' ' + H)")
    return "\n".join(lines) + "\n"


def fenced(code: str) -> str:
    return f"```python\n{code}```"


# ---------------------------------------------------------------------------------------------------------
# The text helpers
# ---------------------------------------------------------------------------------------------------------


def test_terminal_text_escapes_controls_visibly():
    from coco_agent.safe_text import terminal_text

    shown = terminal_text("a\x1b]0;t\x07b\tc\nd\r\x00\x7f\x85\x9b\u202a\u202e\u2066\u2069\ud800 é 中 [/]")
    assert shown == (
        r"a\x1b]0;t\x07b" + "\tc\nd" + r"\r\x00\x7f\x85\x9b\u202a\u202e\u2066\u2069\ud800" + " é 中 [/]"
    )
    assert terminal_text(None) == "" and terminal_text(42) == "42"


def test_markup_text_is_literal_for_rich():
    from coco_agent.safe_text import markup_text, safe_console

    console = safe_console(record=True, width=200, color_system=None)
    for text in (MARKUP, "[bold]x[/bold]", "ends in a backslash \\", "\\[/]", ":red_heart: [link=x]y"):
        console.print(f"[red]{markup_text(text)}[/red]")
    lines = console.export_text().splitlines()
    assert lines == [MARKUP, "[bold]x[/bold]", "ends in a backslash \\", "\\[/]", ":red_heart: [link=x]y"]


def test_json_text_escapes_c1_and_round_trips():
    from coco_agent.safe_text import json_text

    data = {"error": f"boom {C1_AND_FRIENDS} é 中 \u2028", "n": [1, "\ud83d"]}
    text = json_text(data, indent=2)
    assert all(ch not in text for ch in C1_AND_FRIENDS + "\u2028\ud83d")
    assert "é 中" in text  # ordinary non-ASCII stays readable
    assert json.loads(text) == data
    text.encode("utf-8")  # a lone surrogate no longer breaks the write


# ---------------------------------------------------------------------------------------------------------
# coco render
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("draws", [False, True], ids=["error", "no_image"])
def test_render_of_a_hostile_program_under_a_terminal(tmp_path, draws):
    """The error (with `[/]` and escape sequences) and the stderr tail are shown escaped; exit 1, no traceback."""
    src = tmp_path / "hostile.py"
    src.write_text(hostile_program(draws))
    shown = run_in_terminal("render", str(src), "-o", str(tmp_path / "x.png"), "--sandbox", "process")
    assert shown.returncode == 1, shown.raw[-3000:]
    shown.assert_harmless(*VISIBLE, SHOWN_MARKUP)


@pytest.mark.docker
def test_render_of_a_hostile_program_in_docker_under_a_terminal(tmp_path, docker_image):
    src = tmp_path / "hostile.py"
    src.write_text(hostile_program())
    shown = run_in_terminal("render", str(src), "-o", str(tmp_path / "x.png"), "--sandbox", "docker")
    assert shown.returncode == 1, shown.raw[-3000:]
    shown.assert_harmless(*VISIBLE, SHOWN_MARKUP)  # --sandbox docker never falls back to another kind


def test_render_json_carries_no_raw_controls(tmp_path):
    src = tmp_path / "hostile.py"
    src.write_text(hostile_program(draws=True))
    proc = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", "render", str(src), "-o", str(tmp_path / "x.png")]
        + ["--sandbox", "process", "--json"],
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )
    assert proc.returncode == 1
    for seq in (b"\x1b", b"\xc2\x9b", "\u202e".encode()):
        assert seq not in proc.stdout
    report = json.loads(proc.stdout)
    assert HOSTILE in report["stderr_tail"]  # the exact text, escaped only in its JSON spelling


def test_unreadable_paths_and_markup_in_paths_are_shown(tmp_path):
    """File names are untrusted too: `[/]` and an escape sequence in a path are shown, not parsed."""
    src = tmp_path / "a[/]\x1b]0;x\x07.py"
    shown = run_in_terminal("render", str(src), "-o", str(tmp_path / "x.png"), "--sandbox", "process")
    assert shown.returncode == 2
    shown.assert_harmless(b"a[/]", rb"\x1b]0;x\x07.py")
