"""The worker's own settings, as a job could change them: read, compared, reported (numbers only)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
from pathlib import Path

from coco_worker.seccomp import ARCHES, SYSCALLS

RLIMITS = sorted(name for name in dir(resource) if name.startswith("RLIMIT_"))


def process_state(pid: int) -> dict:
    """What a job could change about a process of the same uid: its limits, nice, scheduling policy and
    priority, CPU affinity, I/O priority and OOM score. Numbers only (this is compared, and may be reported)."""
    state: dict = {}
    for name in RLIMITS:
        with contextlib.suppress(OSError, ValueError):
            state[name] = resource.prlimit(pid, getattr(resource, name))
    probes = {
        "nice": lambda: os.getpriority(os.PRIO_PROCESS, pid),
        "policy": lambda: os.sched_getscheduler(pid),
        "priority": lambda: os.sched_getparam(pid).sched_priority,
        "affinity": lambda: sorted(os.sched_getaffinity(pid)),
        "ioprio": lambda: _ioprio_get(pid),
        "oom_score_adj": lambda: int(Path(f"/proc/{pid or 'self'}/oom_score_adj").read_text()),
    }
    for name, probe in probes.items():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            state[name] = probe()
    return state


def _ioprio_get(pid: int) -> int:

    arch = ARCHES.get(platform.machine())
    if arch is None:
        raise OSError("no syscall table")
    libc = ctypes.CDLL(None, use_errno=True)
    value = libc.syscall(SYSCALLS["ioprio_get"][arch[1]], 1, pid)  # IOPRIO_WHO_PROCESS
    if value < 0:
        raise OSError(ctypes.get_errno(), "ioprio_get")
    return value


def state_changes(before: dict, after: dict) -> str:
    """'' when nothing changed, else which settings did (names and numbers, never a job's text). Settings
    missing from either reading (a probe another process may not make) are not compared."""
    changed = [
        f"{k} {before[k]!r} -> {after[k]!r}" for k in sorted(before) if k in after and before[k] != after[k]
    ]
    return "; ".join(changed)[:300]
