"""Pull a program out of a model's answer: fenced blocks, bare code, or bare SVG.

The answer is untrusted text of any size: it is capped first (`MAX_ANSWER_CHARS`), and every scan below is
linear (``str.find`` from positions that only move forward; the few regexes match fixed words at one position),
so no answer costs more than a fraction of a second here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coco_agent.sandbox.base import SandboxLimits

# An answer longer than the biggest program the sandbox accepts cannot carry a program it would run.
MAX_ANSWER_CHARS: int = SandboxLimits.max_source_bytes
# The most unfenced answer text compiled on the host to tell Python from prose (compile costs ~1 s per MiB);
# a longer unfenced answer is judged by its lines alone and the sandbox reports a syntax error.
MAX_COMPILE_CHARS = 64 * 1024

_LANG = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)")
_CODE_HINT = re.compile(
    r"^\s*(import |from \w+ import|def |class |plt\.|fig|ax\b|for |with |[A-Za-z_][\w.]* ?=)", re.MULTILINE
)
_XML_DECL = re.compile(r"<\?xml", re.IGNORECASE)
_SVG_OPEN = re.compile(r"<svg\b", re.IGNORECASE)
_SVG_CLOSE = re.compile(r"</svg>", re.IGNORECASE)
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True)
class Extraction:
    """The program found in an answer (``""`` when none) and, when none, why."""

    code: str
    why: str = ""


def extract_code(answer: str, fmt: str) -> str:
    """Return the program in ``answer``, or ``""`` when it holds none (prose only, or an answer over the cap)."""
    return extract_program(answer, fmt).code


def extract_program(answer: str, fmt: str) -> Extraction:
    """The program in ``answer``: the longest fenced block in the format's language (else the longest block),
    else bare SVG (svg) or the whole answer when it looks like Python; with the reason when there is none."""
    if len(answer) > MAX_ANSWER_CHARS:
        return Extraction(
            "",
            f"the model's answer has {len(answer):,} characters, over the {MAX_ANSWER_CHARS:,}-character limit "
            "(the sandbox's program limit); no program was taken from it",
        )
    text = answer.replace("\r\n", "\n")
    blocks = [(lang.lower(), body.strip("\n")) for lang, body in fenced_blocks(text)]
    blocks = [(lang, body) for lang, body in blocks if body.strip()]
    if blocks:
        wanted = ("svg", "xml") if fmt == "svg" else ("python", "py", "python3", "")
        preferred = [body for lang, body in blocks if lang in wanted]
        return Extraction(max(preferred or [body for _, body in blocks], key=len))
    if fmt == "svg":
        svg = bare_svg(text).strip()
        return Extraction(svg, "" if svg else "the model's answer contained no SVG (no <svg ...> ... </svg>)")
    if _looks_like_python(text):
        return Extraction(text.strip())
    return Extraction("", "the model's answer contained no program (prose only)")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every ``` fence, in order, as the regex
    ``` ```[ \\t]*([A-Za-z0-9_+-]*)[^\\n]*\\n(.*?)(?:```|\\Z) ``` (DOTALL) finds them, in linear time.

    A fence opens at any ``` that has a newline after it on its line (the tag is the first word after it); the
    body runs to the next ``` (even mid-line) or to the end of the text. Once some ``` has no newline after it,
    no later one has either: the scan stops there (the regex retried every later position up to the end).
    """
    blocks = []
    pos = 0
    while True:
        start = text.find("```", pos)
        if start < 0:
            break
        newline = text.find("\n", start + 3)
        if newline < 0:
            break
        lang = _LANG.match(text, start + 3, newline).group(1)
        end = text.find("```", newline + 1)
        if end < 0:
            blocks.append((lang, text[newline + 1 :]))
            break
        blocks.append((lang, text[newline + 1 : end]))
        pos = end + 3
    return blocks


def bare_svg(text: str) -> str:
    """The first ``(<?xml ...>\\s*)?<svg ...>...</svg>`` in ``text`` (case-insensitive), or ``""``, in linear time.

    Same match as that regex's ``search``, without its retry from every ``<svg`` and every ``<?xml`` up to the
    end of the text when nothing closes.
    """
    first = _SVG_OPEN.search(text)
    if not first:
        return ""
    last_close = -1
    for close in _SVG_CLOSE.finditer(text, first.end()):
        last_close = close.start()
    if last_close < 0:
        return ""  # no </svg> after the first <svg, so none after any later one either
    start, svg_at = first.start(), first.start()
    gt, tried = -2, -2  # the first '>' after the current "<?xml" (-1: none), the last '>' already tried
    for decl in _XML_DECL.finditer(text, 0, first.start()):  # a declaration before it may start the match
        if gt != -1 and gt < decl.end():
            gt = text.find(">", decl.end())  # searched from beyond the last '>' found: linear in all
        if gt == -1:
            break  # no '>' after this declaration, so none after any later one
        if gt == tried:
            continue  # same '>' as the last declaration: same (failed) outcome
        tried = gt
        opening = _SVG_OPEN.match(text, _SPACE.match(text, gt + 1).end())
        if opening and opening.end() <= last_close:
            start, svg_at = decl.start(), opening.start()
            break
    close = _SVG_CLOSE.search(text, svg_at + 4)
    return text[start : close.end()] if close else ""


def _looks_like_python(text: str) -> bool:
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
