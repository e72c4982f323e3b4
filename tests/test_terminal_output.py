"""Untrusted text is data, never markup or terminal control.

A program's error and output, a model's answer, a critic's verdict, a prompts file, a path: none may crash the
display (rich markup), take over the terminal (escape sequences, C1 controls, bidi overrides), reach `--json` raw,
or cost a batch a prompt. The terminal tests run the real CLI under a pseudo-terminal and read the bytes it wrote.
"""

from __future__ import annotations

import json

from terminal import HOSTILE, MARKUP

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
