"""Bubblewrap: each worker runs the bundle in fresh namespaces, for hosts without Docker.

Own user, pid, network, IPC, UTS and mount namespaces (only loopback; a read-only root holding /usr, fonts, the
Python install and the bundle; private sized tmpfs /tmp and /dev/shm; its own /dev/mqueue), no capabilities,
no-new-privileges, a scrubbed environment. The worker is PID 1 of its pid namespace (`--as-pid-1`): the kernel
drops any signal a job sends it that it does not handle, every process a job starts is visible to it, and when
it dies the kernel kills everything left in the namespace. `--die-with-parent` ties the namespace to the bwrap
process the host started, so killing that one kills them all. Bubblewrap's parent-death signal follows the
*thread* that started it, so every worker starts from one long-lived spawner thread. With no cgroups the job's
memory and process count are checked by the worker every 50 ms (job_frame's watch), RLIMIT_AS per process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coco_agent import formats
from coco_agent.sandbox.base import Format, SandboxLimits
from coco_agent.sandbox.bundle import IN_SANDBOX, worker_bundle
from coco_agent.sandbox.launchers.piped import PipedWorker
from coco_agent.sandbox.protocol import JOB, READY, FrameReader

WORKER_IN_BWRAP = IN_SANDBOX  # the worker bundle, bound read-only
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


def service_of(fmt: str) -> str:
    """The warm renderer service a format's worker runs ('' for none)."""
    return formats.FORMATS[fmt].service if fmt in formats.FORMATS else ""


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
        "facts": limits.facts,
        "hide_text": limits.hide_text,
    }
    if file_mb:
        worker_limits["file_bytes"] = file_mb << 20
    if watch:
        worker_limits.update(job_memory_mb=limits.memory_mb, max_procs=limits.pids)
    return {"type": JOB, "id": job_id, "format": fmt, "timeout": limits.timeout_s, "limits": worker_limits}


class BwrapLauncher:
    """Starts worker processes under bubblewrap (python: the interpreter to run the bundle with)."""

    kind = "bubblewrap"
    name_field = "worker"

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        python: str | None = None,
        tmpfs_mb: int = 64,
        startup_grace_s: float = 30.0,
    ) -> None:
        bwrap = shutil.which("bwrap")
        if not bwrap:
            raise FileNotFoundError("bubblewrap is not installed: apt-get install bubblewrap")
        self.limits = limits or SandboxLimits()
        self.python = python or os.environ.get("COCO_SANDBOX_PYTHON") or sys.executable
        self.tmpfs_mb, self.startup_grace_s = tmpfs_mb, startup_grace_s
        self.bwrap = bwrap
        self._options = {
            "sized": bwrap_supports(bwrap, "--size"),
            "mqueue": bwrap_supports(bwrap, "--mqueue"),
        }
        self._mpl_seed = host_mpl_cache()
        self._bundle = str(worker_bundle())
        # bwrap's --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that started bwrap
        # ends: start every worker from one long-lived thread, not from render or warm() threads.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coco-bwrap-spawn")

    def command(self, max_jobs: int, service: str = "") -> list[str]:
        serve = ["--oneshot"] if max_jobs == 1 else ["--reset", "--max-jobs", str(max_jobs)]
        serve += ["--preload", service] if service else []
        return bwrap_command(
            self.bwrap, self.python, self._bundle, serve, self._mpl_seed, self.tmpfs_mb, **self._options
        )

    def key(self, limits: SandboxLimits, fmt: Format = "matplotlib") -> Hashable:
        return service_of(fmt)  # every limit is the job's (sent with it); a warm service's workers apart

    def start(self, key: Hashable, max_jobs: int) -> PipedWorker:
        """Start bwrap with the worker in it (from the spawner thread); wait for the worker's ready frame."""
        proc = self._spawner.submit(
            subprocess.Popen,
            self.command(max_jobs, key),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            bufsize=0,
            start_new_session=True,
        ).result()
        worker = PipedWorker(proc, key, FrameReader(max_payload=64 << 20), "bwrap")
        grace = self.startup_grace_s + (30.0 if key else 0.0)
        header, _, why = worker.read_frame(time.monotonic() + grace)
        if header is None or header.get("type") != READY:
            tail = worker.take_stderr().decode("utf-8", "replace")[-500:]
            worker.kill()
            raise RuntimeError(f"the bubblewrap worker did not come up ({why or header}): {tail}")
        worker.take_stderr()  # preload warnings: not any job's business
        return worker

    def job(self, worker: PipedWorker, fmt: Format, limits: SandboxLimits) -> dict:
        return job_frame(fmt, limits, f"{worker.name}-{worker.jobs}", file_mb=self.tmpfs_mb)

    def failed(self, worker: PipedWorker, why: str, stderr: str, limits: SandboxLimits) -> tuple[str, str]:
        if why == "deadline":
            return "timeout", f"no result within {limits.timeout_s:g} s + grace; the host killed the worker"
        worker.kill()
        code = worker.proc.returncode
        return (
            "error",
            f"the sandbox worker ended without a result ({why}, exit status {code}): {stderr[-500:]}",
        )

    def stop(self, worker: PipedWorker) -> None:
        worker.kill()

    def close(self) -> None:
        """Nothing outlives the workers (each namespace dies with its bwrap process)."""
