"""WarmPool: the one pool of sandbox workers every backend uses; a launcher says how a worker starts and stops.

A worker is the worker bundle serving frames (coco_agent/sandbox/protocol.py) inside its sandbox: a hardened
container (launchers/docker.py), a bubblewrap namespace (launchers/bubblewrap.py) or a plain subprocess
(launchers/process.py). The pool keeps idle workers per key (the limits a launcher must fix when it starts a
worker, e.g. a container's memory, or the warm renderer a document format needs), pings an idle one before reuse, and retires a worker after `max_jobs` jobs
and after any timeout, OOM, crash, protocol error or unclean report. With max_jobs=1 every job gets a fresh
worker (the per-job paths). Thread-safe: each render takes a worker for itself, so many runs share one pool.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Hashable
from typing import Protocol

from coco_agent.sandbox.base import Format, RenderResult, SandboxLimits, encode_source, result_from_frame
from coco_agent.sandbox.frames import read_result, recycle_reason
from coco_agent.sandbox.protocol import PING, PONG, encode_frame

STDERR_CAP = 16 * 1024  # what is kept of a worker's own stderr


class Worker(Protocol):
    """A started worker: its channel and how to stop it."""

    name: str  # how results name it (a container id, bwrap-<pid>)
    key: Hashable
    jobs: int
    fresh: bool  # no job yet: its ready frame just came, no ping needed

    def send(self, data: bytes) -> None: ...

    def read_frame(self, deadline: float) -> tuple[dict | None, bytes, str]: ...

    def take_stderr(self) -> bytes: ...


class Launcher(Protocol):
    """How one kind of sandbox starts, feeds and stops workers."""

    kind: str  # "docker", "bubblewrap", "process", ...
    limits: SandboxLimits  # the defaults for renders that pass none
    name_field: str  # the key of RenderResult.extra naming the worker ("container", "worker")

    def key(self, limits: SandboxLimits, fmt: Format) -> Hashable: ...

    def start(self, key: Hashable, max_jobs: int) -> Worker: ...

    def job(self, worker: Worker, fmt: Format, limits: SandboxLimits) -> dict: ...

    def failed(self, worker: Worker, why: str, stderr: str, limits: SandboxLimits) -> tuple[str, str]: ...

    def stop(self, worker: Worker) -> None: ...

    def close(self) -> None: ...


class WarmPool:
    """Workers started by `launcher`, kept warm and reused.

    pool_size: workers `warm()` starts ahead of time; max_workers: most alive at once (renders beyond wait for
    one); max_jobs: jobs per worker before it is replaced (1: a fresh worker per job); job_grace_s: seconds past
    a job's deadline before the host gives up on the worker and stops it.
    """

    def __init__(
        self,
        launcher: Launcher,
        pool_size: int = 2,
        max_workers: int = 8,
        max_jobs: int = 200,
        job_grace_s: float = 5.0,
    ) -> None:
        self.launcher = launcher
        self.pool_size, self.max_workers = pool_size, max(1, max_workers, pool_size)
        self.max_jobs, self.job_grace_s = max(1, max_jobs), job_grace_s
        self._idle: dict[Hashable, list[Worker]] = {}
        self._live = 0
        self._closed = False
        self._cond = threading.Condition()
        self.recycled = 0  # workers retired (for tests and the bench)
        ref = weakref.ref(self)
        atexit.register(lambda: (s := ref()) is not None and s.close())

    @property
    def kind(self) -> str:
        return self.launcher.kind

    @property
    def limits(self) -> SandboxLimits:
        return self.launcher.limits

    # ------------------------------------------------------------------ public
    def render(self, code: str, fmt: Format, limits: SandboxLimits | None = None) -> RenderResult:
        """Run `code` in a warm worker and return the validated PNG or the failure."""
        limits = limits or self.limits
        started = time.monotonic()
        source, refused = encode_source(code, limits)
        if refused:
            return self._result("rejected", started, error=refused)
        try:
            worker = self._healthy(self.launcher.key(limits, fmt))
        except Exception as exc:  # the launcher refused or the worker never came up
            return self._result("error", started, error=f"cannot start a {self.kind} sandbox worker: {exc}")
        worker.fresh = False
        header, png, why = None, b"", ""
        try:
            worker.send(encode_frame(self.launcher.job(worker, fmt, limits), source))
            deadline = time.monotonic() + limits.timeout_s + self.job_grace_s
            header, png, why = read_result(worker.read_frame, deadline)
        except OSError as exc:
            header, why = None, f"eof ({exc})"
        stderr = worker.take_stderr().decode("utf-8", "replace")[-2000:]
        if header is None:
            status, error = self.launcher.failed(worker, why, stderr, limits)
            self._retire(worker)
            extra = {self.launcher.name_field: worker.name, "recycled": why}
            return self._result(status, started, error=error, stderr=stderr, extra=extra)
        worker.jobs += 1
        fields = {self.launcher.name_field: worker.name, "pool_job": worker.jobs}
        result = result_from_frame(self.kind, header, png, limits, started, **fields)
        if stderr:
            result.extra["worker_stderr"] = stderr
        reason = recycle_reason(header, worker.jobs, self.max_jobs)
        if reason is None:
            self._release(worker)
        else:
            if self.max_jobs > 1:  # a per-job worker is retired by design, not recycled
                result.extra["recycled"] = reason  # set after RenderResult cleaned its fields: capped there
            self._retire(worker)
        return result

    def warm(
        self, n: int | None = None, limits: SandboxLimits | None = None, fmt: Format = "matplotlib"
    ) -> int:
        """Start up to `n` (default pool_size) idle workers for `fmt` in parallel; returns how many are idle."""
        key = self.launcher.key(limits or self.limits, fmt)
        with self._cond:
            self._closed = False
            want = (self.pool_size if n is None else n) - len(self._idle.get(key, []))
            want = min(want, self.max_workers - self._live)
            self._live += max(0, want)
        threads = [threading.Thread(target=self._start_idle, args=(key,)) for _ in range(max(0, want))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self._cond:
            return len(self._idle.get(key, []))

    def close(self) -> None:
        """Stop the idle workers (busy ones are stopped when their render returns), then let the launcher remove
        whatever this process still owns."""
        with self._cond:
            idle = [worker for group in self._idle.values() for worker in group]
            self._idle.clear()
            self._live -= len(idle)
            self._closed = True
            self._cond.notify_all()
        for worker in idle:
            self.launcher.stop(worker)
        self.launcher.close()

    # ------------------------------------------------------------------ the pool
    def _healthy(self, key: Hashable) -> Worker:
        """A worker whose channel answers: a fresh one, or an idle one that answers a ping (it may have been
        removed, killed, or stopped on its own doubt since it was released)."""
        for _ in range(self.max_workers + 1):
            worker = self._acquire(key)
            if worker.fresh:
                return worker
            try:
                worker.send(encode_frame({"type": PING}))
                header, _, _ = worker.read_frame(time.monotonic() + 5)
            except OSError:
                header = None
            if header is not None and header.get("type") == PONG:
                return worker
            self._retire(worker)
        return self._acquire(key)

    def _acquire(self, key: Hashable) -> Worker:
        """An idle worker for `key`, else a new one (waiting while `max_workers` are busy; idle workers of other
        keys make room)."""
        victim = None
        with self._cond:
            self._closed = False  # a render after close() starts afresh
            while True:
                if self._idle.get(key):
                    return self._idle[key].pop()
                if self._live < self.max_workers:
                    self._live += 1
                    break
                group = next((g for g in self._idle.values() if g), None)
                if group:  # full of idle workers of other keys: one makes room (its place is reused)
                    victim = group.pop()
                    break
                self._cond.wait()
        if victim is not None:
            self.launcher.stop(victim)
        try:
            return self.launcher.start(key, self.max_jobs)
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise

    def _start_idle(self, key: Hashable) -> None:
        try:
            worker = self.launcher.start(key, self.max_jobs)
        except Exception:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            return
        self._release(worker)

    def _release(self, worker: Worker) -> None:
        with self._cond:
            if not self._closed:
                self._idle.setdefault(worker.key, []).append(worker)
                self._cond.notify()
                return
            self._live -= 1
        self.launcher.stop(worker)

    def _retire(self, worker: Worker) -> None:
        """Stop a worker for good and free its place."""
        with contextlib.suppress(Exception):
            self.launcher.stop(worker)
        with self._cond:
            self._live -= 1
            self.recycled += 1
            self._cond.notify()

    def _result(self, status, started: float, **fields) -> RenderResult:
        return RenderResult(
            status=status, seconds=round(time.monotonic() - started, 3), sandbox=self.kind, **fields
        )
