"""Pull a program out of a model's answer: fenced blocks, else what the format finds unfenced (bare code, bare SVG).

The answer is untrusted text of any size: it is capped first (`MAX_ANSWER_CHARS`), and every scan below is
linear (``str.find`` from positions that only move forward; the few regexes match fixed words at one position),
so no answer costs more than a fraction of a second here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coco_agent import formats
from coco_agent.sandbox.base import SandboxLimits

# An answer longer than the biggest program the sandbox accepts cannot carry a program it would run.
MAX_ANSWER_CHARS: int = SandboxLimits.max_source_bytes

_LANG = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)")


@dataclass(frozen=True)
class Extraction:
    """The program found in an answer (``""`` when none) and, when none, why."""

    code: str
    why: str = ""


def extract_code(answer: str, fmt: str) -> str:
    """Return the program in ``answer``, or ``""`` when it holds none (prose only, or an answer over the cap)."""
    return extract_program(answer, fmt).code


def extract_program(answer: str, fmt: str) -> Extraction:
    """The program in ``answer``: the longest fenced block in one of the format's fence languages (else the
    longest block), else what the format finds in an unfenced answer (formats/); with the reason when none."""
    if len(answer) > MAX_ANSWER_CHARS:
        return Extraction(
            "",
            f"the model's answer has {len(answer):,} characters, over the {MAX_ANSWER_CHARS:,}-character limit "
            "(the sandbox's program limit); no program was taken from it",
        )
    text = answer.replace("\r\n", "\n")
    blocks = [(lang.lower(), body.strip("\n")) for lang, body in fenced_blocks(text)]
    blocks = [(lang, body) for lang, body in blocks if body.strip()]
    record = formats.get(fmt)
    if blocks:
        preferred = [body for lang, body in blocks if lang in record.fences]
        return Extraction(max(preferred or [body for _, body in blocks], key=len))
    code, why = record.unfenced(text)
    return Extraction(code, why)


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
