"""Pull a program out of a model's answer: fenced blocks, bare code, or bare SVG."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_HINT = re.compile(
    r"^\s*(import |from \w+ import|def |class |plt\.|fig|ax\b|for |with |[A-Za-z_][\w.]* ?=)", re.MULTILINE
)
_SVG = re.compile(r"(<\?xml[^>]*>\s*)?<svg\b.*?</svg>", re.DOTALL | re.IGNORECASE)


def extract_code(answer: str, fmt: str) -> str:
    """Return the program in ``answer``, or ``""`` when it holds none (prose only)."""
    text = answer.replace("\r\n", "\n")
    blocks = [(lang.lower(), body.strip("\n")) for lang, body in _FENCE.findall(text)]
    blocks = [(lang, body) for lang, body in blocks if body.strip()]
    if blocks:
        wanted = ("svg", "xml") if fmt == "svg" else ("python", "py", "python3", "")
        preferred = [body for lang, body in blocks if lang in wanted]
        return max(preferred or [body for _, body in blocks], key=len)
    if fmt == "svg":
        match = _SVG.search(text)
        return match.group(0).strip() if match else ""
    return text.strip() if _looks_like_python(text) else ""


def _looks_like_python(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    hinted = sum(1 for line in lines if _CODE_HINT.match(line))
    try:
        compile(text, "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # deep nesting: Recursion/MemoryError
        return False
    return hinted >= max(1, len(lines) // 4)
