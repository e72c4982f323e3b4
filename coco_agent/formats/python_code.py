"""What the Python formats share: telling a Python program from prose in an answer without fences."""

from __future__ import annotations

import re
from collections.abc import Callable

from coco_agent.formats.record import DraftFormat

# The most unfenced answer text compiled on the host to tell Python from prose (compile costs ~1 s per MiB);
# a longer unfenced answer is judged by its lines alone and the sandbox reports a syntax error.
MAX_COMPILE_CHARS = 64 * 1024
PYTHON_FENCES = ("python", "py", "python3", "")
_CODE_HINT = re.compile(
    r"^\s*(import |from \w+ import|def |class |plt\.|fig|ax\b|for |with |[A-Za-z_][\w.]* ?=)", re.MULTILINE
)


def looks_like_python(text: str) -> bool:
    """Whether an unfenced answer is a Python program: a quarter of its lines look like code, and it compiles
    (up to MAX_COMPILE_CHARS; beyond, the lines decide)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    hinted = sum(1 for line in lines if _CODE_HINT.match(line))
    if hinted < max(1, len(lines) // 4):
        return False
    if len(text) > MAX_COMPILE_CHARS:
        return True
    try:
        compile(text, "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # deep nesting: Recursion/MemoryError
        return False
    return True


def unfenced_python(text: str) -> tuple[str, str]:
    """The whole answer when it is a Python program, else "" and why."""
    if looks_like_python(text):
        return text.strip(), ""
    return "", "the model's answer contained no program (prose only)"


def python_format(name: str, summary: str, sniff: Callable[[str, str], bool]) -> DraftFormat:
    """The record of a format whose program is Python (code.py, python fences, the Python repairs)."""
    return DraftFormat(
        name=name,
        summary=summary,
        code_file="code.py",
        suffix=".py",
        fence="python",
        fences=PYTHON_FENCES,
        lexer="python",
        python=True,
        sniff=sniff,
        unfenced=unfenced_python,
        text_layers=True,  # both renderers draw the picture again with their text calls drawing nothing
    )
