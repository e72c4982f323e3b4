"""Process: the weakest fallback, one worker subprocess per job with the host's Python.

A scrubbed environment, a private temporary folder as its home and cwd, rlimits (CPU, address space, file size,
open files), the wall-clock deadline and the job's own seccomp filter: but no namespaces, so the program runs
as the calling user and can read what that user can read. One job per worker, always (a warm worker here would
wipe the host's /dev/shm between jobs): use Docker for untrusted code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Hashable

from coco_agent.sandbox.base import Format, SandboxLimits
from coco_agent.sandbox.bundle import worker_bundle
from coco_agent.sandbox.launchers.bubblewrap import BASE_ENV, host_mpl_cache, job_frame, service_of
from coco_agent.sandbox.launchers.piped import PipedWorker
from coco_agent.sandbox.protocol import READY, FrameReader


class ProcessLauncher:
    """Starts the worker bundle as a plain subprocess (python: the interpreter to run it with)."""

    kind = "process"
    name_field = "worker"

    def __init__(
        self, limits: SandboxLimits | None = None, python: str | None = None, startup_grace_s: float = 20.0
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.python = python or os.environ.get("COCO_SANDBOX_PYTHON") or sys.executable
        self.startup_grace_s = startup_grace_s
        self._mpl_seed = host_mpl_cache()
        self._bundle = str(worker_bundle())

    def key(self, limits: SandboxLimits, fmt: Format = "matplotlib") -> Hashable:
        return service_of(fmt)

    def start(self, key: Hashable, max_jobs: int) -> PipedWorker:
        """Start one worker for one job in a fresh private folder; wait for its ready frame."""
        home = tempfile.mkdtemp(prefix="coco-job-")
        env = dict(BASE_ENV, HOME=home, TMPDIR=home, XDG_CACHE_HOME=f"{home}/.cache")
        if self._mpl_seed:
            env["COCO_MPL_SEED"] = self._mpl_seed
        try:
            proc = subprocess.Popen(
                [self.python, "-I", "-B", self._bundle, "--oneshot", *(["--preload", key] if key else [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=home,
                env=env,
                bufsize=0,
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
        worker = PipedWorker(proc, key, FrameReader(max_payload=64 << 20), "process", home=home)
        header, _, why = worker.read_frame(time.monotonic() + self.startup_grace_s + (30.0 if key else 0.0))
        if header is None or header.get("type") != READY:
            tail = worker.take_stderr().decode("utf-8", "replace")[-500:]
            self.stop(worker)
            raise RuntimeError(f"the worker process did not come up ({why or header}): {tail}")
        worker.take_stderr()
        return worker

    def job(self, worker: PipedWorker, fmt: Format, limits: SandboxLimits) -> dict:
        return job_frame(fmt, limits, f"{worker.name}-{worker.jobs}", watch=False)

    def failed(self, worker: PipedWorker, why: str, stderr: str, limits: SandboxLimits) -> tuple[str, str]:
        if why == "deadline":
            return "timeout", f"no result within {limits.timeout_s:g} s + grace; the worker was killed"
        return "error", f"the sandbox worker ended without a result ({why}): {stderr[-500:]}"

    def stop(self, worker: PipedWorker) -> None:
        worker.kill()
        shutil.rmtree(worker.home, ignore_errors=True)

    def close(self) -> None:
        """Nothing persists between jobs."""
