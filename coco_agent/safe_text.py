"""Untrusted text made safe to show: on a terminal, inside rich markup, and in JSON.

Untrusted means anything coco did not write itself: a program's error, stdout and stderr, a model's answer, a
critic's verdict, a prompts file, a file or folder name, an exception's message. On a terminal such text must
neither drive the terminal (escape sequences: OSC 52 writes the clipboard, OSC 0 the window title, CSI clears the
screen; C1 controls such as U+009B are CSI in one character; bidi overrides reorder what is shown) nor be read as
rich markup (``[/]`` crashes rich, ``[link=...]`` makes a link). So:

- ``terminal_text``: control characters (C0 but newline and tab, DEL, C1), bidi overrides and isolates, and lone
  surrogates become visible escapes (``\\x1b``, ``\\u202e``): the user sees that something was there;
- ``markup_text``: ``terminal_text`` escaped for rich markup, to put inside a markup string;
- ``plain_text``: ``terminal_text`` as a ``rich.text.Text`` (no markup, no highlighting);
- ``safe_console``: a rich Console that leaves ``:name:`` emoji codes alone (markup escaping cannot);
- ``json_text``: ``json.dumps`` that spells those characters as ``\\uXXXX`` (JSON escapes C0 itself), so
  ``--json`` output and files never carry them raw and still load back to the very same strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported where it is used: `coco --help` and the JSON writers do without it
    from rich.console import Console
    from rich.text import Text

# Shown escaped on a terminal: C0 controls but \t and \n, DEL, C1 controls, the bidi embeddings, overrides and
# isolates (Trojan Source), lone surrogates (they cannot even be encoded as UTF-8).
_TERMINAL_RANGES = (
    (0x00, 0x08),
    (0x0B, 0x1F),
    (0x7F, 0x9F),
    (0x202A, 0x202E),
    (0x2066, 0x2069),
    (0xD800, 0xDFFF),
)
# Spelled \uXXXX in JSON output (json.dumps escapes C0 itself): DEL, C1, bidi controls, the line and paragraph
# separators (a line break to some readers), lone surrogates.
_JSON_RANGES = ((0x7F, 0x9F), (0x2028, 0x2029), (0x202A, 0x202E), (0x2066, 0x2069), (0xD800, 0xDFFF))


def _table(ranges: tuple[tuple[int, int], ...], spell: Callable[[int], str]) -> dict[int, str]:
    # str.translate with a table stays fast (linear, in C) however many controls a hostile text holds
    return {code: spell(code) for low, high in ranges for code in range(low, high + 1)}


_TERMINAL = _table(_TERMINAL_RANGES, lambda c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") | {0x0D: "\\r"}
_JSON = _table(_JSON_RANGES, lambda c: f"\\u{c:04x}")


def terminal_text(value: object) -> str:
    """``value`` as text that shows on a terminal as what it is, never acts on it (None -> "")."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return text.translate(_TERMINAL)


def markup_text(value: object) -> str:
    """``terminal_text(value)`` escaped for rich markup: put it in a markup string, it prints literally."""
    from rich.markup import escape

    return escape(terminal_text(value))


def plain_text(value: object, style: str = "") -> Text:
    """``terminal_text(value)`` as a rich Text: printed as it is, no markup, no emoji codes, no highlighting."""
    from rich.text import Text

    return Text(terminal_text(value), style=style)


def safe_console(**kwargs: Any) -> Console:
    """A rich Console for output that carries untrusted text: as ``Console(**kwargs)`` but emoji codes stay text."""
    from rich.console import Console

    return Console(**{"emoji": False, **kwargs})


def json_text(data: Any, **kwargs: Any) -> str:
    """``json.dumps(data, ensure_ascii=False, **kwargs)`` with DEL, C1, bidi controls, line separators and lone
    surrogates spelled ``\\uXXXX``: valid JSON that loads back to the same value, safe to print and to write."""
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    # Outside strings JSON is ASCII, so every match is inside a string, where \uXXXX means the same character.
    return text.translate(_JSON)
