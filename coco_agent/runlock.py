"""One writer per run: an advisory lock on RUN/run.lock held by whoever continues the run (generate, resume,
edit, review, a batch, the studio).

``flock`` on the lock file, never blocking: a second writer is refused at once with ``RunBusy`` naming the
holder (pid, host, command, since when), and nothing of the run is touched. The kernel drops the lock when its
holder dies, SIGKILL included, so a crashed writer never leaves the run locked; the file itself stays (what it
says is only information). Locks are per open file, so two threads of one process are refused as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from coco_agent.errors import RunBusy
from coco_agent.rundir import LOCK_FILE
from coco_agent.runs import now


@contextlib.contextmanager
def run_lock(run_dir: str | Path, what: str = "") -> Iterator[Path]:
    """Hold RUN/run.lock for the block; RunBusy at once when someone else holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(_busy_message(run_dir, fd)) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "what": what or " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200],
            "since": now(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the file releases the lock


def is_busy(run_dir: str | Path) -> bool:
    """Whether someone holds the run's lock now (a probe: takes and drops it when free)."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _busy_message(run_dir: Path, fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        holder = {}
    who = ""
    if isinstance(holder, dict) and holder.get("pid"):
        who = f" (pid {holder.get('pid')} on {holder.get('host')}, `{holder.get('what')}`, since {holder.get('since')})"
    return (
        f"{run_dir} is being continued by someone else right now{who}; nothing was changed. Wait until that "
        "finishes (or stop it), then try again"
    )
