"""The bubblewrap command line shared by the per-job and the warm bubblewrap sandboxes.

The worker runs as PID 1 of its own pid namespace (`--as-pid-1`): the kernel drops any signal a job sends it
that it does not handle (SIGKILL included), every process a job starts is visible to it (and reparented to
it), and when it dies the kernel kills everything left in the namespace. `--die-with-parent` ties the
namespace to the bwrap process the host started, so killing that one kills them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coco_agent.sandbox.base import SandboxLimits

WORKER_IN_BWRAP = "/opt/coco/worker"  # the worker bundle, bound read-only
MPL_IN_BWRAP = "/opt/coco/mplconfig"
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg"}


def host_mpl_cache() -> str:
    """The host matplotlib cache dir (font list), so jobs skip rebuilding it; '' when there is none."""
    try:
        import matplotlib

        path = matplotlib.get_cachedir()
    except Exception:
        return ""
    return path if any(Path(path).glob("fontlist-*.json")) else ""


def bwrap_supports(bwrap: str, option: str) -> bool:
    """Whether this bubblewrap's --help lists `option`."""
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return option in out.stdout + out.stderr


def bwrap_command(
    bwrap: str,
    python: str,
    worker: str,
    worker_args: list[str],
    mpl_seed: str = "",
    tmpfs_mb: int = 64,
    sized: bool = True,
    mqueue: bool = False,
) -> list[str]:
    """argv that runs `worker` (with `worker_args`) under `python` in fresh namespaces, no network, read-only
    /usr and Python install, sized private /tmp and /dev/shm (where bubblewrap has --size), no capabilities."""
    env = dict(BASE_ENV, HOME="/tmp", TMPDIR="/tmp", XDG_CACHE_HOME="/tmp/.cache")
    cmd = [bwrap, "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    cmd += ["--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev"]
    if mqueue:  # the IPC namespace's POSIX message queues, visible so the worker can see any left behind
        cmd += ["--mqueue", "/dev/mqueue"]
    # Sized tmpfs where bubblewrap has --size: unsized ones take up to half the host's RAM.
    for path, size_mb in (("/dev/shm", 16), ("/tmp", tmpfs_mb)):
        cmd += ["--size", str(size_mb << 20), "--tmpfs", path] if sized else ["--tmpfs", path]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "lib", "lib64", "sbin"):
        path = Path("/") / top
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for path in ("/etc/fonts", "/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    # The host's Python, and the job's (its virtualenv as named, whose pyvenv.cfg points to its base install)
    interpreter = Path(python).absolute()
    prefixes = {
        sys.base_prefix,
        sys.prefix,
        str(interpreter.parent.parent),
        str(interpreter.resolve().parent.parent),
    }
    for prefix in sorted(prefixes):
        if not prefix.startswith("/usr"):
            cmd += ["--ro-bind", prefix, prefix]
    cmd += ["--ro-bind", worker, WORKER_IN_BWRAP]
    if mpl_seed:
        cmd += ["--ro-bind", mpl_seed, MPL_IN_BWRAP]
        env["COCO_MPL_SEED"] = MPL_IN_BWRAP
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/"]  # bubblewrap's root tmpfs: read-only for the job
    cmd += ["--clearenv", "--chdir", "/tmp"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd + [python, "-I", "-B", WORKER_IN_BWRAP, *worker_args]


def job_frame(
    fmt: str, limits: SandboxLimits, job_id: str = "", watch: bool = True, file_mb: int = 0
) -> dict:
    """The worker's job header for a sandbox without cgroups: RLIMIT_AS per process and, with `watch` (the
    worker is PID 1 of its namespace), memory and process caps for the job as a whole, checked by the worker."""
    worker_limits = {
        "output_bytes": limits.output_bytes,
        "max_png_bytes": limits.max_png_bytes,
        "max_pixels": limits.max_pixels,
        "address_space_mb": limits.memory_mb,
    }
    if file_mb:
        worker_limits["file_bytes"] = file_mb << 20
    if watch:
        worker_limits.update(job_memory_mb=limits.memory_mb, max_procs=limits.pids)
    return {"type": "job", "id": job_id, "format": fmt, "timeout": limits.timeout_s, "limits": worker_limits}
