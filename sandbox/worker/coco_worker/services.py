"""Warm renderer services: long-lived helper processes a document renderer drives (headless Chromium for html,
a vl-convert process for vega-lite), started by the zygote at preload, never spoken to by it.

A service is a child of the zygote (PID 1) with two pipes on its fds 3 (it reads) and 4 (it writes). Only the
job process of the service's own format gets the other ends (the runner keeps them in that job's process and
closes them everywhere else), and only document formats have services: no Python program ever runs beside one
(the host keys such workers apart, and the runner refuses Python jobs where a service runs). The runner
excludes each service's process tree from its leftover checks, asks the renderer after every job whether its
service is healthy, and reports the worker unclean on any doubt, so the host retires it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field

from coco_worker import identity

SERVICES: dict[str, Service] = {}  # by format name, in the zygote (and inherited by its runners and jobs)


@dataclass
class Service:
    """One running helper: its pid, our ends of its pipes (to_service: we write; from_service: we read)."""

    name: str
    pid: int
    to_service: int
    from_service: int
    folder: str = ""  # scratch folder it keeps under /tmp (kept by the wipe between jobs)
    state: dict = field(default_factory=dict)  # what the renderer recorded at start (e.g. Chromium's targets)

    def alive(self) -> bool:
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child (a runner asks): ask the kernel instead
            return _exists(self.pid)
        return done == 0


def start(name: str, argv: list[str], env: dict[str, str], folder: str = "") -> Service:
    """Fork and exec `argv` with a pipe on its fd 3 (reads) and fd 4 (writes), /dev/null on 0-2, its own
    session, and OOM score 1000 (it and everything it starts go before the zygote when memory runs out)."""
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    if folder:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        identity.hand_to_service(folder)
    pid = os.fork()
    if pid == 0:  # the service's process: nothing here may raise past os._exit
        try:
            os.setsid()
            identity.become_service()
            high_r, high_w = os.dup(to_r), os.dup(from_w)  # out of the way of 3 and 4 before dup2
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(5, 1 << 16)
            with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
                signal.signal(sig, signal.SIG_DFL)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(to_r)
    os.close(from_w)
    service = Service(name, pid, to_w, from_r, folder)
    SERVICES[name] = service
    return service


def process_parents() -> dict[int, int]:
    """Every visible process and its parent's pid (one scan of /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent(int(entry))
            if parent is not None:
                parents[int(entry)] = parent
    return parents


def tree_pids(parents: dict[int, int] | None = None) -> set[int]:
    """Every process of every running service's tree (the service and its descendants), by /proc ppid links
    (``parents``: a scan already made, ``process_parents()``)."""
    roots = {s.pid for s in SERVICES.values()}
    if not roots:
        return set()
    parents = process_parents() if parents is None else parents
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                changed = True
    return found


def service_fds() -> list[int]:
    """Our ends of every service's pipes (closed in every job process but its own format's)."""
    return [fd for s in SERVICES.values() for fd in (s.to_service, s.from_service)]


def kill_all() -> None:
    """SIGKILL every service's session (its whole tree: Chromium's children share its session)."""
    for service in SERVICES.values():
        with contextlib.suppress(OSError):
            os.killpg(service.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(service.pid, signal.SIGKILL)


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rfind(b")") + 2 :].split()
    return bool(fields) and fields[0] not in (b"Z", b"X")
