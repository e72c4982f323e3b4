"""Where a person's program comes from on the command line: ``--code FILE`` (``-`` for standard input) or the
editor (``$VISUAL``, then ``$EDITOR``) opened on a copy of the program to change."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from coco_agent.errors import EditRefused

MAX_READ = 2 * 1024 * 1024  # bytes read of a program file (the sandbox takes 1 MiB; the check says so)


def read_program(code_file: str | None, start: str, suffix: str) -> bytes:
    """The program's bytes: from ``code_file`` (``-``: stdin) or, without one, from the editor opened on
    ``start``. EditRefused when the file cannot be read, no editor is set, or the editor left it unchanged."""
    if code_file == "-":
        return sys.stdin.buffer.read(MAX_READ + 1)
    if code_file is not None:
        path = Path(code_file)
        try:
            with path.open("rb") as fh:
                return fh.read(MAX_READ + 1)
        except OSError as exc:
            raise EditRefused(f"cannot read the program {path}: {exc.strerror or exc}") from None
    return edit_in_editor(start, suffix)


def edit_in_editor(start: str, suffix: str) -> bytes:
    """Open ``start`` in $VISUAL / $EDITOR and return what was saved; EditRefused when unchanged."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise EditRefused("no editor: set $EDITOR (or $VISUAL), or give the program with --code FILE")
    with tempfile.TemporaryDirectory(prefix="coco-edit-") as folder:
        path = Path(folder) / f"program{suffix}"
        path.write_text(start, encoding="utf-8")
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except OSError as exc:
            raise EditRefused(f"cannot start the editor {editor!r}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise EditRefused(
                f"the editor {editor!r} exited with status {done.returncode}; nothing was changed"
            )
        data = path.read_bytes()[: MAX_READ + 1]
    if data == start.encode("utf-8"):
        raise EditRefused(
            "the program was saved unchanged; nothing was done (pass --code FILE to rerun as is)"
        )
    return data
