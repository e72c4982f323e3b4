"""ProcessSandbox: the weaker fallback for hosts without Docker.

Runs the same worker bundle with the host's Python in a scrubbed environment and a private temp dir, with
rlimits (CPU, address space, file size, open files) and a wall-clock deadline. With bubblewrap (`bwrap`) on
the PATH the worker also gets its own namespaces (no network, no host files beyond /usr and the Python
install, own pid space): kind "bubblewrap". Without it (kind "process") the program runs as the calling user
and can read what that user can read: use Docker for untrusted code.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from coco_agent.sandbox.base import Format, RenderResult, SandboxLimits, encode_source, result_from_frame
from coco_agent.sandbox.bundle import worker_bundle
from coco_agent.sandbox.bwrap import BASE_ENV, bwrap_command, bwrap_supports, host_mpl_cache, job_frame
from coco_agent.sandbox.frames import FrameReader, encode_frame

STDERR_CAP = 16 * 1024


class ProcessSandbox:
    """Runs each job in a fresh worker subprocess (optionally inside bubblewrap). Weaker than Docker."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        python: str | None = None,
        bubblewrap: bool | None = None,
        startup_grace_s: float = 20.0,
        tmpfs_mb: int = 64,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.python = python or os.environ.get("COCO_SANDBOX_PYTHON") or sys.executable
        self.worker = str(worker_bundle())
        self.bwrap = shutil.which("bwrap") if bubblewrap is not False else None
        if bubblewrap and not self.bwrap:
            raise FileNotFoundError("bubblewrap is not installed: apt-get install bubblewrap")
        self.kind = "bubblewrap" if self.bwrap else "process"
        self.startup_grace_s = startup_grace_s
        self.tmpfs_mb = tmpfs_mb
        self.mpl_seed = host_mpl_cache()
        self._bwrap_sized = bool(self.bwrap) and bwrap_supports(self.bwrap, "--size")

    def render(self, code: str, fmt: Format, limits: SandboxLimits | None = None) -> RenderResult:
        """Run `code` in a new worker process and return the validated PNG or the failure."""
        limits = limits or self.limits
        started = time.monotonic()
        source, refused = encode_source(code, limits)
        if refused:
            return self._result("rejected", started, error=refused)
        home = tempfile.mkdtemp(prefix="coco-job-")
        try:
            return self._run(source, fmt, limits, started, home)
        finally:
            shutil.rmtree(home, ignore_errors=True)

    def close(self) -> None:
        """Nothing persists between jobs."""

    # ------------------------------------------------------------------ internals
    def _command(self, home: str) -> tuple[list[str], dict[str, str]]:
        if self.bwrap:
            cmd = bwrap_command(
                self.bwrap,
                self.python,
                self.worker,
                ["--oneshot"],
                self.mpl_seed,
                self.tmpfs_mb,
                self._bwrap_sized,
            )
            return cmd, {"PATH": "/usr/bin:/bin"}
        env = dict(BASE_ENV, HOME=home, TMPDIR=home, XDG_CACHE_HOME=f"{home}/.cache")
        if self.mpl_seed:
            env["COCO_MPL_SEED"] = self.mpl_seed
        return [self.python, "-I", "-B", self.worker, "--oneshot"], env

    def _run(
        self, source: bytes, fmt: Format, limits: SandboxLimits, started: float, home: str
    ) -> RenderResult:
        cmd, env = self._command(home)
        job = job_frame(fmt, limits, watch=bool(self.bwrap))
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=home,
            env=env,
            start_new_session=True,
        )
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write(encode_frame(job, source))
                proc.stdin.close()
            except BrokenPipeError:
                pass
            deadline = started + limits.timeout_s + self.startup_grace_s
            header, png, stderr, why = self._read_result(proc, limits, deadline)
        finally:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        tail = stderr.decode("utf-8", "replace")[-2000:]
        if header is None:
            if why == "deadline":
                return self._result(
                    "timeout",
                    started,
                    error=f"no result within {limits.timeout_s:g} s + grace; the worker was killed",
                    stderr=tail,
                )
            return self._result(
                "error",
                started,
                error=f"the sandbox worker ended without a result ({why}): {tail[-500:]}",
                stderr=tail,
            )
        return result_from_frame(self.kind, header, png, limits, started)

    def _read_result(self, proc: subprocess.Popen, limits: SandboxLimits, deadline: float):
        frames = FrameReader(max_payload=limits.max_png_bytes + (1 << 20))
        out, err = proc.stdout.fileno(), proc.stderr.fileno()
        stderr = bytearray()
        open_fds = [out, err]
        while out in open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, b"", bytes(stderr), "deadline"
            ready, _, _ = select.select(open_fds, [], [], remaining)
            for fd in ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    open_fds.remove(fd)
                elif fd == err:
                    stderr += chunk[: max(0, STDERR_CAP - len(stderr))]
                else:
                    try:
                        for header, payload in frames.feed(chunk):
                            if header.get("type") == "result":
                                return header, payload, bytes(stderr), "result"
                    except ValueError as exc:
                        return None, b"", bytes(stderr), f"protocol error: {exc}"
        return None, b"", bytes(stderr), "eof"

    def _result(self, status, started: float, **fields) -> RenderResult:
        return RenderResult(
            status=status, seconds=round(time.monotonic() - started, 3), sandbox=self.kind, **fields
        )
