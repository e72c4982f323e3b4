"""BwrapPoolSandbox: warm bubblewrap-confined workers for hosts without Docker, one forked child per job.

Each worker is the worker bundle in serve mode (`--reset`) under the same bubblewrap command as the per-job
fallback: own namespaces (no network, private /tmp and /dev/shm, read-only /usr and Python install), no
capabilities, and the worker as PID 1 of its pid namespace, so a job cannot signal it and every process a job
starts is the worker's to kill. Frames go over the bwrap process's stdin/stdout, which the worker moves to
private fds before any job runs. Per job the worker enforces the deadline, RLIMIT_AS per process and, with no
cgroup to lean on, the job's memory (private pages summed over its processes) and process count at 50 ms
checks; then it kills whatever is left, wipes /tmp and /dev/shm and reports whether the sandbox is clean.
The host retires a worker (SIGKILL to bwrap: `--die-with-parent` takes the whole namespace down) after
`max_jobs` jobs and after any timeout, OOM, crash, protocol error or unclean report. Thread-safe: each render
takes a worker for itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from coco_agent.sandbox.base import Format, RenderResult, SandboxLimits, encode_source, result_from_frame
from coco_agent.sandbox.bundle import worker_bundle
from coco_agent.sandbox.bwrap import bwrap_command, bwrap_supports, host_mpl_cache, job_frame
from coco_agent.sandbox.frames import FrameReader, encode_frame, read_result, recycle_reason

STDERR_CAP = 16 * 1024


@dataclass
class _Worker:
    """One running bubblewrap worker and its pipes."""

    proc: subprocess.Popen
    frames: FrameReader
    ready: deque = field(default_factory=deque)
    stderr: bytearray = field(default_factory=bytearray)
    stderr_open: bool = True
    jobs: int = 0

    @property
    def name(self) -> str:
        return f"bwrap-{self.proc.pid}"

    def send(self, data: bytes) -> None:
        """Write a whole frame (raises OSError when the worker is gone)."""
        view = memoryview(data)
        fd = self.proc.stdin.fileno()
        while view:
            view = view[os.write(fd, view) :]

    def read_frame(self, deadline: float) -> tuple[dict | None, bytes, str]:
        """Next worker frame: (header, payload, '') or (None, b'', why) on deadline, EOF or protocol error."""
        out, err = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        while not self.ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, b"", "deadline"
            for fd in select.select([out, err] if self.stderr_open else [out], [], [], remaining)[0]:
                chunk = os.read(fd, 1 << 20)
                if fd == err:
                    self.stderr += chunk[: max(0, STDERR_CAP - len(self.stderr))]
                    self.stderr_open = bool(chunk)
                elif not chunk:
                    return None, b"", "eof"
                else:
                    try:
                        self.ready.extend(self.frames.feed(chunk))
                    except ValueError as exc:
                        return None, b"", f"protocol error: {exc}"
        header, payload = self.ready.popleft()
        return header, payload, ""

    def take_stderr(self) -> bytes:
        data = bytes(self.stderr)
        self.stderr.clear()
        return data

    def kill(self) -> None:
        """SIGKILL bwrap's session: --die-with-parent then kills the worker and everything in its namespace."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()


class BwrapPoolSandbox:
    """The warm bubblewrap fallback: near-bare speed without Docker, weaker than a container (no cgroups).

    pool_size: workers `warm()` starts; max_workers: most alive at once (renders beyond wait for one);
    max_jobs: jobs per worker before it is replaced; job_grace_s: seconds past a job's deadline before the
    host gives up on the worker and kills it.
    """

    kind = "bubblewrap"

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        python: str | None = None,
        pool_size: int = 2,
        max_workers: int = 8,
        max_jobs: int = 200,
        job_grace_s: float = 5.0,
        startup_grace_s: float = 30.0,
        tmpfs_mb: int = 64,
    ) -> None:
        bwrap = shutil.which("bwrap")
        if not bwrap:
            raise FileNotFoundError("bubblewrap is not installed: apt-get install bubblewrap")
        self.limits = limits or SandboxLimits()
        self.python = python or os.environ.get("COCO_SANDBOX_PYTHON") or sys.executable
        self.pool_size, self.max_workers = pool_size, max(1, max_workers, pool_size)
        self.max_jobs, self.job_grace_s, self.startup_grace_s = max_jobs, job_grace_s, startup_grace_s
        self.tmpfs_mb = tmpfs_mb
        worker_args = ["--reset", "--max-jobs", str(max_jobs)]
        self.command = bwrap_command(
            bwrap,
            self.python,
            str(worker_bundle()),
            worker_args,
            host_mpl_cache(),
            tmpfs_mb,
            bwrap_supports(bwrap, "--size"),
            mqueue=bwrap_supports(bwrap, "--mqueue"),
        )
        # bwrap's --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that started bwrap
        # ends: start every worker from one long-lived thread, not from render or warm() threads.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coco-bwrap-spawn")
        self._idle: list[_Worker] = []
        self._live = 0
        self._closed = False
        self._cond = threading.Condition()
        self.recycled = 0  # workers retired (for tests and the bench)
        ref = weakref.ref(self)
        atexit.register(lambda: (s := ref()) is not None and s.close())

    # ------------------------------------------------------------------ public
    def render(self, code: str, fmt: Format, limits: SandboxLimits | None = None) -> RenderResult:
        """Run `code` in a warm worker and return the validated PNG or the failure."""
        limits = limits or self.limits
        started = time.monotonic()
        source, refused = encode_source(code, limits)
        if refused:
            return self._result("rejected", started, error=refused)
        try:
            worker = self._healthy_worker()
        except Exception as exc:  # bubblewrap refused or the worker never came up
            return self._result("error", started, error=f"cannot start a bubblewrap worker: {exc}")
        job = job_frame(fmt, limits, f"{worker.name}-{worker.jobs}", file_mb=self.tmpfs_mb)
        header, png, why = None, b"", ""
        try:
            worker.send(encode_frame(job, source))
            deadline = time.monotonic() + limits.timeout_s + self.job_grace_s
            header, png, why = read_result(worker.read_frame, deadline)
        except OSError as exc:
            header, why = None, f"eof ({exc})"
        if header is None:
            self._retire(worker)
            return self._no_result(worker, why, limits, started)
        worker.jobs += 1
        result = self._finish(header, png, worker, limits, started)
        reason = recycle_reason(header, worker.jobs, self.max_jobs)
        if reason is None:
            self._release(worker)
        else:
            result.extra["recycled"] = reason  # set after RenderResult cleaned its fields: capped there
            self._retire(worker)
        return result

    def warm(self, n: int | None = None) -> int:
        """Start up to `n` (default pool_size) idle workers in parallel; returns how many are idle."""
        with self._cond:
            want = min((self.pool_size if n is None else n) - len(self._idle), self.max_workers - self._live)
            self._live += max(0, want)
        threads = [threading.Thread(target=self._start_idle) for _ in range(max(0, want))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self._cond:
            return len(self._idle)

    def close(self) -> None:
        """Kill the idle workers (busy ones are killed when their render returns)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._closed = True
            self._cond.notify_all()
        for worker in idle:
            worker.kill()

    # ------------------------------------------------------------------ pool
    def _healthy_worker(self) -> _Worker:
        """A worker that answers a ping (an idle one may have died meanwhile)."""
        for _ in range(self.max_workers + 1):
            worker = self._acquire()
            try:
                if worker.proc.poll() is not None:
                    raise OSError("the worker has exited")
                worker.send(encode_frame({"type": "ping"}))
                header, _, _ = worker.read_frame(time.monotonic() + 5)
            except OSError:
                header = None
            if header is not None and header.get("type") == "pong":
                return worker
            self._retire(worker)
        return self._acquire()

    def _acquire(self) -> _Worker:
        """An idle worker, else a new one (waiting while `max_workers` are busy)."""
        with self._cond:
            self._closed = False  # a render after close() starts afresh
            while not self._idle and self._live >= self.max_workers:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._live += 1
        try:
            return self._start()
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise

    def _start(self) -> _Worker:
        """Start bwrap with the worker in it; wait for the worker's ready frame."""
        proc = self._spawner.submit(
            subprocess.Popen,
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            bufsize=0,
            start_new_session=True,
        ).result()
        worker = _Worker(proc, FrameReader(max_payload=64 << 20))
        header, _, why = worker.read_frame(time.monotonic() + self.startup_grace_s)
        if header is None or header.get("type") != "ready":
            tail = worker.take_stderr().decode("utf-8", "replace")[-500:]
            worker.kill()
            raise RuntimeError(f"the bubblewrap worker did not come up ({why or header}): {tail}")
        worker.take_stderr()  # preload warnings: not any job's business
        return worker

    def _start_idle(self) -> None:
        try:
            worker = self._start()
        except Exception:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            return
        self._release(worker)

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
            self._live -= 1
        worker.kill()

    def _retire(self, worker: _Worker) -> None:
        """Kill a worker for good and free its place."""
        worker.kill()
        with self._cond:
            self._live -= 1
            self.recycled += 1
            self._cond.notify()

    # ------------------------------------------------------------------ results
    def _no_result(self, worker: _Worker, why: str, limits: SandboxLimits, started: float) -> RenderResult:
        tail = worker.take_stderr().decode("utf-8", "replace")[-2000:]
        extra = {"worker": worker.name, "recycled": why}
        if why == "deadline":
            error = f"no result within {limits.timeout_s:g} s + {self.job_grace_s:g} s grace; the host killed the worker"
            return self._result("timeout", started, error=error, stderr=tail, extra=extra)
        code = worker.proc.returncode
        error = f"the sandbox worker ended without a result ({why}, exit status {code}): {tail[-500:]}"
        return self._result("error", started, error=error, stderr=tail, extra=extra)

    def _finish(
        self, header: dict, png: bytes, worker: _Worker, limits: SandboxLimits, started: float
    ) -> RenderResult:
        result = result_from_frame(
            self.kind, header, png, limits, started, worker=worker.name, pool_job=worker.jobs
        )
        stderr = worker.take_stderr()
        if stderr:
            result.extra["worker_stderr"] = stderr.decode("utf-8", "replace")[-2000:]
        return result

    def _result(self, status, started: float, **fields) -> RenderResult:
        return RenderResult(
            status=status, seconds=round(time.monotonic() - started, 3), sandbox=self.kind, **fields
        )
