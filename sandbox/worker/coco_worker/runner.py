"""The runner: one job's supervisor, forked from the pristine zygote before any job byte is read.

It reads frames (answering pings) until a job arrives, forks the job's process, enforces the deadline and (in
a sandbox without cgroups) the job's memory and process count from outside it, kills everything the job started,
wipes the scratch space, checks that nothing outlived the job and that the zygote is unchanged, relays one
result frame and exits. Everything a job leaves in memory lives in this process and the job's, both gone
before the zygote forks the next runner.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import struct
import sys
import tempfile
import time
import traceback

from coco_worker import identity, services
from coco_worker.child import child_setup, run_child
from coco_worker.hygiene import (
    job_processes,
    oom_kills,
    pidfd,
    posix_mqueues,
    private_bytes,
    reap_all,
    remove_tree,
    sysv_ipc_objects,
    wipe_folder,
)
from coco_worker.output import Capped
from coco_worker.protocol import DEFAULT_LIMITS, MAX_HEADER, parse_frame, read_frame, write_frame
from coco_worker.renderers import RENDERERS, restore_scratch
from coco_worker.textboxes import sane_boxes, sane_facts, sane_texts

WATCH_EVERY_S = 0.05  # how often the runner polls the job (exit, and the Watchdog's limits)
SERVICE_GROWTH_DOUBT = 1 << 20  # a warm service grown this much by a job killed for memory is retired
EXIT_JOB, EXIT_STOP = 0, 10  # a runner's exit codes: one job served / the host said exit (or EOF)


SETUP_FAILED = 71  # a job process's exit code when its limits or seccomp filter could not be set


class Runner:
    """One job's supervisor: forked from the pristine zygote before any job byte is read, it reads frames
    (answering pings) until a job arrives, forks the job's process, relays its result and exits.

    Everything a job leaves in memory (its source, what it printed, its PNG) lives in this process and the
    job's, both gone before the zygote forks the next runner: no later job inherits it.
    """

    def __init__(self, zygote) -> None:
        self.zygote = zygote
        self.chan_in, self.chan_out = zygote.chan_in, zygote.chan_out
        self.jobs_root, self.reset, self.keep = zygote.jobs_root, zygote.reset, zygote.keep

    def serve_one(self) -> int:
        """Serve frames until one job is done (EXIT_JOB) or the host is gone (EXIT_STOP)."""
        while True:
            frame = read_frame(self.chan_in, max_payload=16 << 20)
            if frame is None:
                return EXIT_STOP
            header, payload = frame
            kind = header.get("type")
            if kind == "exit":
                return EXIT_STOP
            if kind == "ping":
                write_frame(self.chan_out, {"type": "pong", "jobs": self.zygote.count})
                continue
            if kind == "job":
                break
            write_frame(self.chan_out, {"type": "error", "error": f"unknown frame type {kind!r}"})
        result, png = self.run_job(header, payload)
        doubt = result.pop("doubt", "") or services_doubt()
        if self.reset:
            problem = doubt or self.reset_scratch() or self.zygote.changed()
            result.update(clean=not problem, unclean=problem)
        write_frame(self.chan_out, result, png)
        return EXIT_JOB

    def reset_scratch(self) -> str:
        """Make the sandbox as the next job must find it; '' when clean, else what is left (recycle then)."""
        left = job_processes()
        if left:
            return f"{len(left)} process(es) outlived the job"
        if sysv_ipc_objects():
            return "System V IPC objects left behind"
        if posix_mqueues():
            return "POSIX message queues left behind"
        try:
            for folder in (tempfile.gettempdir(), "/dev/shm"):
                if os.path.isdir(folder) and not os.path.islink(folder):
                    wipe_folder(folder, self.keep)
            identity.make_jobs_root(self.jobs_root, exist_ok=False)  # the wipe removed it
            restore_scratch()
        except (OSError, RecursionError) as exc:
            return f"cannot wipe the scratch space: {exc!r}"[:300]
        return ""

    def run_job(self, job: dict, code: bytes) -> tuple[dict, bytes]:
        limits = dict(DEFAULT_LIMITS, **(job.get("limits") or {}))
        fmt = job.get("format", "matplotlib")
        timeout = float(job.get("timeout", 30.0))
        base = {"type": "result", "id": job.get("id"), "stdout": "", "stderr": "", "width": 0, "height": 0}
        if fmt not in RENDERERS:
            return dict(base, status="error", error=f"unknown format {fmt!r}", seconds=0.0), b""
        renderer = RENDERERS[fmt]
        if services.SERVICES and not getattr(renderer, "DOCUMENT_ONLY", False):
            error = f"this worker serves document formats only ({', '.join(services.SERVICES)}), not {fmt}"
            return dict(base, status="error", error=error, seconds=0.0), b""
        limits["timeout"] = timeout
        job_dir = tempfile.mkdtemp(prefix="job-", dir=self.jobs_root)
        os.chmod(job_dir, 0o700)
        identity.hand_to_job(job_dir)
        started = time.monotonic()
        try:
            header, png = self._fork_and_wait(code, fmt, limits, timeout, job_dir)
        finally:
            with contextlib.suppress(OSError, RecursionError):  # too deep: reset_scratch reports it
                remove_tree(job_dir)  # also when the job made parts of it unreadable (chmod 000)
        header = dict(base, **header, seconds=round(time.monotonic() - started, 4))
        if png and len(png) >= 24 and png[:8] == b"\x89PNG\r\n\x1a\n":
            header["width"], header["height"] = struct.unpack(">II", png[16:24])
        return header, png

    def _fork_and_wait(self, code: bytes, fmt: str, limits: dict, timeout: float, job_dir: str):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        protected = [1, self.zygote.pid, os.getpid(), os.getpgid(0)]  # what the job must not reach
        job_fds = getattr(RENDERERS[fmt], "job_fds", None)
        keep_more = tuple(job_fds()) if job_fds is not None else ()  # its own service's pipes, nobody else's
        pid = os.fork()
        if pid == 0:  # child
            try:
                for fd in (out_r, err_r, res_r, self.chan_in, self.chan_out):
                    os.close(fd)
                try:
                    child_setup(job_dir, out_w, err_w, res_w, limits, timeout, protected, keep_more)
                except BaseException:
                    traceback.print_exc()
                    os._exit(SETUP_FAILED)
                run_child(code, fmt, limits, res_w)
            finally:
                os._exit(70)
        for fd in (out_w, err_w, res_w):
            os.close(fd)
        out, err = Capped(limits["output_bytes"]), Capped(limits["output_bytes"])
        result = Capped(limits["max_png_bytes"] + MAX_HEADER)
        sinks = {out_r: out, err_r: err, res_r: result}
        sel = selectors.DefaultSelector()
        for fd in sinks:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        exit_fd = pidfd(pid)  # readable when the child exits: no polling delay after the last pipe closes
        if exit_fd is not None:
            sel.register(exit_fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        exit_status, timed_out, ooms, over = None, False, oom_kills(), ""
        watch = Watchdog(limits)
        try:
            while exit_status is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                for key, _ in sel.select(min(remaining, WATCH_EVERY_S)):
                    if key.fd in sinks:
                        _drain(key.fd, sinks[key.fd], sel)
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    exit_status = status
                elif watch.due():
                    over = watch.check()
                    if over:
                        break
            reap_all(pid)
            if exit_status is None:
                try:
                    _, exit_status = os.waitpid(pid, 0)
                except ChildProcessError:
                    exit_status = 0
            for fd in list(sinks):  # what the child wrote before it died
                _drain(fd, sinks[fd], sel, final=True)
        finally:
            sel.close()
            for fd in sinks:
                os.close(fd)
            if exit_fd is not None:
                os.close(exit_fd)
        header = {"stdout": out.text(), "stderr": err.text()}
        if timed_out:
            return dict(
                header,
                status="timeout",
                error=f"the program ran past its {timeout:g} s deadline and was killed",
            ), b""
        if over:
            killed = dict(header, status="oom" if "memory" in over else "error", error=over)
            if watch.services_grew:  # a browser that held the job's pages is not trusted with the next job
                killed["doubt"] = "the job's pages grew a warm renderer service past the memory limit"
            return killed, b""
        raw = bytes(result.head + result.tail) if not result.dropped else b""
        parsed = parse_frame(raw, len(raw))  # the size is the host's to judge (with a clear error)
        if parsed is not None and exit_status == 0:
            res, png = parsed
            return dict(
                header,
                status=res.get("status", "error"),
                error=res.get("error", ""),
                captured=res.get("captured", ""),
                text_hidden=bool(res.get("text_hidden")),
                text_boxes=sane_boxes(res.get("text_boxes")),
                texts=sane_texts(res.get("texts")),
                facts=sane_facts(res.get("facts")),
            ), png
        death = _death_reason(exit_status, timeout, oom_kills() > ooms)
        if death["status"] == "error":  # an abrupt exit, a signal: the job may have left anything behind
            death["doubt"] = f"the job ended abnormally: {death['error']}"[:300]
        return dict(header, **death), b""


def services_doubt() -> str:
    """After a job: '' when every warm renderer service is as the next job must find it, else why not."""
    for name in services.SERVICES:
        check = getattr(RENDERERS.get(name), "check", None)
        why = check() if check is not None else ""
        if why:
            return why[:300]
    return ""


class Watchdog:
    """Limits the worker enforces on the job as a whole, from outside it, at every check (every 50 ms):
    private memory (USS, summed over the job's processes) and the number of processes. Off unless the job's
    limits set job_memory_mb / max_procs (a sandbox without cgroups: bubblewrap). The job's processes are
    all but the worker when it is PID 1 of its namespace, else the worker's children."""

    def __init__(self, limits: dict) -> None:
        self.memory = int(limits.get("job_memory_mb") or 0) << 20
        self.procs = int(limits.get("max_procs") or 0)
        self.next = time.monotonic() + WATCH_EVERY_S
        # a warm service (the browser) is no process of the job, but the pages the job opens there are its
        # memory: what the services' trees grow by during the job counts against the job's limit
        self.watch_services = bool(self.memory and services.SERVICES)
        self.services_at_start = _services_bytes() if self.watch_services else 0
        self.services_grew = False

    def due(self) -> bool:
        if not (self.memory or self.procs) or time.monotonic() < self.next:
            return False
        self.next = time.monotonic() + WATCH_EVERY_S
        return True

    def check(self) -> str:
        """Why the job must be killed now ('' when it may go on)."""
        # one scan of /proc for the job's processes and the services' trees (without services: none needed)
        parents = services.process_parents() if services.SERVICES else None
        pids = job_processes(parents)
        if self.procs and len(pids) > self.procs:
            return f"the program started more than {self.procs} processes and was killed"
        if self.memory:
            used = sum(private_bytes(pid) for pid in pids)
            grown = max(0, _services_bytes(parents) - self.services_at_start) if self.watch_services else 0
            if used + grown > self.memory:
                self.services_grew = (
                    grown >= SERVICE_GROWTH_DOUBT
                )  # not a few pages of the browser's own churn
                pages = f" and the warm browser {grown >> 20} MB more for its pages" if grown >> 20 else ""
                return (
                    f"the program was killed: its processes held {used >> 20} MB{pages}, over the "
                    f"{self.memory >> 20} MB memory limit"
                )
        return ""


def _services_bytes(parents: dict[int, int] | None = None) -> int:
    """Private memory of every warm service's process tree."""
    return sum(private_bytes(pid) for pid in services.tree_pids(parents))


def _drain(fd: int, sink: Capped, sel, final: bool = False) -> None:
    for _ in range(64 if final else 16):
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(fd)
            return
        sink.add(data)


def _death_reason(exit_status: int | None, timeout: float, oom_seen: bool) -> dict:
    if oom_seen:
        return {"status": "oom", "error": "the program was killed: it reached the sandbox memory limit"}
    if exit_status is not None and os.WIFSIGNALED(exit_status):
        sig = os.WTERMSIG(exit_status)
        if sig == signal.SIGKILL:
            return {
                "status": "oom",
                "error": "the program was killed by SIGKILL (most likely the memory limit)",
            }
        if sig == signal.SIGXCPU:
            return {"status": "timeout", "error": f"the program used more than {int(timeout) + 1} s of CPU"}
        return {"status": "error", "error": f"the program died from signal {signal.Signals(sig).name}"}
    code = os.WEXITSTATUS(exit_status) if exit_status is not None else -1
    if code == SETUP_FAILED:
        return {"status": "error", "error": "the sandbox could not set the job up (its stderr says why)"}
    return {
        "status": "error",
        "error": f"the program exited abruptly (exit code {code}, e.g. os._exit) before its picture was captured",
    }
