"""A program a person wrote: checked (empty, binary, too large, another format) and saved as an attempt.

Shared by `coco edit` (a fork of the run's history) and the review's ``edit`` answer (the paused run goes on):
either way the program becomes the next round's attempt with ``source: "human"``, and is repaired, run,
checked and critiqued like the model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coco_agent import formats
from coco_agent.errors import EditRefused
from coco_agent.rundir import attempt_dir
from coco_agent.runs import rel
from coco_agent.sandbox.base import SandboxLimits

HUMAN = "human"  # the `source` (and `model`) of an attempt a person wrote
MAX_PROGRAM_BYTES = SandboxLimits().max_source_bytes


def checked_program(code: str | bytes, run_format: str, fmt: str | None = None) -> tuple[str, str]:
    """``(program, format)`` of a person's program, or EditRefused saying what is wrong with it.

    Refused: no text at all, binary data (NUL bytes, not UTF-8), more than the sandbox takes, and a program that
    is evidently another format than the run's (``fmt`` names the format to switch the run to: then it is
    taken as that format, whatever it looks like).
    """
    if isinstance(code, bytes):
        if b"\x00" in code:
            raise EditRefused(
                "the program file is binary (it holds NUL bytes); give the program's source text"
            )
        try:
            code = code.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EditRefused(
                f"the program file is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
            ) from None
    if "\x00" in code:
        raise EditRefused("the program holds NUL characters (binary data); give the program's source text")
    if not code.strip():
        raise EditRefused("the program is empty: nothing to run (the run is unchanged)")
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > MAX_PROGRAM_BYTES:
        raise EditRefused(f"the program is {size:,} bytes; the sandbox takes at most {MAX_PROGRAM_BYTES:,}")
    if fmt is not None:
        return code, formats.get(fmt).name  # ValueError naming the choices for an unknown one
    guessed = formats.guess(code)
    if guessed != run_format:
        raise EditRefused(
            f"the program looks like {guessed}, but the run draws {run_format}; pass --format {guessed} to "
            f"continue the run in {guessed}, or give a {run_format} program"
        )
    return code, run_format


def write_attempt(run_dir: str | Path, rnd: int, code: str, fmt: str, **extra: Any) -> dict[str, Any]:
    """Save the program as round ``rnd``'s attempt (attempts/NN/code.<suffix>); its attempt record."""
    folder = attempt_dir(run_dir, rnd)
    path = folder / formats.get(fmt).code_file
    path.write_text(code if code.endswith("\n") else code + "\n", encoding="utf-8")
    return {
        "round": rnd,
        "status": "pending",
        "source": HUMAN,
        "model": HUMAN,
        "code_path": rel(run_dir, path),
        **extra,
    }


def program_of(run_dir: str | Path, attempt: dict[str, Any] | None) -> str:
    """The program an attempt ran ("" when it had none or the file is gone)."""
    if not attempt or not attempt.get("code_path"):
        return ""
    try:
        return (Path(run_dir) / attempt["code_path"]).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
