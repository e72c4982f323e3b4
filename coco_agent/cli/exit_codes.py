"""The exit codes of every `coco` command, one enum (README: "Exit codes")."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `coco` command's exit status means, whatever the command."""

    OK = 0
    """Done: a run accepted, a batch with an outcome for every prompt, a PNG written, the sandbox ready."""
    FAILED = 1
    """It ran and did not succeed: a run failed, a batch left prompts pending, a render failed, the sandbox
    image is missing or could not be built."""
    USAGE = 2
    """Nothing ran as asked: bad flags or input, no model chosen, a run directory or batch folder that cannot
    be used, a sandbox, OCR engine or benchmark data that is not available (argparse's own errors are 2 too)."""
    MAX_ROUNDS = 3
    """A final image exists, but the critic never accepted a draft (`generate`, `resume`)."""
    PAUSED = 4
    """A run waits for a person (`--review`): answer it with `coco review RUN`; a batch with no prompt pending
    but some waiting."""
    BUDGET = 5
    """A run stopped at its budget (dollars, tokens or deadline; the best draft so far is the final image, when
    one rendered): `coco resume RUN --budget-usd MORE` continues it. A batch stopped by its batch budget."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT); finished work is kept: `coco resume RUN_DIR`, or rerun the same batch."""


def for_status(status: str | None) -> ExitCode:
    """The exit code of a finished run's status (result.json): accepted, max_rounds, paused, budget, anything
    else failed."""
    codes = {
        "accepted": ExitCode.OK,
        "max_rounds": ExitCode.MAX_ROUNDS,
        "paused": ExitCode.PAUSED,
        "budget": ExitCode.BUDGET,
    }
    return codes.get(status or "", ExitCode.FAILED)
