"""Process and scratch-space hygiene: find, kill and reap what a job started; wipe what it wrote; spot what
outlives a process (System V IPC, POSIX message queues); memory and OOM counters."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import time

from coco_worker import services

# Signals a job (same uid) could send its worker: ignored there, restored to their defaults in each job.
WORKER_IGNORES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPROF")


PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36


def prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def children_of(pid: int, parents: dict[int, int] | None = None) -> list[int]:
    """Pids whose parent is `pid` (``parents``: a scan of /proc already made; else one now)."""
    parents = services.process_parents() if parents is None else parents
    return [child for child, parent in parents.items() if parent == pid]


def job_processes(parents: dict[int, int] | None = None) -> list[int]:
    """The job's processes, seen from its runner: every process but the zygote and the runner when the zygote
    is PID 1 of the namespace (Docker, bubblewrap --as-pid-1), else the runner's children (it is a subreaper:
    the job's orphans become its children). A warm renderer service's process tree is never the job's.
    ``parents``: a scan of /proc already made (``services.process_parents()``), so one check scans once."""
    me = os.getpid()
    keep = services.tree_pids(parents)
    if os.getppid() == 1:
        pids = parents if parents is not None else (int(e) for e in os.listdir("/proc") if e.isdigit())
        return [pid for pid in pids if pid not in (1, me) and pid not in keep]
    return [pid for pid in children_of(me, parents) if pid not in keep]


def reap_all(child: int | None, budget_s: float = 2.0) -> int:
    """SIGKILL the job's session and every process reparented to us (as PID 1: every other process in the
    namespace); returns how many were killed."""
    killed = 0
    if child:
        with contextlib.suppress(OSError):
            os.killpg(child, signal.SIGKILL)
    end = time.monotonic() + budget_s
    while time.monotonic() < end:
        kids = job_processes()
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        while True:  # reap zombies
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        if not kids:
            break
        time.sleep(0.01)
    return killed


def private_bytes(pid: int) -> int:
    """Memory only this process holds (private clean + dirty pages, swap); 0 once it is gone."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Swap:")):
                    total += int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        return 0
    return total


def pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def mount_points_below(folders: tuple[str, ...]) -> set[str]:
    """Mount points strictly inside any of `folders`, from /proc/self/mountinfo (octal escapes decoded)."""
    found: set[str] = set()
    prefixes = tuple(folder.rstrip("/") + "/" for folder in folders)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
            for line in table:
                fields = line.split()
                if len(fields) > 4:
                    point = _unescape_mount(fields[4])
                    if point.startswith(prefixes):
                        found.add(point.rstrip("/"))
    except OSError:
        pass
    return found


def _unescape_mount(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def wipe_folder(folder: str, keep: set[str]) -> None:
    """Empty `folder`, except the mount points in `keep` and the folders that lead to them (emptied around)."""
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if path in keep:
            continue
        if any(k.startswith(path + "/") for k in keep) and stat.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o755)
            wipe_folder(path, keep)
            continue
        remove_tree(path)


def remove_tree(path: str) -> None:
    """Delete a file, link or folder, first making folders the job locked (chmod 000) ours again."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(path)
        return
    os.chmod(path, 0o700)
    for entry in os.listdir(path):
        remove_tree(os.path.join(path, entry))
    os.rmdir(path)


def posix_mqueues() -> bool:
    """Whether any POSIX message queue exists in this IPC namespace (they outlive processes)."""
    try:
        return bool(os.listdir("/dev/mqueue"))
    except OSError:
        return False


def sysv_ipc_objects() -> bool:
    """Whether any System V shared memory, semaphore or message queue exists (they outlive processes)."""
    for name in ("shm", "sem", "msg"):
        try:
            with open(f"/proc/sysvipc/{name}") as f:
                if len(f.read().splitlines()) > 1:
                    return True
        except OSError:
            continue
    return False


def oom_kills() -> int:
    """OOM kills counted by our memory cgroup (v1 or v2); 0 when unknown."""
    for path, key in (
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
    ):
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0
