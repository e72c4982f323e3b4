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
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported where it is used: `coco --help` and the JSON writers do without it
    from rich.console import Console
    from rich.text import Text

# Shown escaped on a terminal: C0 controls but \t and \n, DEL, C1 controls, the bidi embeddings, overrides and
# isolates (Trojan Source), lone surrogates (they cannot even be encoded as UTF-8).
_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Spelled \uXXXX in JSON output (json.dumps escapes C0 itself): DEL, C1, bidi controls, the line and paragraph
# separators (a line break to some readers), lone surrogates.
_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\r": "\\r"}


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(value: object) -> str:
    """``value`` as text that shows on a terminal as what it is, never acts on it (None -> "")."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return _TERMINAL.sub(_visible, text)


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
    return _JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
